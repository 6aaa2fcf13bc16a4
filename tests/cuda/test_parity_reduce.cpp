// CPU <-> CUDA parity of the reductions: Backend::reduce (every ReduceOp,
// widening output dtypes, any set of reduced dims, strided inputs, NaN,
// empty and 0-dim inputs), arg_reduce (ties pick the first index, NaN wins),
// softmax and softmax_backward (both forms, any dim, masked rows), each
// called directly with poisoned outputs, and the public reductions with
// their backward.
#include "cuda/parity_util.h"

namespace {

using namespace kiln;
using namespace kiln::testing::parity;

Backend& be(const Tensor& t) { return backend_of(t); }
std::string dn(DType d) { return short_name(d); }
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

DimVector keep_shape(const Tensor& in, const std::vector<int64_t>& dims) {
  DimVector s = in.sizes().dims();
  for (int64_t d : dims) s[static_cast<size_t>(d)] = 1;
  return s;
}

TensorList reduce_direct(ReduceOp op, const Tensor& in, const std::vector<int64_t>& dims, DType out_dtype) {
  return with_poisoned(keep_shape(in, dims), out_dtype, in.device(),
                       [&](const Tensor& out) { be(in).reduce(op, in, out); });
}

enum class Layout { Contiguous, Transposed, Sliced, Broadcast };

// The view of a 2-D base the kernel reduces: itself, its transpose, every
// third column from column 1, or row 0 expanded to 64 rows (stride 0).
Tensor layout_view(const Tensor& base, Layout layout) {
  switch (layout) {
    case Layout::Contiguous: return base;
    case Layout::Transposed: return native::t(base);
    case Layout::Sliced: return native::slice(base, 1, 1, std::nullopt, 3);
    case Layout::Broadcast: return native::expand(native::slice(base, 0, 0, 1), {64, base.size(1)});
  }
  return base;
}

struct ReduceCase {
  std::string name;
  ReduceOp op;
  std::function<Tensor(Generator&)> input;
  std::vector<int64_t> dims;
  DType out_dtype;
  Layout layout = Layout::Contiguous;
};

std::vector<Case> reduce_cases() {
  using G = Generator;
  auto u = [](std::vector<int64_t> s, double lo, double hi, DType dt = kFloat32) {
    return [=](G& g) { return uniform(g, s, lo, hi, dt); };
  };
  auto ri = [](std::vector<int64_t> s, int64_t lo, int64_t hi, DType dt) {
    return [=](G& g) { return randint(g, lo, hi, s, dt); };
  };
  auto with_nan = [](std::vector<int64_t> s, DType dt) {
    return [=](G& g) { return sprinkle(g, sprinkle(g, randn(g, s, dt), 0.02, kInf), 0.01, kNaN); };
  };
  auto b = [](std::vector<int64_t> s, double p) { return [=](G& g) { return bools(g, s, p); }; };
  auto zeros_in = [](std::vector<int64_t> s, DType dt) {
    return [=](G& g) { return sprinkle(g, randint(g, 1, 5, s, dt), 0.01, 0.0); };
  };
  const std::vector<ReduceCase> rs = {
      // Large reductions use positive inputs: the order of a float sum then
      // cannot matter beyond the tolerance (no cancellation).
      {"sum_f32_rows", ReduceOp::Sum, u({64, 300}, -1, 1), {1}, kFloat32},
      {"sum_f32_cols", ReduceOp::Sum, u({64, 300}, -1, 1), {0}, kFloat32},
      {"sum_f32_all", ReduceOp::Sum, u({64, 300}, 0, 1), {0, 1}, kFloat32},
      {"sum_f32_outer_inner", ReduceOp::Sum, u({6, 7, 9}, -1, 1), {0, 2}, kFloat32},
      {"sum_f32_transposed", ReduceOp::Sum, u({300, 64}, -1, 1), {1}, kFloat32, Layout::Transposed},
      {"sum_f32_sliced", ReduceOp::Sum, u({64, 900}, -1, 1), {1}, kFloat32, Layout::Sliced},
      {"sum_f32_broadcast_dim", ReduceOp::Sum, u({3, 300}, -1, 1), {0}, kFloat32, Layout::Broadcast},
      {"max_f32_broadcast_dim", ReduceOp::Max, u({3, 300}, -1, 1), {0, 1}, kFloat32, Layout::Broadcast},
      {"any_bool_sliced", ReduceOp::Any, b({64, 900}, 0.01), {1}, kBool, Layout::Sliced},
      {"sum_f32_long_rows", ReduceOp::Sum, u({3, 100003}, 0, 1), {1}, kFloat32},
      {"sum_f32_huge_all", ReduceOp::Sum, u({1 << 20}, 0, 1), {0}, kFloat32},
      {"sum_f32_many_short_rows", ReduceOp::Sum, u({100003, 3}, -1, 1), {1}, kFloat32},
      {"sum_f64_rows", ReduceOp::Sum, u({64, 300}, -1, 1, kFloat64), {1}, kFloat64},
      {"sum_bf16_into_f32", ReduceOp::Sum, u({64, 300}, -1, 1, kBFloat16), {1}, kFloat32},
      {"sum_f16_into_f32", ReduceOp::Sum, u({64, 300}, -1, 1, kFloat16), {1}, kFloat32},
      {"sum_bf16", ReduceOp::Sum, u({64, 300}, -1, 1, kBFloat16), {1}, kBFloat16},
      {"sum_f32_into_f64", ReduceOp::Sum, u({64, 300}, -1, 1), {1}, kFloat64},
      {"sum_i32_into_i64", ReduceOp::Sum, ri({64, 300}, -1000000, 1000000, kInt32), {1}, kInt64},
      {"sum_i64", ReduceOp::Sum, ri({64, 300}, -(int64_t{1} << 40), int64_t{1} << 40, kInt64), {0}, kInt64},
      {"sum_u8_into_i64", ReduceOp::Sum, ri({64, 300}, 0, 256, kUInt8), {1}, kInt64},
      {"sum_bool_into_i64", ReduceOp::Sum, b({64, 300}, 0.5), {0, 1}, kInt64},
      {"sum_f32_0dim", ReduceOp::Sum, u({}, -1, 1), {}, kFloat32},
      {"sum_f32_empty", ReduceOp::Sum, u({0, 5}, -1, 1), {0}, kFloat32},
      {"prod_f32_empty", ReduceOp::Prod, u({0, 5}, -1, 1), {0}, kFloat32},
      {"prod_f64_rows", ReduceOp::Prod, u({16, 40}, 0.8, 1.25, kFloat64), {1}, kFloat64},
      {"prod_f32_cols", ReduceOp::Prod, u({40, 16}, 0.8, 1.25), {0}, kFloat32},
      {"prod_i64_rows", ReduceOp::Prod, ri({8, 12}, -3, 4, kInt64), {1}, kInt64},
      {"max_f32_rows_nan_inf", ReduceOp::Max, with_nan({64, 300}, kFloat32), {1}, kFloat32},
      {"min_f32_cols_nan_inf", ReduceOp::Min, with_nan({64, 300}, kFloat32), {0}, kFloat32},
      {"max_f32_all", ReduceOp::Max, u({257, 1031}, -1, 1), {0, 1}, kFloat32},
      {"min_f32_transposed", ReduceOp::Min, u({300, 64}, -1, 1), {1}, kFloat32, Layout::Transposed},
      {"max_f64_rows", ReduceOp::Max, u({64, 300}, -1, 1, kFloat64), {1}, kFloat64},
      {"max_bf16_rows", ReduceOp::Max, with_nan({64, 300}, kBFloat16), {1}, kBFloat16},
      {"min_f16_rows", ReduceOp::Min, u({64, 300}, -1, 1, kFloat16), {1}, kFloat16},
      {"max_i64_rows", ReduceOp::Max, ri({64, 300}, -(int64_t{1} << 50), int64_t{1} << 50, kInt64), {1}, kInt64},
      {"min_i32_all", ReduceOp::Min, ri({64, 300}, -1000000, 1000000, kInt32), {0, 1}, kInt32},
      {"max_u8_cols", ReduceOp::Max, ri({64, 300}, 0, 256, kUInt8), {0}, kUInt8},
      {"all_bool_rows", ReduceOp::All, b({64, 300}, 0.995), {1}, kBool},
      {"any_bool_rows", ReduceOp::Any, b({64, 300}, 0.005), {1}, kBool},
      {"all_f32_rows", ReduceOp::All, zeros_in({64, 300}, kFloat32), {1}, kBool},
      {"any_f32_nan_counts_true", ReduceOp::Any, with_nan({64, 30}, kFloat32), {1}, kBool},
      {"all_u8_cols", ReduceOp::All, zeros_in({300, 64}, kUInt8), {0}, kBool},
      {"any_i64_all", ReduceOp::Any, ri({64, 300}, 0, 1, kInt64), {0, 1}, kBool},
      {"all_bool_empty", ReduceOp::All, b({0, 5}, 0.5), {0}, kBool},
      {"any_bool_empty", ReduceOp::Any, b({0, 5}, 0.5), {0}, kBool},
  };
  std::vector<Case> cs;
  for (const ReduceCase& r : rs) {
    cs.push_back({"reduce_" + r.name, [input = r.input](Generator& g) { return TensorList{input(g)}; },
                  [r](const TensorList& in) {
                    return reduce_direct(r.op, layout_view(in[0], r.layout), r.dims, r.out_dtype);
                  }});
  }
  return cs;
}

KILN_PARITY_SUITE(ReduceParity, reduce_cases);

// ---- arg_reduce ----

TensorList arg_direct(ArgReduceOp op, const Tensor& x, int64_t dim, bool with_values) {
  DimVector keep = x.sizes().dims();
  if (x.dim() > 0) keep[static_cast<size_t>(dim)] = 1;
  Tensor values = with_values ? poisoned(keep, x.dtype(), x.device()) : Tensor();
  Tensor indices = poisoned(keep, kInt64, x.device());
  be(x).arg_reduce(op, x, dim, values, indices);
  return {values, indices};
}

std::vector<Case> arg_reduce_cases() {
  std::vector<Case> cs;
  struct A {
    std::string name;
    std::function<Tensor(Generator&)> input;
    int64_t dim;
    bool transpose = false;
  };
  const std::vector<A> as = {
      {"f32_rows", [](Generator& g) { return randn(g, {37, 53}); }, 1},
      {"f32_cols", [](Generator& g) { return randn(g, {37, 53}); }, 0},
      {"f32_ties", [](Generator& g) { return randint(g, 0, 4, {37, 53}, kFloat32); }, 1},
      {"f32_ties_cols", [](Generator& g) { return randint(g, 0, 3, {53, 37}, kFloat32); }, 0},
      {"f32_nan", [](Generator& g) { return sprinkle(g, randn(g, {37, 53}), 0.03, kNaN); }, 1},
      {"f32_inf_ties", [](Generator& g) { return sprinkle(g, sprinkle(g, randn(g, {37, 53}), 0.05, kInf), 0.05, -kInf); }, 1},
      {"f32_transposed", [](Generator& g) { return randn(g, {53, 37}); }, 1, true},
      {"f32_middle_dim", [](Generator& g) { return randint(g, 0, 5, {7, 33, 5}, kFloat32); }, 1},
      {"f32_long_rows", [](Generator& g) { return randn(g, {4, 100003}); }, 1},
      {"f32_size1_dim", [](Generator& g) { return randn(g, {5, 1, 3}); }, 1},
      {"f32_0dim", [](Generator& g) { return randn(g, {}); }, 0},
      {"f64_rows", [](Generator& g) { return randn(g, {37, 53}, kFloat64); }, 1},
      {"bf16_ties", [](Generator& g) { return randn(g, {37, 53}, kBFloat16); }, 1},
      {"f16_rows", [](Generator& g) { return randn(g, {37, 53}, kFloat16); }, 1},
      {"i64_ties", [](Generator& g) { return randint(g, -3, 3, {37, 53}, kInt64); }, 1},
      {"i32_cols", [](Generator& g) { return randint(g, -100, 100, {37, 53}, kInt32); }, 0},
      {"u8_rows", [](Generator& g) { return randint(g, 0, 256, {37, 53}, kUInt8); }, 1},
  };
  for (const A& a : as) {
    for (ArgReduceOp op : {ArgReduceOp::Max, ArgReduceOp::Min}) {
      const std::string n = std::string("arg") + (op == ArgReduceOp::Max ? "max_" : "min_") + a.name;
      for (bool with_values : {true, false}) {
        cs.push_back({n + (with_values ? "" : "_indices_only"), [input = a.input](Generator& g) { return TensorList{input(g)}; },
                      [a, op, with_values](const TensorList& in) {
                        const Tensor x = a.transpose ? native::t(in[0]) : in[0];
                        return arg_direct(op, x, a.dim, with_values);
                      }});
      }
    }
  }
  return cs;
}

KILN_PARITY_SUITE(ArgReduceParity, arg_reduce_cases);

// ---- softmax ----

Tensor softmax_input(Generator& g, IntArrayRef sizes, DType dt, bool masked) {
  Tensor x = native::mul(randn(g, sizes, dt), Scalar(3.0));
  if (masked) x = sprinkle(g, x, 0.3, -kInf);
  return x;
}

std::vector<Case> softmax_cases() {
  std::vector<Case> cs;
  struct S {
    std::string name;
    std::vector<int64_t> sizes;
    int64_t dim;
    DType dt = kFloat32;
    bool transpose = false, masked = false;
  };
  const std::vector<S> ss = {
      {"f32_rows", {13, 257}, 1},
      {"f32_cols", {257, 13}, 0},
      {"f32_middle", {16, 9, 31}, 1},
      {"f32_transposed", {257, 13}, 1, kFloat32, true},
      {"f32_long_rows", {4, 5000}, 1},
      {"f32_very_long_rows", {2, 70000}, 1},
      {"f32_short_rows", {2048, 8}, 1},
      {"f32_single", {7, 1}, 1},
      {"f32_masked", {13, 257}, 1, kFloat32, false, true},
      {"f64_rows", {13, 257}, 1, kFloat64},
      {"bf16_rows", {13, 257}, 1, kBFloat16},
      {"f16_cols", {257, 13}, 0, kFloat16},
  };
  for (const S& s : ss) {
    for (bool log : {false, true}) {
      const std::string n = std::string(log ? "log_softmax_" : "softmax_") + s.name;
      auto make = [s](Generator& g) { return TensorList{softmax_input(g, s.sizes, s.dt, s.masked)}; };
      cs.push_back({n, make, [s, log](const TensorList& in) {
                      const Tensor x = s.transpose ? native::t(in[0]) : in[0];
                      return with_poisoned(x.sizes(), x.dtype(), x.device(),
                                           [&](const Tensor& out) { be(x).softmax(x, s.dim, log, out); });
                    }});
      cs.push_back({n + "_backward",
                    [s](Generator& g) {
                      return TensorList{softmax_input(g, s.sizes, s.dt, s.masked), randn(g, s.sizes, s.dt)};
                    },
                    [s, log](const TensorList& in) {
                      const Tensor x = s.transpose ? native::t(in[0]) : in[0];
                      const Tensor grad = s.transpose ? native::contiguous(native::t(in[1])) : in[1];
                      const Tensor y = log ? native::log_softmax(x, s.dim) : native::softmax(x, s.dim);
                      return with_poisoned(x.sizes(), x.dtype(), x.device(), [&](const Tensor& gi) {
                        be(x).softmax_backward(grad, y, s.dim, log, gi);
                      });
                    }});
    }
  }
  // A row of -inf only: NaN (0/0), as torch; a NaN poisons its row.
  cs.push_back({"softmax_f32_all_masked_row_and_nan",
                [](Generator& g) {
                  Tensor x = randn(g, {4, 9});
                  native::fill_(native::select(x, 0, 1), -kInf);
                  native::fill_(native::select(native::select(x, 0, 2), 0, 3), kNaN);
                  return TensorList{x};
                },
                [](const TensorList& in) {
                  return TensorList{native::softmax(in[0], 1), native::log_softmax(in[0], 1)};
                }});
  for (DType dt : {kFloat32, kFloat64}) {
    cs.push_back({"softmax_api_" + dn(dt), [dt](Generator& g) { return TensorList{randn(g, {6, 5, 7}, dt)}; },
                  [](const TensorList& in) {
                    return TensorList{kiln::softmax(in[0], -1), kiln::log_softmax(in[0], 1), kiln::softmax(in[0], 0)};
                  },
                  true});
  }
  cs.push_back({"softmax_api_bf16_in_f32", [](Generator& g) { return TensorList{randn(g, {6, 33}, kBFloat16)}; },
                [](const TensorList& in) {
                  return TensorList{kiln::softmax(in[0], 1, kFloat32), kiln::log_softmax(in[0], 1, kFloat32)};
                },
                true});
  return cs;
}

KILN_PARITY_SUITE(SoftmaxParity, softmax_cases);

// ---- the public reductions, with backward ----

std::vector<Case> reduce_api_cases() {
  std::vector<Case> cs;
  using Fn = std::function<TensorList(const Tensor&)>;
  const std::vector<std::pair<std::string, Fn>> fns = {
      {"sum", [](const Tensor& x) { return TensorList{kiln::sum(x), kiln::sum(x, {0, 2}), kiln::sum(x, {1}, true)}; }},
      {"mean", [](const Tensor& x) { return TensorList{kiln::mean(x), kiln::mean(x, {-1})}; }},
      {"prod", [](const Tensor& x) { return TensorList{kiln::prod(kiln::add(kiln::abs(x), 0.5), 1)}; }},
      {"amax_amin", [](const Tensor& x) { return TensorList{kiln::amax(x, {1}), kiln::amin(x, {0, 2})}; }},
      {"max_min_dim",
       [](const Tensor& x) {
         auto [v, i] = kiln::max(x, 1);
         auto [w, j] = kiln::min(x, -1, true);
         return TensorList{v, i, w, j, kiln::max(x), kiln::argmax(x), kiln::argmin(x, 2)};
       }},
      {"var_std", [](const Tensor& x) { return TensorList{kiln::var(x), kiln::var(x, {1}), kiln::std(x, {0, 2}, false)}; }},
      {"norm",
       [](const Tensor& x) {
         return TensorList{kiln::norm(x), kiln::norm(x, 1, {1}), kiln::norm(x, 3, {2}),
                           kiln::norm(x, std::numeric_limits<double>::infinity(), {0})};
       }},
      {"logsumexp", [](const Tensor& x) { return TensorList{kiln::logsumexp(x, {1}), kiln::logsumexp(x, {0, 2}, true)}; }},
      {"all_any",
       [](const Tensor& x) {
         const Tensor pos = kiln::gt(x, -1.5);
         return TensorList{kiln::all(pos), kiln::all(pos, 1), kiln::any(kiln::gt(x, 2.0), 2)};
       }},
  };
  for (const auto& [name, fn] : fns) {
    for (DType dt : {kFloat32, kFloat64}) {
      cs.push_back({"reduce_api_" + name + "_" + dn(dt), [dt](Generator& g) { return TensorList{randn(g, {6, 7, 9}, dt)}; },
                    [fn](const TensorList& in) { return fn(in[0]); }, name != "all_any"});
    }
  }
  cs.push_back({"reduce_api_mean_bf16", [](Generator& g) { return TensorList{randn(g, {6, 70}, kBFloat16)}; },
                [](const TensorList& in) { return TensorList{kiln::mean(in[0], {1}), kiln::sum(in[0], {1}, false, kFloat32)}; },
                true});
  cs.push_back({"reduce_api_sum_int", [](Generator& g) { return TensorList{randint(g, -9, 9, {6, 70}, kInt32)}; },
                [](const TensorList& in) { return TensorList{kiln::sum(in[0]), kiln::sum(in[0], {0})}; }});
  return cs;
}

KILN_PARITY_SUITE(ReduceApiParity, reduce_api_cases);

}  // namespace
