// CPU <-> CUDA parity of the fused log-softmax + cross-entropy:
// Backend::cross_entropy and cross_entropy_backward called directly with
// poisoned outputs (f32, f64; with and without class weights, ignored rows,
// label smoothing; short rows that go one per warp, long ones one per
// block), 16-bit logits through the native entry point (the CPU widens them
// to f32, CUDA reads them natively), and nn::functional::cross_entropy with
// backward (the fused path, and the composed one that a weight requiring
// grad selects).
//
// Backward cases feed both devices the same forward lse (computed on the
// CPU in make()), so they test the backward kernel alone.
#include "cuda/parity_util.h"

namespace {

using namespace kiln;
using namespace kiln::testing::parity;
namespace F = kiln::nn::functional;

Backend& be(const Tensor& t) { return backend_of(t); }
DType stat_dtype(DType d) { return d == kFloat64 ? kFloat64 : kFloat32; }

constexpr int64_t kIgnore = -100;

struct Ce {
  int64_t n, c;
  DType dt = kFloat32;
  bool weighted = false;
  bool ignore = false;  // a quarter of the rows set to kIgnore
  double ls = 0.0;

  std::string name() const {
    std::string s = std::string(short_name(dt)) + "_N" + std::to_string(n) + "_C" + std::to_string(c);
    if (weighted) s += "_weight";
    if (ignore) s += "_ignore";
    if (ls > 0) s += "_ls" + std::to_string(static_cast<int>(ls * 100));
    return s;
  }
};

// logits [N, C] (dt), target [N], weight [C] (stat dtype) or undefined,
// grad_loss [N] and the CPU's lse [N] (stat dtype).
std::function<TensorList(Generator&)> make_inputs(const Ce& e) {
  return [e](Generator& g) {
    const DType sd = stat_dtype(e.dt);
    const Tensor x = native::to(native::mul(randn(g, {e.n, e.c}, kFloat64), Scalar(3.0)), e.dt);
    Tensor t = randint(g, 0, e.c, {e.n});
    if (e.ignore) t = sprinkle(g, t, 0.25, static_cast<double>(kIgnore));
    const Tensor w = e.weighted ? uniform(g, {e.c}, 0.25, 2.0, sd) : Tensor();
    auto [loss, lse] = native::cross_entropy_loss(x, t, w, kIgnore, e.ls);
    return TensorList{x, t, w, randn(g, {e.n}, sd), lse};
  };
}

std::vector<Ce> variants() {
  std::vector<Ce> out;
  for (auto [n, c] : {std::pair<int64_t, int64_t>{37, 7}, {9, 1000}, {5, 1500}, {3, 50265}}) {
    for (DType dt : {kFloat32, kFloat64}) {
      out.push_back({n, c, dt});
      out.push_back({n, c, dt, true, true, 0.1});
    }
    out.push_back({n, c, kFloat32, false, true, 0.0});
    out.push_back({n, c, kFloat32, true, false, 1.0});
  }
  return out;
}

std::vector<Case> kernel_cases() {
  std::vector<Case> cs;
  for (const Ce& e : variants()) {
    const int64_t ignore = kIgnore;
    const double ls = e.ls;
    cs.push_back({"ce_forward_" + e.name(), make_inputs(e), [ignore, ls](const TensorList& in) {
                    const Tensor &x = in[0], &t = in[1], &w = in[2];
                    const DType sd = stat_dtype(x.dtype());
                    Tensor loss = poisoned({x.size(0)}, sd, x.device()), lse = poisoned({x.size(0)}, sd, x.device());
                    be(x).cross_entropy(x, t, w, ignore, ls, loss, lse);
                    return TensorList{loss, lse};
                  }});
    cs.push_back({"ce_backward_" + e.name(), make_inputs(e), [ignore, ls](const TensorList& in) {
                    const Tensor &x = in[0], &t = in[1], &w = in[2];
                    Tensor gi = poisoned_like(x);
                    be(x).cross_entropy_backward(in[3], x, t, w, in[4], ignore, ls, gi);
                    return TensorList{gi};
                  }});
  }
  return cs;
}

KILN_PARITY_SUITE(CrossEntropyKernelParity, kernel_cases);

// 16-bit logits: the native entry point (forward and backward).
std::vector<Case> half_cases() {
  std::vector<Case> cs;
  for (DType dt : {kBFloat16, kFloat16}) {
    for (auto [n, c] : {std::pair<int64_t, int64_t>{37, 7}, {5, 1500}, {3, 50265}}) {
      for (bool smooth : {false, true}) {
        const Ce e{n, c, dt, smooth, smooth, smooth ? 0.1 : 0.0};
        const double ls = e.ls;
        cs.push_back({"ce_native_" + e.name(), make_inputs(e), [ls](const TensorList& in) {
                        auto [loss, lse] = native::cross_entropy_loss(in[0], in[1], in[2], kIgnore, ls);
                        const Tensor gi =
                            native::cross_entropy_loss_backward(in[3], in[0], in[1], in[2], lse, kIgnore, ls);
                        return TensorList{loss, lse, gi};
                      }});
      }
    }
  }
  return cs;
}

KILN_PARITY_SUITE(CrossEntropyHalfParity, half_cases);

// The public loss with backward: class-index targets over [N, C] and
// [N, C, d1, d2], each reduction; the weight is a constant (fused path)
// except in the "weight_grad" cases (composed path, weight gradient compared).
std::vector<Case> api_cases() {
  std::vector<Case> cs;
  const std::pair<const char*, F::Reduction> reds[] = {
      {"none", F::Reduction::None}, {"mean", F::Reduction::Mean}, {"sum", F::Reduction::Sum}};
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    for (const auto& [rn, red] : reds) {
      for (bool spatial : {false, true}) {
        const std::vector<int64_t> xs = spatial ? std::vector<int64_t>{2, 5, 3, 4} : std::vector<int64_t>{16, 11};
        const std::vector<int64_t> ts = spatial ? std::vector<int64_t>{2, 3, 4} : std::vector<int64_t>{16};
        const int64_t c = xs[1];
        auto make = [dt, xs, ts, c](Generator& g) {
          const Tensor t = sprinkle(g, randint(g, 0, c, ts), 0.2, static_cast<double>(kIgnore));
          return TensorList{randn(g, xs, dt), t, uniform(g, {c}, 0.25, 2.0, dt)};
        };
        const std::string base = std::string("ce_api_") + short_name(dt) + "_" + rn + (spatial ? "_spatial" : "");
        auto run = [red = red](const TensorList& in) {
          const auto o = F::CrossEntropyFuncOptions().weight(in[2]).label_smoothing(0.1).reduction(red);
          return TensorList{F::cross_entropy(in[0], in[1], o), F::cross_entropy(in[0], in[1])};
        };
        cs.push_back({base, make, run, true, std::nullopt, {2}});
        if (dt != kBFloat16) cs.push_back({base + "_weight_grad", make, run, true});
      }
    }
  }
  return cs;
}

KILN_PARITY_SUITE(CrossEntropyApiParity, api_cases);

}  // namespace
