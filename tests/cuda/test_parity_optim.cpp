// CPU <-> CUDA parity of the fused optimizer kernels, Backend::sgd_update
// and adam_update: one call per step over a list of parameters of several
// shapes (a 0-dim one and a transposed view among them), three steps with
// fresh gradients, then every parameter and every state tensor compared.
// SGD: momentum with dampening, Nesterov, weight decay, maximize, and no
// momentum (no buffers). Adam: L2 weight decay or AdamW's decoupled decay,
// amsgrad on and off, maximize. float32, float64 and bfloat16.
//
// The momentum buffers start poisoned (NaN): the first step (init_buffer)
// must overwrite them without reading them.
#include "cuda/parity_util.h"

namespace {

using namespace kiln;
using namespace kiln::testing::parity;

std::string dn(DType d) { return short_name(d); }

constexpr int kSteps = 3;
// Parameter shapes; the last is stored transposed (a [20, 33] view of [33, 20] memory).
const std::vector<std::vector<int64_t>> kShapes = {{64, 33}, {129}, {7, 5, 3}, {}, {33, 20}};
const size_t kParams = kShapes.size();

Tensor view_of(const Tensor& base, size_t i) { return i + 1 == kParams ? native::t(base) : base; }

// The updated tensors hold no NaN: on either device every element (of the
// poisoned momentum buffers too) was written from real values.
TensorList expect_finite(TensorList ts) {
  for (size_t k = 0; k < ts.size(); ++k) {
    for (double v : kiln::testing::values(ts[k])) {
      if (std::isnan(v)) {
        ADD_FAILURE() << "NaN in updated tensor " << k << " on " << ts[k].device();
        break;
      }
    }
  }
  return ts;
}

// Inputs: params, then kSteps gradients per param (step-major), then the
// state tensors' initial values (Adam: exp_avg, exp_avg_sq, max_exp_avg_sq).
TensorList optim_inputs(Generator& g, DType dt, bool adam) {
  TensorList in;
  for (const auto& s : kShapes) in.push_back(randn(g, s, dt));
  for (int step = 0; step < kSteps; ++step) {
    for (const auto& s : kShapes) in.push_back(native::mul(randn(g, s, dt), Scalar(0.1)));
  }
  if (adam) {
    // As torch creates them: zeros.
    for (int k = 0; k < 3; ++k) {
      for (const auto& s : kShapes) in.push_back(native::zeros(s, TensorOptions().dtype(dt)));
    }
  }
  return in;
}

TensorList sgd_run(const TensorList& in, SGDStep s) {
  const Device dev = in[0].device();
  std::vector<Tensor> params, bufs, bases;
  for (size_t i = 0; i < kParams; ++i) {
    Tensor p = native::clone(in[i]);
    bases.push_back(p);
    params.push_back(view_of(p, i));
    if (s.momentum != 0.0) {
      Tensor b = poisoned(in[i].sizes(), in[i].dtype(), dev);
      bases.push_back(b);
      bufs.push_back(view_of(b, i));
    } else {
      bufs.emplace_back();
    }
  }
  for (int step = 0; step < kSteps; ++step) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < kParams; ++i) grads.push_back(view_of(in[kParams * (1 + step) + i], i));
    s.init_buffer = step == 0;
    backend_of(params[0]).sgd_update(params, grads, bufs, s);
  }
  return expect_finite(bases);
}

TensorList adam_run(const TensorList& in, AdamStep s) {
  std::vector<Tensor> params, m, v, vmax, bases;
  const size_t state0 = kParams * (1 + kSteps);
  for (size_t i = 0; i < kParams; ++i) {
    Tensor p = native::clone(in[i]), a = native::clone(in[state0 + i]), b = native::clone(in[state0 + kParams + i]);
    Tensor c = native::clone(in[state0 + 2 * kParams + i]);
    for (const Tensor& t : {p, a, b}) bases.push_back(t);
    params.push_back(view_of(p, i));
    m.push_back(view_of(a, i));
    v.push_back(view_of(b, i));
    if (s.amsgrad) {
      bases.push_back(c);
      vmax.push_back(view_of(c, i));
    } else {
      vmax.emplace_back();
    }
  }
  for (int step = 0; step < kSteps; ++step) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < kParams; ++i) grads.push_back(view_of(in[kParams * (1 + step) + i], i));
    s.step = step + 1;
    backend_of(params[0]).adam_update(params, grads, m, v, vmax, s);
  }
  return expect_finite(bases);
}

std::vector<Case> optim_cases() {
  std::vector<Case> cs;
  struct Sgd {
    std::string name;
    SGDStep s;
  };
  // lr, momentum, dampening, weight_decay, nesterov, maximize, init_buffer (set per step)
  const std::vector<Sgd> sgds = {
      {"momentum_dampening_wd", {0.1, 0.9, 0.1, 1e-2, false, false, true}},
      {"nesterov", {0.05, 0.9, 0.0, 1e-4, true, false, true}},
      {"maximize", {0.1, 0.5, 0.0, 0.0, false, true, true}},
      {"no_momentum", {0.1, 0.0, 0.0, 1e-2, false, false, true}},
  };
  struct Adam {
    std::string name;
    AdamStep s;
  };
  // lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled, step (set per step)
  const std::vector<Adam> adams = {
      {"adamw", {1e-2, 0.9, 0.999, 1e-8, 1e-2, false, false, true, 1}},
      {"adamw_amsgrad", {1e-2, 0.9, 0.999, 1e-8, 1e-2, true, false, true, 1}},
      {"adam_l2_amsgrad", {1e-2, 0.8, 0.99, 1e-6, 0.1, true, false, false, 1}},
      {"adam_maximize", {1e-3, 0.9, 0.999, 1e-8, 0.0, false, true, false, 1}},
  };
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    for (const Sgd& c : sgds) {
      cs.push_back({"sgd_" + c.name + "_" + dn(dt), [dt](Generator& g) { return optim_inputs(g, dt, false); },
                    [s = c.s](const TensorList& in) { return sgd_run(in, s); }});
    }
    for (const Adam& c : adams) {
      cs.push_back({c.name + "_" + dn(dt), [dt](Generator& g) { return optim_inputs(g, dt, true); },
                    [s = c.s](const TensorList& in) { return adam_run(in, s); }});
    }
  }
  return cs;
}

KILN_PARITY_SUITE(OptimParity, optim_cases);

}  // namespace
