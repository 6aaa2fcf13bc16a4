// kiln::optim::Adam and AdamW against torch.optim.Adam's update written out
// again here in float64 (bias corrections, L2 and decoupled weight decay,
// AMSGrad, maximize, several groups), and bit for bit against the sequence
// of float32 operations torch's CPU kernels perform.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "test_util.h"

using namespace kiln;
using kiln::optim::Adam;
using kiln::optim::AdamOptions;
using kiln::optim::AdamW;
using kiln::optim::AdamWOptions;
using kiln::optim::ParamGroup;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

// One parameter's trajectory under torch's Adam (decoupled: AdamW), in double.
struct RefAdam {
  explicit RefAdam(std::vector<double> p0) : p(std::move(p0)) {}
  std::vector<double> p, m, v, vmax;
  int t = 0;

  void step(const std::vector<double>& g, const AdamOptions& o, bool decoupled) {
    const size_t n = g.size();
    if (m.empty()) m.assign(n, 0.0), v.assign(n, 0.0), vmax.assign(n, 0.0);
    ++t;
    const double bc1 = 1 - std::pow(o.beta1, t), bc2 = 1 - std::pow(o.beta2, t);
    for (size_t i = 0; i < n; ++i) {
      double d = o.maximize ? -g[i] : g[i];
      if (decoupled) {
        p[i] *= 1 - o.lr * o.weight_decay;
      } else {
        d += o.weight_decay * p[i];
      }
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * d;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * d * d;
      vmax[i] = std::max(vmax[i], v[i]);
      const double second = o.amsgrad ? vmax[i] : v[i];
      const double denom = std::sqrt(second) / std::sqrt(bc2) + o.eps;
      p[i] -= o.lr / bc1 * m[i] / denom;
    }
  }
};

// The reference takes AdamOptions; AdamW's carry the same fields.
AdamOptions as_adam_like(const AdamOptions& o) { return o; }
AdamOptions as_adam_like(const AdamWOptions& o) {
  return {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad, o.maximize};
}

void set_grad(const Tensor& p, const std::vector<double>& g) { p.set_grad(make(p.sizes(), g, p.dtype())); }

void expect_near_all(const std::vector<double>& actual, const std::vector<double>& expected, double rtol) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i], rtol * (1 + std::fabs(expected[i]))) << "element " << i;
}

template <typename Opt, typename Options>
void check_against_reference(const Options& o, bool decoupled, DType dtype, double rtol, int steps = 6) {
  const int64_t n = 41;
  Tensor p = make({n}, sample(n, -2.0, 2.0, 9), dtype).requires_grad_(true);
  Opt opt({p}, o);
  RefAdam ref{values(p)};
  for (int s = 0; s < steps; ++s) {
    // Shrinking gradients so that AMSGrad's maximum differs from v.
    std::vector<double> g = sample(n, -1.0, 1.0, 200 + s);
    for (auto& x : g) x *= 1.0 / (1 + s);
    g = values(make({n}, g, dtype));
    set_grad(p, g);
    opt.step();
    ref.step(g, as_adam_like(o), decoupled);
  }
  expect_near_all(values(p), ref.p, rtol);
  const auto* st = opt.state(p);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->at("step").template item<double>(), steps);
  expect_near_all(values(st->at("exp_avg")), ref.m, rtol);
  expect_near_all(values(st->at("exp_avg_sq")), ref.v, rtol);
  if (o.amsgrad) expect_near_all(values(st->at("max_exp_avg_sq")), ref.vmax, rtol);
}

}  // namespace

TEST(OptimAdam, DefaultsMatchReference) {
  check_against_reference<Adam>(AdamOptions{}, false, kFloat64, 1e-13);
  check_against_reference<Adam>(AdamOptions{}, false, kFloat32, 2e-6);
}

TEST(OptimAdam, L2WeightDecayIsAddedToTheGradient) {
  const AdamOptions o{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.1};
  check_against_reference<Adam>(o, false, kFloat64, 1e-13);
  check_against_reference<Adam>(o, false, kFloat32, 2e-6);
}

TEST(OptimAdam, AmsgradKeepsTheMaximum) {
  const AdamOptions o{.lr = 0.02, .beta2 = 0.9, .amsgrad = true};
  check_against_reference<Adam>(o, false, kFloat64, 1e-13);
  check_against_reference<Adam>(o, false, kFloat32, 2e-6);
}

TEST(OptimAdam, MaximizeAscends) {
  const AdamOptions o{.lr = 0.01, .weight_decay = 0.01, .maximize = true};
  check_against_reference<Adam>(o, false, kFloat64, 1e-13);
}

TEST(OptimAdam, SmallBeta1TakesTheOtherLerpBranch) {
  // 1 - beta1 >= 0.5: torch's lerp steps back from the end instead.
  const AdamOptions o{.lr = 0.01, .beta1 = 0.3};
  check_against_reference<Adam>(o, false, kFloat64, 1e-13);
  check_against_reference<Adam>(o, false, kFloat32, 2e-6);
}

TEST(OptimAdamW, DecoupledWeightDecayMatchesReference) {
  check_against_reference<AdamW>(AdamWOptions{}, true, kFloat64, 1e-13);
  const AdamWOptions o{.lr = 0.05, .beta1 = 0.85, .beta2 = 0.98, .weight_decay = 0.3, .amsgrad = true};
  check_against_reference<AdamW>(o, true, kFloat64, 1e-13);
  check_against_reference<AdamW>(o, true, kFloat32, 2e-6);
}

TEST(OptimAdamW, DefaultWeightDecayIsTorchs) {
  Tensor p = make({2}, {1, 2}).requires_grad_(true);
  AdamW opt({p});
  EXPECT_EQ(opt.param_groups()[0].get("weight_decay"), 1e-2);
  EXPECT_STREQ(opt.name(), "AdamW");
  Adam adam({p});
  EXPECT_EQ(adam.param_groups()[0].get("weight_decay"), 0.0);
}

TEST(OptimAdam, HalfAndBFloat16ParamsFollowTheFloatUpdate) {
  const AdamOptions o{.lr = 0.01};
  check_against_reference<Adam>(o, false, kFloat16, 4e-3, 3);
  check_against_reference<Adam>(o, false, kBFloat16, 3e-2, 3);
}

TEST(OptimAdam, GroupsUseTheirOwnOptions) {
  Tensor a = make({5}, sample(5, -1, 1, 1)).requires_grad_(true);
  Tensor b = make({3}, sample(3, -1, 1, 2)).requires_grad_(true);
  const AdamOptions oa{.lr = 0.01, .weight_decay = 0.1};
  const AdamOptions ob{.lr = 0.1, .beta1 = 0.5, .weight_decay = 0.1, .amsgrad = true};
  AdamW opt({ParamGroup({a}), ParamGroup({b}, {{"lr", 0.1}, {"beta1", 0.5}, {"amsgrad", 1.0}})},
            {.lr = 0.01, .weight_decay = 0.1});
  RefAdam ra{values(a)}, rb{values(b)};
  for (int s = 0; s < 4; ++s) {
    auto ga = sample(5, -1, 1, 30 + s), gb = sample(3, -1, 1, 60 + s);
    set_grad(a, ga);
    set_grad(b, gb);
    opt.step();
    ra.step(ga, oa, true);
    rb.step(gb, ob, true);
  }
  expect_near_all(values(a), ra.p, 1e-13);
  expect_near_all(values(b), rb.p, 1e-13);
  EXPECT_FALSE(opt.state(a)->contains("max_exp_avg_sq"));
  EXPECT_TRUE(opt.state(b)->contains("max_exp_avg_sq"));
}

TEST(OptimAdam, StepCountsOnlyUpdatesWithAGradient) {
  Tensor a = make({2}, {1, 2}).requires_grad_(true);
  Tensor b = make({2}, {3, 4}).requires_grad_(true);
  Adam opt({a, b});
  set_grad(a, {0.5, -0.5});
  opt.step();
  opt.step();
  set_grad(b, {1, 1});
  opt.step();
  EXPECT_EQ(opt.state(a)->at("step").item<double>(), 3);
  EXPECT_EQ(opt.state(b)->at("step").item<double>(), 1);
  EXPECT_EQ(opt.state(a)->at("step").dtype(), kFloat32);  // as torch's step tensor
  EXPECT_EQ(opt.state(a)->at("step").dim(), 0);
}

TEST(OptimAdam, Float32IsBitExactWithTorchOpSequence) {
  // lerp, add(alpha=) and addcmul round once through an FMA in torch's CPU
  // kernels; sqrt, division, the eps add and addcdiv round per op. Large
  // enough to run on several threads.
  const int64_t n = 100003;
  const double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.05;
  std::vector<float> p(n), m(n, 0.0f), v(n, 0.0f), vmax(n, 0.0f);
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(std::sin(0.001 * static_cast<double>(i)));
  Tensor tp = make({n}, std::vector<double>(p.begin(), p.end()), kFloat32).requires_grad_(true);
  Adam opt({tp}, {.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = wd, .amsgrad = true});
  for (int s = 1; s <= 4; ++s) {
    std::vector<double> gd(n);
    for (int64_t i = 0; i < n; ++i) gd[i] = std::cos(0.37 * static_cast<double>(i) + s) / s;
    set_grad(tp, gd);
    opt.step();
    const double bc1 = 1 - std::pow(beta1, s), bc2 = 1 - std::pow(beta2, s);
    const float step_size = static_cast<float>(-(lr / bc1)), bc2s = static_cast<float>(std::pow(bc2, 0.5));
    const float w = static_cast<float>(1 - beta1), b2 = static_cast<float>(beta2);
    const float omb2 = static_cast<float>(1 - beta2), fwd = static_cast<float>(wd), feps = static_cast<float>(eps);
    for (int64_t i = 0; i < n; ++i) {
      const float d = std::fma(fwd, p[i], static_cast<float>(gd[i]));
      m[i] = std::fma(w, d - m[i], m[i]);
      v[i] = std::fma(omb2 * d, d, v[i] * b2);
      vmax[i] = std::max(vmax[i], v[i]);
      const float denom = std::sqrt(vmax[i]) / bc2s + feps;
      p[i] = p[i] + step_size * m[i] / denom;
    }
  }
  const float* got = tp.data_ptr<float>();
  const float* got_m = opt.state(tp)->at("exp_avg").data_ptr<float>();
  const float* got_v = opt.state(tp)->at("exp_avg_sq").data_ptr<float>();
  int64_t mismatches = 0;
  for (int64_t i = 0; i < n; ++i) mismatches += (got[i] != p[i]) + (got_m[i] != m[i]) + (got_v[i] != v[i]);
  EXPECT_EQ(mismatches, 0);
}

TEST(OptimAdam, NonFiniteGradientsPropagateAsTorch) {
  Tensor p = make({3}, {1, 2, 3}).requires_grad_(true);
  Adam opt({p}, {.lr = 0.1});
  set_grad(p, {kiln::testing::kNaN, 1.0, 1.0});
  opt.step();
  auto v = values(p);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_NEAR(v[1], 1.9, 1e-8);  // the first Adam step moves by lr * g / (|g| + eps)
}

TEST(OptimAdam, InvalidOptionsAreErrors) {
  Tensor p = make({2}, {1, 2}).requires_grad_(true);
  EXPECT_KILN_ERROR(Adam({p}, {.lr = -1e-3}), "Invalid learning rate");
  EXPECT_KILN_ERROR(Adam({p}, {.eps = -1}), "Invalid epsilon value");
  EXPECT_KILN_ERROR(Adam({p}, {.beta1 = 1.0}), "Invalid beta parameter at index 0");
  EXPECT_KILN_ERROR(Adam({p}, {.beta2 = -0.1}), "Invalid beta parameter at index 1");
  EXPECT_KILN_ERROR(AdamW({p}, {.weight_decay = -1}), "AdamW: Invalid weight_decay value");
  EXPECT_KILN_ERROR(Adam(std::vector<Tensor>{}), "optimizer got an empty parameter list");
}
