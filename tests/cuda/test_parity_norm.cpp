// CPU <-> CUDA parity of the normalisation kernels: Backend::layer_norm,
// group_norm, batch_norm_stats, batch_norm_apply and their backwards, each
// called directly with poisoned outputs (every subset of gradients, with and
// without affine parameters, 16-bit inputs with float32 parameters, long and
// short rows), and the public layer/group/batch norm with backward (batch
// norm's running statistics compared after the update too).
//
// The backward cases feed both devices the same forward statistics (computed
// on the CPU in make()), so they test the backward kernels alone.
#include "cuda/parity_util.h"

namespace {

using namespace kiln;
using namespace kiln::testing::parity;
namespace F = kiln::nn::functional;

Backend& be(const Tensor& t) { return backend_of(t); }
std::string dn(DType d) { return short_name(d); }
DType stat_dtype(DType d) { return d == kFloat64 ? kFloat64 : kFloat32; }
Tensor poison_if(bool on, IntArrayRef sizes, DType dt, Device dev) { return on ? poisoned(sizes, dt, dev) : Tensor(); }

struct Norm {
  std::string name;
  std::vector<int64_t> sizes;
  DType dt = kFloat32;
  DType param_dt = kFloat32;  // float32 with 16-bit inputs (torch's mixed dtype), else the input's
  bool affine = true;
  int64_t groups = 1;  // group norm only
};

Norm with_dtype(Norm n, DType dt, DType param_dt) {
  n.dt = dt;
  n.param_dt = param_dt;
  n.name += '_';
  n.name += short_name(dt);
  if (param_dt != dt) {
    n.name += '_';
    n.name += short_name(param_dt);
    n.name += "_params";
  }
  return n;
}

// The gradient subsets a backward is asked for: (input, weight, bias).
const std::vector<std::pair<std::string, std::array<bool, 3>>> kMasks = {
    {"all", {true, true, true}}, {"input_only", {true, false, false}}, {"params_only", {false, true, true}}};

// ---- layer norm: rows of the last dim ----

std::vector<Case> layer_norm_cases() {
  std::vector<Norm> base = {
      {"rows", {37, 129}},
      {"no_affine", {37, 129}, kFloat32, kFloat32, false},
      {"long_rows", {8, 4096}},
      {"short_rows", {1000, 7}},
      {"3d", {4, 9, 33}},
  };
  std::vector<Norm> ns;
  for (const Norm& n : base) ns.push_back(with_dtype(n, kFloat32, kFloat32));
  ns.push_back(with_dtype(base[0], kFloat64, kFloat64));
  ns.push_back(with_dtype(base[2], kFloat64, kFloat64));
  ns.push_back(with_dtype(base[0], kBFloat16, kFloat32));
  ns.push_back(with_dtype(base[0], kBFloat16, kBFloat16));
  ns.push_back(with_dtype(base[2], kFloat16, kFloat32));
  std::vector<Case> cs;
  for (const Norm& n : ns) {
    const int64_t d = n.sizes.back();
    auto make = [n, d](Generator& g) {
      const Tensor x = native::add(native::mul(randn(g, n.sizes, n.dt), Scalar(2.0)), Scalar(0.5));
      const Tensor w = n.affine ? randn(g, {d}, n.param_dt) : Tensor(), b = n.affine ? randn(g, {d}, n.param_dt) : Tensor();
      auto [out, mean, rstd] = native::layer_norm(x, {d}, w, b, 1e-5);
      return TensorList{x, w, b, randn(g, n.sizes, n.dt), native::flatten(mean), native::flatten(rstd)};
    };
    cs.push_back({"layer_norm_" + n.name, make, [](const TensorList& in) {
                    const Tensor &x = in[0], &w = in[1], &b = in[2];
                    const int64_t m = in[4].numel();
                    Tensor out = poisoned_like(x), mean = poisoned({m}, stat_dtype(x.dtype()), x.device()),
                           rstd = poisoned({m}, stat_dtype(x.dtype()), x.device());
                    be(x).layer_norm(x, w, b, 1e-5, out, mean, rstd);
                    return TensorList{out, mean, rstd};
                  }});
    for (const auto& [mn, mask] : kMasks) {
      if (!n.affine && !mask[0]) continue;
      cs.push_back({"layer_norm_backward_" + n.name + "_" + mn, make, [mask](const TensorList& in) {
                      const Tensor &x = in[0], &w = in[1], &g = in[3];
                      const Device dev = x.device();
                      const bool pw = mask[1] && w.defined(), pb = mask[2] && in[2].defined();
                      Tensor gi = poison_if(mask[0], x.sizes(), x.dtype(), dev);
                      Tensor gw = pw ? poisoned_like(w) : Tensor(), gb = pb ? poisoned_like(in[2]) : Tensor();
                      be(x).layer_norm_backward(g, x, in[4], in[5], w, gi, gw, gb);
                      return TensorList{gi, gw, gb};
                    }});
    }
  }
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    cs.push_back({"layer_norm_api_" + dn(dt),
                  [dt](Generator& g) {
                    return TensorList{randn(g, {3, 5, 6, 8}, dt), randn(g, {6, 8}, dt), randn(g, {6, 8}, dt)};
                  },
                  [](const TensorList& in) {
                    return TensorList{F::layer_norm(in[0], {6, 8}, in[1], in[2], 1e-6), F::layer_norm(in[0], {8})};
                  },
                  true});
  }
  return cs;
}

KILN_PARITY_SUITE(LayerNormParity, layer_norm_cases);

// ---- group norm: [N, C, *] in groups of channels ----

std::vector<Case> group_norm_cases() {
  std::vector<Norm> base = {
      {"g3", {3, 6, 5, 7}, kFloat32, kFloat32, true, 3},
      {"g1", {3, 6, 5, 7}, kFloat32, kFloat32, true, 1},
      {"instance", {3, 6, 5, 7}, kFloat32, kFloat32, true, 6},
      {"large_plane", {2, 32, 28, 28}, kFloat32, kFloat32, true, 8},
      {"3d_input", {4, 8, 50}, kFloat32, kFloat32, true, 2},
      {"no_affine", {3, 6, 5, 7}, kFloat32, kFloat32, false, 3},
  };
  std::vector<Norm> ns = base;
  for (Norm& n : ns) n = with_dtype(n, kFloat32, kFloat32);
  ns.push_back(with_dtype(base[0], kFloat64, kFloat64));
  ns.push_back(with_dtype(base[3], kFloat64, kFloat64));
  ns.push_back(with_dtype(base[3], kBFloat16, kFloat32));
  ns.push_back(with_dtype(base[0], kFloat16, kFloat16));
  std::vector<Case> cs;
  for (const Norm& n : ns) {
    const int64_t c = n.sizes[1];
    auto make = [n, c](Generator& g) {
      const Tensor x = native::add(native::mul(randn(g, n.sizes, n.dt), Scalar(2.0)), Scalar(0.5));
      const Tensor w = n.affine ? randn(g, {c}, n.param_dt) : Tensor(), b = n.affine ? randn(g, {c}, n.param_dt) : Tensor();
      auto [out, mean, rstd] = native::group_norm(x, n.groups, w, b, 1e-5);
      return TensorList{x, w, b, randn(g, n.sizes, n.dt), mean, rstd};
    };
    cs.push_back({"group_norm_" + n.name, make, [groups = n.groups](const TensorList& in) {
                    const Tensor &x = in[0];
                    Tensor out = poisoned_like(x), mean = poisoned_like(in[4]), rstd = poisoned_like(in[5]);
                    be(x).group_norm(x, in[1], in[2], groups, 1e-5, out, mean, rstd);
                    return TensorList{out, mean, rstd};
                  }});
    for (const auto& [mn, mask] : kMasks) {
      if (!n.affine && !mask[0]) continue;
      cs.push_back({"group_norm_backward_" + n.name + "_" + mn, make, [mask, groups = n.groups](const TensorList& in) {
                      const Tensor &x = in[0], &w = in[1], &g = in[3];
                      const bool pw = mask[1] && w.defined(), pb = mask[2] && in[2].defined();
                      Tensor gi = poison_if(mask[0], x.sizes(), x.dtype(), x.device());
                      Tensor gw = pw ? poisoned_like(w) : Tensor(), gb = pb ? poisoned_like(in[2]) : Tensor();
                      be(x).group_norm_backward(g, x, in[4], in[5], w, groups, gi, gw, gb);
                      return TensorList{gi, gw, gb};
                    }});
    }
  }
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    cs.push_back({"group_norm_api_" + dn(dt),
                  [dt](Generator& g) { return TensorList{randn(g, {2, 12, 5, 6}, dt), randn(g, {12}, dt), randn(g, {12}, dt)}; },
                  [](const TensorList& in) {
                    return TensorList{F::group_norm(in[0], 4, in[1], in[2]), F::group_norm(in[0], 12)};
                  },
                  true});
  }
  return cs;
}

KILN_PARITY_SUITE(GroupNormParity, group_norm_cases);

// ---- batch norm: statistics per channel over (N, *) ----

std::vector<Case> batch_norm_cases() {
  std::vector<Norm> base = {
      {"4d", {8, 6, 5, 7}},
      {"2d", {64, 3}},
      {"large", {2, 16, 32, 32}},
      {"no_affine", {8, 6, 5, 7}, kFloat32, kFloat32, false},
  };
  std::vector<Norm> ns = base;
  for (Norm& n : ns) n = with_dtype(n, kFloat32, kFloat32);
  ns.push_back(with_dtype(base[0], kFloat64, kFloat64));
  ns.push_back(with_dtype(base[2], kBFloat16, kFloat32));
  ns.push_back(with_dtype(base[0], kFloat16, kFloat32));
  std::vector<Case> cs;
  for (const Norm& n : ns) {
    const int64_t c = n.sizes[1];
    // x, weight, bias, grad_out, mean, invstd (the batch's, from the CPU).
    auto make = [n, c](Generator& g) {
      const Tensor x = native::add(native::mul(randn(g, n.sizes, n.dt), Scalar(2.0)), Scalar(0.5));
      const Tensor w = n.affine ? randn(g, {c}, n.param_dt) : Tensor(), b = n.affine ? randn(g, {c}, n.param_dt) : Tensor();
      auto [out, mean, invstd] = native::batch_norm(x, w, b, Tensor(), Tensor(), true, 0.1, 1e-5);
      return TensorList{x, w, b, randn(g, n.sizes, n.dt), mean, invstd};
    };
    cs.push_back({"batch_norm_stats_" + n.name, make, [](const TensorList& in) {
                    Tensor mean = poisoned_like(in[4]), var = poisoned_like(in[4]);
                    be(in[0]).batch_norm_stats(in[0], mean, var);
                    return TensorList{mean, var};
                  }});
    cs.push_back({"batch_norm_apply_" + n.name, make, [](const TensorList& in) {
                    Tensor out = poisoned_like(in[0]);
                    be(in[0]).batch_norm_apply(in[0], in[4], in[5], in[1], in[2], out);
                    return TensorList{out};
                  }});
    for (const auto& [mn, mask] : kMasks) {
      if (!n.affine && !mask[0]) continue;
      cs.push_back({"batch_norm_backward_" + n.name + "_" + mn, make, [mask](const TensorList& in) {
                      const Tensor &x = in[0], &w = in[1], &g = in[3];
                      const int64_t c = x.size(1);
                      const bool pw = mask[1] && w.defined(), pb = mask[2] && in[2].defined();
                      Tensor gi = poison_if(mask[0], x.sizes(), x.dtype(), x.device());
                      Tensor gw = pw ? poisoned({c}, w.dtype(), x.device()) : Tensor();
                      Tensor gb = pb ? poisoned({c}, in[2].dtype(), x.device()) : Tensor();
                      be(x).batch_norm_backward(g, x, in[4], in[5], w, gi, gw, gb);
                      return TensorList{gi, gw, gb};
                    }});
    }
  }
  // The public op: training (running statistics updated in place, compared
  // afterwards) and eval, with backward.
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    const DType pd = dt == kBFloat16 ? kFloat32 : dt;
    cs.push_back({"batch_norm_api_" + dn(dt),
                  [dt, pd](Generator& g) {
                    return TensorList{randn(g, {6, 5, 4, 3}, dt), randn(g, {5}, pd), randn(g, {5}, pd),
                                      randn(g, {5}, pd), uniform(g, {5}, 0.5, 2.0, pd)};
                  },
                  [](const TensorList& in) {
                    const Tensor rm = native::clone(in[3]), rv = native::clone(in[4]);
                    const Tensor train = F::batch_norm(in[0], rm, rv, in[1], in[2], true, 0.1, 1e-5);
                    const Tensor eval = F::batch_norm(in[0], rm, rv, in[1], in[2], false, 0.1, 1e-5);
                    return TensorList{train, eval, rm, rv};
                  },
                  true, std::nullopt, {3, 4}});
  }
  return cs;
}

KILN_PARITY_SUITE(BatchNormParity, batch_norm_cases);

}  // namespace
