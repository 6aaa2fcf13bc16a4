// CPU <-> CUDA parity of the fill and pointwise kernels: Backend::fill,
// arange, linspace, unary (every UnaryOp), binary (every BinaryOp), where
// and clamp (Backend::copy is in test_parity_copy.cpp).
// Each is called directly with poisoned outputs over the dtypes and layouts
// it takes (contiguous, transposed, sliced, broadcast, misaligned, 0-dim,
// empty, large, IEEE special values), and the public ops run with backward.
#include "cuda/parity_util.h"

namespace {

using namespace kiln;
using namespace kiln::testing::parity;

const std::vector<DType> kFloats = {kFloat32, kFloat64, kBFloat16, kFloat16};

Backend& be(const Tensor& t) { return backend_of(t); }
std::string dn(DType d) { return short_name(d); }

// ---- unary ----

const std::vector<UnaryOp> kUnaryOps = {
    UnaryOp::Neg,  UnaryOp::Exp,     UnaryOp::Log,     UnaryOp::Log1p,    UnaryOp::Expm1,    UnaryOp::Sqrt,
    UnaryOp::Rsqrt, UnaryOp::Abs,    UnaryOp::Sign,    UnaryOp::Tanh,     UnaryOp::Sigmoid,  UnaryOp::Relu,
    UnaryOp::GeluErf, UnaryOp::GeluTanh, UnaryOp::Silu, UnaryOp::Sin,     UnaryOp::Cos,      UnaryOp::Acos,
    UnaryOp::Erf,  UnaryOp::Reciprocal, UnaryOp::Floor, UnaryOp::Ceil,    UnaryOp::Round};  // + LogicalNot below

// Defined for integers too (the rest are float-only in the backend).
bool integer_unary(UnaryOp op) {
  return op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Sign || op == UnaryOp::Relu ||
         op == UnaryOp::Floor || op == UnaryOp::Ceil || op == UnaryOp::Round;
}
bool smooth_unary(UnaryOp op) {
  return op != UnaryOp::Sign && op != UnaryOp::Floor && op != UnaryOp::Ceil && op != UnaryOp::Round;
}

Tensor unary_input(UnaryOp op, Generator& g, IntArrayRef sizes, DType dt) {
  switch (op) {
    case UnaryOp::Log: case UnaryOp::Sqrt: case UnaryOp::Rsqrt: return uniform(g, sizes, 0.05, 5.0, dt);
    case UnaryOp::Log1p: return uniform(g, sizes, -0.95, 4.0, dt);
    case UnaryOp::Acos: return uniform(g, sizes, -0.99, 0.99, dt);
    case UnaryOp::Reciprocal: return signed_away_from_zero(g, sizes, 0.1, 4.0, dt);
    case UnaryOp::Floor: case UnaryOp::Ceil: case UnaryOp::Round:
      // Quarters, halves included (round to even); exact in every float type.
      return native::to(native::mul(randint(g, -40, 41, sizes, kFloat64), Scalar(0.25)), dt);
    default: return uniform(g, sizes, -5.0, 5.0, dt);
  }
}

Tensor apply_unary(UnaryOp op, const Tensor& x) {
  switch (op) {
    case UnaryOp::Neg: return kiln::neg(x);
    case UnaryOp::Exp: return kiln::exp(x);
    case UnaryOp::Log: return kiln::log(x);
    case UnaryOp::Log1p: return kiln::log1p(x);
    case UnaryOp::Expm1: return kiln::expm1(x);
    case UnaryOp::Sqrt: return kiln::sqrt(x);
    case UnaryOp::Rsqrt: return kiln::rsqrt(x);
    case UnaryOp::Abs: return kiln::abs(x);
    case UnaryOp::Sign: return kiln::sign(x);
    case UnaryOp::Tanh: return kiln::tanh(x);
    case UnaryOp::Sigmoid: return kiln::sigmoid(x);
    case UnaryOp::Relu: return kiln::relu(x);
    case UnaryOp::GeluErf: return kiln::gelu(x);
    case UnaryOp::GeluTanh: return kiln::gelu(x, "tanh");
    case UnaryOp::Silu: return kiln::silu(x);
    case UnaryOp::Sin: return kiln::sin(x);
    case UnaryOp::Cos: return kiln::cos(x);
    case UnaryOp::Acos: return kiln::acos(x);
    case UnaryOp::Erf: return kiln::erf(x);
    case UnaryOp::Reciprocal: return kiln::reciprocal(x);
    case UnaryOp::Floor: return kiln::floor(x);
    case UnaryOp::Ceil: return kiln::ceil(x);
    case UnaryOp::Round: return kiln::round(x);
    case UnaryOp::LogicalNot: return kiln::logical_not(x);
  }
  return Tensor();
}

DType unary_out_dtype(UnaryOp op, DType in) { return op == UnaryOp::LogicalNot ? kBool : in; }

TensorList unary_direct(UnaryOp op, const Tensor& x) {
  return with_poisoned(x.sizes(), unary_out_dtype(op, x.dtype()), x.device(),
                       [&](const Tensor& out) { be(x).unary(op, x, out); });
}

std::vector<Case> unary_cases() {
  std::vector<Case> cs;
  for (UnaryOp op : kUnaryOps) {
    const std::string n = std::string("unary_") + op_name(op) + "_";
    auto direct = [op](const TensorList& in) { return unary_direct(op, in[0]); };
    for (DType dt : kFloats) {
      cs.push_back({n + dn(dt), [op, dt](Generator& g) { return TensorList{unary_input(op, g, {37, 53}, dt)}; },
                    direct});
    }
    // Transposed input into every other column of a poisoned output.
    cs.push_back({n + "f32_strided",
                  [op](Generator& g) { return TensorList{unary_input(op, g, {53, 37}, kFloat32)}; },
                  [op](const TensorList& in) {
                    const Tensor x = native::t(in[0]);
                    return with_poisoned_strided(37, 53, kFloat32, x.device(),
                                                 [&](const Tensor& out) { be(x).unary(op, x, out); });
                  }});
    for (DType dt : {kFloat32, kFloat64}) {
      cs.push_back({n + dn(dt) + "_special", [dt](Generator&) { return TensorList{specials(dt)}; }, direct});
      cs.push_back({n + dn(dt) + "_api",
                    [op, dt](Generator& g) { return TensorList{unary_input(op, g, {19, 23}, dt)}; },
                    [op](const TensorList& in) { return TensorList{apply_unary(op, in[0])}; }, smooth_unary(op)});
    }
    if (integer_unary(op)) {
      for (DType dt : {kInt64, kInt32, kUInt8}) {
        const int64_t lo = dt == kUInt8 ? 0 : -100, hi = dt == kUInt8 ? 256 : 100;
        cs.push_back({n + dn(dt), [lo, hi, dt](Generator& g) { return TensorList{randint(g, lo, hi, {37, 53}, dt)}; },
                      direct});
      }
    }
  }
  // logical_not: any input dtype, bool out.
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kInt32, kUInt8, kBool}) {
    cs.push_back({"unary_logical_not_" + dn(dt),
                  [dt](Generator& g) {
                    if (dt == kBool) return TensorList{bools(g, {37, 53})};
                    Tensor x = randint(g, dt == kUInt8 ? 0 : -2, 3, {37, 53}, dt);  // many zeros
                    if (is_floating_point(dt)) x = sprinkle(g, x, 0.05, std::numeric_limits<double>::quiet_NaN());
                    return TensorList{x};
                  },
                  [](const TensorList& in) { return unary_direct(UnaryOp::LogicalNot, in[0]); }});
  }
  // Float ops on integer inputs compute in the default float dtype.
  for (UnaryOp op : {UnaryOp::Exp, UnaryOp::Sqrt, UnaryOp::Sigmoid, UnaryOp::Sin}) {
    cs.push_back({std::string("unary_") + op_name(op) + "_i64_api",
                  [](Generator& g) { return TensorList{randint(g, 0, 20, {17, 9})}; },
                  [op](const TensorList& in) { return TensorList{apply_unary(op, in[0])}; }});
  }
  // Shapes: 0-dim, empty, large (grid-stride loops, vector tails), misaligned.
  auto direct_of = [](UnaryOp op) { return [op](const TensorList& in) { return unary_direct(op, in[0]); }; };
  cs.push_back({"unary_exp_f32_0dim", [](Generator& g) { return TensorList{randn(g, {})}; }, direct_of(UnaryOp::Exp)});
  cs.push_back({"unary_exp_f32_empty", [](Generator& g) { return TensorList{randn(g, {0, 7})}; },
                direct_of(UnaryOp::Exp)});
  cs.push_back({"unary_gelu_f32_large", [](Generator& g) { return TensorList{randn(g, {(1 << 20) + 3})}; },
                direct_of(UnaryOp::GeluErf)});
  cs.push_back({"unary_silu_bf16_large", [](Generator& g) { return TensorList{randn(g, {(1 << 20) + 5}, kBFloat16)}; },
                direct_of(UnaryOp::Silu)});
  cs.push_back({"unary_tanh_f32_misaligned", [](Generator& g) { return TensorList{randn(g, {1029})}; },
                [](const TensorList& in) {
                  const Tensor x = native::slice(in[0], 0, 1, std::nullopt);  // storage offset 1
                  Tensor base = poisoned({1029}, kFloat32, x.device());
                  be(x).unary(UnaryOp::Tanh, x, native::slice(base, 0, 1, std::nullopt));
                  return TensorList{base};
                }});
  return cs;
}

KILN_PARITY_SUITE(UnaryParity, unary_cases);

// ---- binary ----

const std::vector<BinaryOp> kBinaryOps = {
    BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::Minimum, BinaryOp::Maximum,
    BinaryOp::Eq, BinaryOp::Ne, BinaryOp::Lt, BinaryOp::Le, BinaryOp::Gt, BinaryOp::Ge,
    BinaryOp::LogicalAnd, BinaryOp::LogicalOr, BinaryOp::LogicalXor,
    BinaryOp::ReluBackward, BinaryOp::SigmoidBackward, BinaryOp::TanhBackward, BinaryOp::GeluErfBackward,
    BinaryOp::GeluTanhBackward, BinaryOp::SiluBackward};

bool fused_backward(BinaryOp op) { return op >= BinaryOp::ReluBackward; }
bool logical(BinaryOp op) { return op >= BinaryOp::LogicalAnd && op <= BinaryOp::LogicalXor; }

// Which dtypes the backend takes each op in (the native layer converts the rest).
bool binary_supports(BinaryOp op, DType dt) {
  if (is_floating_point(dt)) return true;
  if (op == BinaryOp::Div || fused_backward(op)) return false;
  if (dt == kBool) return op != BinaryOp::Sub && op != BinaryOp::Pow;
  return true;
}

TensorList binary_inputs(BinaryOp op, Generator& g, IntArrayRef sa, IntArrayRef sb, DType dt) {
  const bool fl = is_floating_point(dt);
  if (dt == kBool) return {bools(g, sa), bools(g, sb)};
  if (op == BinaryOp::Div) return {uniform(g, sa, -4, 4, dt), signed_away_from_zero(g, sb, 0.25, 4, dt)};
  if (op == BinaryOp::Pow) {
    if (fl) return {uniform(g, sa, 0.1, 3, dt), uniform(g, sb, -2.5, 2.5, dt)};
    // int64 also takes negative exponents (0 except for bases +-1, as torch).
    return {randint(g, dt == kUInt8 ? 0 : -4, 5, sa, dt), randint(g, dt == kInt64 ? -2 : 0, 5, sb, dt)};
  }
  if (produces_bool(op)) {  // small integers: equal pairs are common
    const int64_t lo = dt == kUInt8 ? 0 : logical(op) ? -1 : -3;
    return {randint(g, lo, 4, sa, dt), randint(g, lo, 4, sb, dt)};
  }
  if (fused_backward(op)) return {randn(g, sa, dt), uniform(g, sb, -4, 4, dt)};
  if (fl) return {uniform(g, sa, -4, 4, dt), uniform(g, sb, -4, 4, dt)};
  if (dt == kUInt8) return {randint(g, 0, 16, sa, dt), randint(g, 0, 16, sb, dt)};
  return {randint(g, -1000, 1000, sa, dt), randint(g, -1000, 1000, sb, dt)};
}

DType binary_out_dtype(BinaryOp op, DType in) { return produces_bool(op) ? kBool : in; }

TensorList binary_direct(BinaryOp op, const Tensor& a, const Tensor& b) {
  return with_poisoned(a.sizes(), binary_out_dtype(op, a.dtype()), a.device(),
                       [&](const Tensor& out) { be(a).binary(op, a, b, out); });
}

std::vector<Case> binary_cases() {
  std::vector<Case> cs;
  for (BinaryOp op : kBinaryOps) {
    const std::string n = std::string("binary_") + op_name(op) + "_";
    auto direct = [op](const TensorList& in) { return binary_direct(op, in[0], in[1]); };
    for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16, kInt64, kInt32, kUInt8, kBool}) {
      if (!binary_supports(op, dt)) continue;
      cs.push_back({n + dn(dt), [op, dt](Generator& g) { return binary_inputs(op, g, {37, 53}, {37, 53}, dt); },
                    direct});
    }
    // a transposed, b broadcast along rows, out every other column.
    cs.push_back({n + "f32_strided", [op](Generator& g) { return binary_inputs(op, g, {53, 37}, {53}, kFloat32); },
                  [op](const TensorList& in) {
                    const Tensor a = native::t(in[0]), b = native::expand(in[1], {37, 53});
                    return with_poisoned_strided(37, 53, binary_out_dtype(op, kFloat32), a.device(),
                                                 [&](const Tensor& out) { be(a).binary(op, a, b, out); });
                  }});
    // A 0-dim operand broadcast everywhere (all strides 0), on either side.
    cs.push_back({n + "f32_scalar_rhs", [op](Generator& g) { return binary_inputs(op, g, {37, 53}, {}, kFloat32); },
                  [op](const TensorList& in) { return binary_direct(op, in[0], native::expand(in[1], {37, 53})); }});
    cs.push_back({n + "f32_scalar_lhs", [op](Generator& g) { return binary_inputs(op, g, {}, {37, 53}, kFloat32); },
                  [op](const TensorList& in) { return binary_direct(op, native::expand(in[0], {37, 53}), in[1]); }});
    // IEEE corner cases (the CPU agrees with torch on all of them). Not for
    // the fused backwards but ReLU's: their b is a forward input or output,
    // and formulas equal on real inputs differ on impossible ones (y = inf).
    if (fused_backward(op) && op != BinaryOp::ReluBackward) continue;
    for (DType dt : {kFloat32, kFloat64}) {
      cs.push_back({n + dn(dt) + "_special", [dt](Generator&) { return special_pairs(dt); }, direct});
    }
  }
  cs.push_back({"binary_add_f32_large",
                [](Generator& g) { return TensorList{randn(g, {(1 << 20) + 5}), randn(g, {(1 << 20) + 5})}; },
                [](const TensorList& in) { return binary_direct(BinaryOp::Add, in[0], in[1]); }});
  cs.push_back({"binary_mul_bf16_large",
                [](Generator& g) {
                  return TensorList{randn(g, {(1 << 20) + 7}, kBFloat16), randn(g, {(1 << 20) + 7}, kBFloat16)};
                },
                [](const TensorList& in) { return binary_direct(BinaryOp::Mul, in[0], in[1]); }});
  cs.push_back({"binary_sub_f32_misaligned", [](Generator& g) { return TensorList{randn(g, {1030}), randn(g, {1030})}; },
                [](const TensorList& in) {
                  const Tensor a = native::slice(in[0], 0, 1, 1028), b = native::slice(in[1], 0, 2, 1029);
                  Tensor base = poisoned({1030}, kFloat32, a.device());
                  be(a).binary(BinaryOp::Sub, a, b, native::slice(base, 0, 3, 1030));
                  return TensorList{base};
                }});
  // Signed overflow wraps, as torch.
  cs.push_back({"binary_add_i32_wrap",
                [](Generator& g) {
                  return TensorList{randint(g, 1 << 30, (int64_t{1} << 31) - 1, {1000}, kInt32),
                                    randint(g, 1 << 30, (int64_t{1} << 31) - 1, {1000}, kInt32)};
                },
                [](const TensorList& in) { return binary_direct(BinaryOp::Add, in[0], in[1]); }});
  cs.push_back({"binary_mul_i64_wrap",
                [](Generator& g) {
                  return TensorList{randint(g, int64_t{1} << 40, int64_t{1} << 41, {1000}),
                                    randint(g, -(int64_t{1} << 41), int64_t{1} << 41, {1000})};
                },
                [](const TensorList& in) { return binary_direct(BinaryOp::Mul, in[0], in[1]); }});
  return cs;
}

KILN_PARITY_SUITE(BinaryParity, binary_cases);

// The public binary ops: broadcasting (gradients summed back), promotion, scalars.
std::vector<Case> binary_api_cases() {
  std::vector<Case> cs;
  using Fn = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::vector<std::pair<std::string, Fn>> fns = {
      {"add_alpha", [](const Tensor& a, const Tensor& b) { return kiln::add(a, b, 2); }},
      {"sub_alpha", [](const Tensor& a, const Tensor& b) { return kiln::sub(a, b, 0.5); }},
      {"mul", [](const Tensor& a, const Tensor& b) { return kiln::mul(a, b); }},
      {"div", [](const Tensor& a, const Tensor& b) { return kiln::div(a, kiln::add(kiln::abs(b), 0.5)); }},
      {"pow", [](const Tensor& a, const Tensor& b) { return kiln::pow(kiln::add(kiln::abs(a), 0.1), b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return kiln::minimum(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return kiln::maximum(a, b); }},
  };
  for (const auto& [name, fn] : fns) {
    for (DType dt : {kFloat32, kFloat64}) {
      cs.push_back({"binary_api_" + name + "_" + dn(dt),
                    [dt](Generator& g) { return TensorList{randn(g, {7, 1, 5}, dt), randn(g, {1, 6, 5}, dt)}; },
                    [fn](const TensorList& in) { return TensorList{fn(in[0], in[1])}; }, true});
    }
  }
  // pow with a scalar exponent: the special-cased exponents and a general one.
  for (double e : {2.0, 0.5, 3.0, -1.0, -2.0, -0.5, 1.7}) {
    cs.push_back({"binary_api_pow_scalar_" + std::to_string(static_cast<int>(e * 10)),
                  [](Generator& g) { return TensorList{uniform(g, {33, 17}, 0.2, 3.0)}; },
                  [e](const TensorList& in) { return TensorList{kiln::pow(in[0], e)}; }, true});
  }
  cs.push_back({"binary_api_compare_broadcast",
                [](Generator& g) { return TensorList{randint(g, -2, 3, {9, 1}, kFloat32), randint(g, -2, 3, {1, 8}, kFloat32)}; },
                [](const TensorList& in) {
                  return TensorList{kiln::lt(in[0], in[1]), kiln::eq(in[0], in[1]), kiln::ge(in[0], 1),
                                    kiln::logical_xor(in[0], in[1])};
                }});
  // Promotion: int64 + f32 -> f32; bf16 * f32 -> f32; a 0-dim f64 tensor does not promote bf16; int / int -> float.
  cs.push_back({"binary_api_promote_int_float",
                [](Generator& g) { return TensorList{randint(g, -5, 5, {6, 7}), randn(g, {6, 7})}; },
                [](const TensorList& in) { return TensorList{kiln::add(in[0], in[1])}; }, true});
  cs.push_back({"binary_api_promote_bf16_f32",
                [](Generator& g) { return TensorList{randn(g, {6, 7}, kBFloat16), randn(g, {7}, kFloat32)}; },
                [](const TensorList& in) { return TensorList{kiln::mul(in[0], in[1])}; }, true});
  cs.push_back({"binary_api_promote_bf16_0dim_f64",
                [](Generator& g) { return TensorList{randn(g, {6, 7}, kBFloat16), randn(g, {}, kFloat64)}; },
                [](const TensorList& in) { return TensorList{kiln::mul(in[0], in[1])}; }, true});
  cs.push_back({"binary_api_true_division_int",
                [](Generator& g) { return TensorList{randint(g, -50, 50, {40}), randint(g, 1, 9, {40})}; },
                [](const TensorList& in) { return TensorList{kiln::div(in[0], in[1])}; }});
  return cs;
}

KILN_PARITY_SUITE(BinaryApiParity, binary_api_cases);

// ---- where, clamp ----

std::vector<Case> where_clamp_cases() {
  std::vector<Case> cs;
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16, kInt64, kInt32, kUInt8, kBool}) {
    cs.push_back({"where_" + dn(dt),
                  [dt](Generator& g) {
                    if (dt == kBool) return TensorList{bools(g, {37, 53}), bools(g, {37, 53}), bools(g, {37, 53})};
                    return TensorList{bools(g, {37, 53}), randint(g, 0, 100, {37, 53}, dt), randint(g, 100, 200, {37, 53}, dt)};
                  },
                  [](const TensorList& in) {
                    return with_poisoned(in[1].sizes(), in[1].dtype(), in[1].device(),
                                         [&](const Tensor& out) { be(in[1]).where(in[0], in[1], in[2], out); });
                  }});
  }
  cs.push_back({"where_f32_strided",  // cond broadcast along rows, a transposed, b a 0-dim value
                [](Generator& g) { return TensorList{bools(g, {53}), randn(g, {53, 37}), randn(g, {})}; },
                [](const TensorList& in) {
                  const Tensor c = native::expand(in[0], {37, 53}), a = native::t(in[1]), b = native::expand(in[2], {37, 53});
                  return with_poisoned_strided(37, 53, kFloat32, a.device(),
                                               [&](const Tensor& out) { be(a).where(c, a, b, out); });
                }});
  cs.push_back({"where_api", [](Generator& g) { return TensorList{bools(g, {5, 1}), randn(g, {5, 6}), randn(g, {6})}; },
                [](const TensorList& in) {
                  return TensorList{kiln::where(in[0], in[1], in[2]), kiln::where(in[0], in[1], 0.5),
                                    kiln::masked_fill(in[1], in[0], -1e9)};
                },
                true});

  using OptS = std::optional<Scalar>;
  struct ClampCase {
    std::string name;
    DType dt;
    OptS lo, hi;
  };
  const std::vector<ClampCase> clamps = {
      {"f32_both", kFloat32, -1.0, 2.0},      {"f32_min", kFloat32, -0.5, std::nullopt},
      {"f32_max", kFloat32, std::nullopt, 0.25}, {"f32_min_above_max", kFloat32, 1.0, -1.0},
      {"f32_int_bounds", kFloat32, -2, 3},    {"f64_both", kFloat64, -1.5, 1.5},
      {"bf16_both", kBFloat16, -1.0, 2.0},    {"f16_both", kFloat16, -1.0, 2.0},
      {"i32_both", kInt32, -5, 7},            {"i64_min", kInt64, 10, std::nullopt},
      {"u8_both", kUInt8, 10, 200},
  };
  for (const ClampCase& c : clamps) {
    cs.push_back({"clamp_" + c.name,
                  [dt = c.dt](Generator& g) {
                    if (dt == kUInt8) return TensorList{randint(g, 0, 256, {37, 53}, dt)};
                    if (!is_floating_point(dt)) return TensorList{randint(g, -20, 20, {37, 53}, dt)};
                    return TensorList{uniform(g, {37, 53}, -4, 4, dt)};
                  },
                  [c](const TensorList& in) {
                    return with_poisoned(in[0].sizes(), in[0].dtype(), in[0].device(),
                                         [&](const Tensor& out) { be(in[0]).clamp(in[0], c.lo, c.hi, out); });
                  }});
  }
  for (DType dt : {kFloat32, kFloat64}) {
    cs.push_back({"clamp_" + dn(dt) + "_special", [dt](Generator&) { return TensorList{specials(dt)}; },
                  [](const TensorList& in) {
                    return with_poisoned(in[0].sizes(), in[0].dtype(), in[0].device(), [&](const Tensor& out) {
                      be(in[0]).clamp(in[0], OptS(-3.0), OptS(30.0), out);
                    });
                  }});
  }
  cs.push_back({"clamp_f32_strided", [](Generator& g) { return TensorList{randn(g, {53, 37})}; },
                [](const TensorList& in) {
                  const Tensor x = native::t(in[0]);
                  return with_poisoned_strided(37, 53, kFloat32, x.device(), [&](const Tensor& out) {
                    be(x).clamp(x, OptS(-0.5), OptS(0.5), out);
                  });
                }});
  for (DType dt : {kFloat32, kFloat64}) {
    cs.push_back({"clamp_api_" + dn(dt), [dt](Generator& g) { return TensorList{randn(g, {13, 11}, dt)}; },
                  [](const TensorList& in) {
                    return TensorList{kiln::clamp(in[0], -0.5, 0.5), kiln::clamp_min(in[0], 0.1),
                                      kiln::clamp_max(in[0], -0.2)};
                  },
                  true});
  }
  return cs;
}

KILN_PARITY_SUITE(WhereClampParity, where_clamp_cases);

// ---- fill, arange, linspace ----

std::vector<Case> factory_cases() {
  std::vector<Case> cs;
  const std::vector<std::pair<DType, Scalar>> fills = {
      {kFloat32, 3.25},  {kFloat64, 3.141592653589793}, {kBFloat16, 1.0 / 3.0}, {kFloat16, -65504.0},
      {kInt64, (int64_t{1} << 40) + 7}, {kInt32, -5}, {kUInt8, 200}, {kBool, true}, {kBool, false}};
  for (const auto& [dt, v] : fills) {
    cs.push_back({"fill_" + dn(dt) + "_" + std::to_string(static_cast<int64_t>(v.toDouble() * 100)),
                  [](Generator&) { return device_token(); },
                  [dt, v](const TensorList& in) {
                    // Poisoned with the other bool so the fill must write every element.
                    Tensor out = poisoned({37, 53}, dt, in[0].device(), dt == kBool ? !v.to<bool>() : true);
                    be(out).fill(out, v);
                    return TensorList{out};
                  }});
  }
  cs.push_back({"fill_f32_strided", [](Generator&) { return device_token(); },
                [](const TensorList& in) {
                  return with_poisoned_strided(37, 53, kFloat32, in[0].device(),
                                               [](const Tensor& out) { be(out).fill(out, Scalar(-2.5)); });
                }});
  cs.push_back({"fill_bf16_transposed_0dim", [](Generator&) { return device_token(); },
                [](const TensorList& in) {
                  Tensor t = poisoned({53, 37}, kBFloat16, in[0].device()), s = poisoned({}, kBFloat16, in[0].device());
                  be(t).fill(native::t(t), Scalar(7.0));
                  be(s).fill(s, Scalar(-1.5));
                  return TensorList{t, s};
                }});
  struct Range {
    DType dt;
    Scalar start, step;
    int64_t n;
  };
  const std::vector<Range> ranges = {{kFloat32, 0.5, 0.25, 1000},  {kFloat64, -3.0, 1e-3, 10007},
                                     {kInt64, 5, 3, 1000},          {kInt32, -100, -7, 500},
                                     {kBFloat16, 0, 1, 300},        {kFloat16, 0.0, 0.5, 2000},
                                     {kFloat32, 0, 1, (1 << 20) + 1}};
  for (const Range& r : ranges) {
    cs.push_back({"arange_" + dn(r.dt) + "_" + std::to_string(r.n), [](Generator&) { return device_token(); },
                  [r](const TensorList& in) {
                    Tensor out = poisoned({r.n}, r.dt, in[0].device());
                    be(out).arange(out, r.start, r.step);
                    return TensorList{out};
                  }});
  }
  struct Lin {
    DType dt;
    Scalar start, end;
    int64_t n;
  };
  const std::vector<Lin> lins = {{kFloat32, -1.0, 1.0, 1001}, {kFloat64, 0.0, 1.0, 1000}, {kInt64, 0, 100, 37},
                                 {kInt32, -50, 50, 13},      {kBFloat16, 0.0, 10.0, 101}, {kFloat16, -3.0, 5.0, 64},
                                 {kFloat32, 2.0, 3.0, 1},    {kFloat32, 2.0, -3.0, 2}};
  for (const Lin& l : lins) {
    cs.push_back({"linspace_" + dn(l.dt) + "_" + std::to_string(l.n), [](Generator&) { return device_token(); },
                  [l](const TensorList& in) {
                    Tensor out = poisoned({l.n}, l.dt, in[0].device());
                    be(out).linspace(out, l.start, l.end);
                    return TensorList{out};
                  }});
  }
  cs.push_back({"factory_api", [](Generator&) { return device_token(); },
                [](const TensorList& in) {
                  const TensorOptions o = TensorOptions().device(in[0].device());
                  return TensorList{kiln::arange(0.0, 10.0, 0.1, o), kiln::arange(100, o), kiln::linspace(-2, 2, 77, o),
                                    kiln::full({3, 4}, 2.5, o), kiln::zeros({5}, o.dtype(kInt32)),
                                    kiln::ones({2, 2}, o.dtype(kBool))};
                }});
  return cs;
}

KILN_PARITY_SUITE(FactoryParity, factory_cases);

}  // namespace
