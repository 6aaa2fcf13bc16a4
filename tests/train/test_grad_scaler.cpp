// kiln::optim::GradScaler against torch.amp.GradScaler's documented rules,
// written out by hand: scale(loss) multiplies by the scale; unscale_
// multiplies the gradients by float32(1 / scale) and flags inf/NaN; step
// skips the optimizer after an inf/NaN; update backs off by backoff_factor
// after one and grows by growth_factor after growth_interval clean steps.
// (The schedule below was also checked once against torch 2.15 on CPU.)
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>
#include <limits>
#include <vector>

#include "test_util.h"

using namespace kiln;
using kiln::optim::GradScaler;
using kiln::optim::GradScalerOptions;
using kiln::optim::SGD;
using kiln::testing::kInf;
using kiln::testing::kNaN;
using kiln::testing::make;
using kiln::testing::values;

namespace {

Tensor param(const std::vector<double>& v, DType dtype = kFloat32) {
  return make({static_cast<int64_t>(v.size())}, v, dtype).requires_grad_(true);
}

void set_grad(const Tensor& p, const std::vector<double>& g) { p.set_grad(make(p.sizes(), g, p.dtype())); }

GradScalerOptions opts(double init_scale, int64_t growth_interval) {
  GradScalerOptions o;
  o.init_scale = init_scale;
  o.growth_interval = growth_interval;
  return o;
}

}  // namespace

TEST(GradScaler, DefaultsAreTorchs) {
  GradScaler s;
  EXPECT_TRUE(s.is_enabled());
  EXPECT_EQ(s.get_scale(), 65536.0);
  EXPECT_EQ(s.get_growth_factor(), 2.0);
  EXPECT_EQ(s.get_backoff_factor(), 0.5);
  EXPECT_EQ(s.get_growth_interval(), 2000);
  EXPECT_EQ(s.get_growth_tracker(), 0);
}

TEST(GradScaler, ScaleMultipliesTheLossAndItsGradients) {
  Tensor p = param({1.0, -2.0, 3.0});
  GradScaler s(opts(1024.0, 2000));
  const Tensor loss = kiln::sum(p * p);
  const Tensor scaled = s.scale(loss);
  EXPECT_EQ(scaled.dtype(), kFloat32);
  EXPECT_EQ(scaled.item<double>(), 14.0 * 1024.0);
  scaled.backward();
  EXPECT_EQ(values(p.grad()), (std::vector<double>{2048.0, -4096.0, 6144.0}));
  // As torch: a 0-dim 16-bit loss times the 0-dim float32 scale is float32; a
  // dimensioned one keeps its dtype.
  EXPECT_EQ(s.scale(native::scalar_tensor(2.0, TensorOptions().dtype(kFloat16))).dtype(), kFloat32);
  const Tensor v16 = s.scale(make({2}, {1.0, 0.5}, kFloat16));
  EXPECT_EQ(v16.dtype(), kFloat16);
  EXPECT_EQ(values(v16), (std::vector<double>{1024.0, 512.0}));
}

TEST(GradScaler, UnscaleMultipliesByTheFloat32Reciprocal) {
  Tensor p = param({1.0, 2.0});
  Tensor q = param({1.0, 1.0, 1.0}, kFloat64);
  Tensor r = param({1.0}, kBFloat16);
  SGD opt({p, q, r}, {.lr = 1.0});
  GradScaler s(opts(3.0, 2000));
  s.scale(kiln::sum(p));
  set_grad(p, {3.0, 1.0});
  set_grad(q, {1.0, 3.0, 6.0});
  set_grad(r, {1.0});
  s.unscale_(opt);
  const double inv = static_cast<double>(static_cast<float>(1.0 / 3.0));  // 0x1.555556p-2
  EXPECT_EQ(values(p.grad()), (std::vector<double>{static_cast<float>(3.0 * inv), inv}));
  EXPECT_EQ(values(q.grad()), (std::vector<double>{inv, 3.0 * inv, 6.0 * inv}));  // float64 grads: in double
  EXPECT_EQ(values(r.grad())[0], 0.333984375);  // bf16(1/3)
}

TEST(GradScaler, StridedGradientsAreUnscaledInPlace) {
  Tensor p = make({2, 3}, {1, 2, 3, 4, 5, 6}, kFloat32).requires_grad_(true);
  SGD opt({p}, {.lr = 1.0});
  GradScaler s(opts(4.0, 2000));
  s.scale(kiln::sum(p));
  const Tensor storage = make({3, 2}, {4, 8, 12, 16, 20, 24}, kFloat32);
  p.set_grad(native::t(storage));  // a transposed view
  s.unscale_(opt);
  EXPECT_EQ(values(storage), (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

TEST(GradScaler, StepRunsTheOptimizerWithUnscaledGradients) {
  Tensor p = param({1.0, 2.0});
  SGD opt({p}, {.lr = 0.5});
  GradScaler s(opts(8.0, 2000));
  s.scale(kiln::sum(p * p)).backward();  // grads 8 * 2p
  s.step(opt);
  EXPECT_EQ(values(p), (std::vector<double>{0.0, 0.0}));  // p - 0.5 * 2p
  s.update();
  EXPECT_EQ(s.get_scale(), 8.0);
  EXPECT_EQ(s.get_growth_tracker(), 1);
}

TEST(GradScaler, UnscaleBeforeStepIsNotRepeated) {
  Tensor p = param({1.0});
  SGD opt({p}, {.lr = 1.0});
  GradScaler s(opts(4.0, 2000));
  s.scale(kiln::sum(p));
  set_grad(p, {8.0});
  s.unscale_(opt);  // e.g. to clip the true gradients
  EXPECT_EQ(values(p.grad())[0], 2.0);
  s.step(opt);
  EXPECT_EQ(values(p)[0], -1.0);
}

TEST(GradScaler, InfOrNaNSkipsTheStepAndBacksOff) {
  for (double bad : {kInf, -kInf, kNaN}) {
    Tensor p = param({1.0, 2.0});
    Tensor q = param({5.0});
    SGD opt({p, q}, {.lr = 0.1});
    GradScaler s(opts(16.0, 2000));
    s.scale(kiln::sum(p));
    set_grad(p, {1.0, bad});
    set_grad(q, {16.0});
    s.step(opt);
    EXPECT_EQ(values(p), (std::vector<double>{1.0, 2.0})) << bad;
    EXPECT_EQ(values(q), (std::vector<double>{5.0})) << bad;
    // Gradients are unscaled all the same, as torch.
    EXPECT_EQ(values(q.grad())[0], 1.0);
    s.update();
    EXPECT_EQ(s.get_scale(), 8.0);
    EXPECT_EQ(s.get_growth_tracker(), 0);
  }
}

TEST(GradScaler, ScheduleFollowsTorchsRule) {
  // init 8, growth_interval 3, factors 2 and 0.5; gradient 1 (scaled) except
  // where marked. Expected (scale, tracker) after each update, by the rule:
  //   ok   : tracker+1; at 3 the scale doubles and tracker restarts
  //   inf  : scale halves, tracker 0
  Tensor q = param({1.0});
  SGD opt({q}, {.lr = 0.125});
  GradScaler s(opts(8.0, 3));
  const std::vector<double> grads = {1, 1, kInf, 1, 1, 1, kNaN, 1, 1, 1, 1, 1, 1};
  const std::vector<std::pair<double, int64_t>> expected = {
      {8, 1}, {8, 2}, {4, 0}, {4, 1}, {4, 2}, {8, 0}, {4, 0}, {4, 1}, {4, 2}, {8, 0}, {8, 1}, {8, 2}, {16, 0}};
  double q_expected = 1.0;
  for (size_t i = 0; i < grads.size(); ++i) {
    s.scale(kiln::sum(q));
    set_grad(q, {grads[i] * s.get_scale()});
    s.step(opt);
    if (std::isfinite(grads[i])) q_expected -= 0.125;
    s.update();
    EXPECT_EQ(s.get_scale(), expected[i].first) << "after step " << i;
    EXPECT_EQ(s.get_growth_tracker(), expected[i].second) << "after step " << i;
    EXPECT_EQ(values(q)[0], q_expected) << "after step " << i;
  }
}

TEST(GradScaler, GrowthThatWouldOverflowIsDropped) {
  Tensor q = param({1.0});
  SGD opt({q}, {.lr = 0.0});
  GradScaler s(opts(std::ldexp(1.0, 127), 1));
  s.scale(kiln::sum(q));
  set_grad(q, {1.0});
  s.step(opt);
  s.update();
  EXPECT_EQ(s.get_scale(), std::ldexp(1.0, 127));  // 2^128 is not a finite float32
  EXPECT_EQ(s.get_growth_tracker(), 0);
}

TEST(GradScaler, NonPowerOfTwoFactorsRoundLikeTorch) {
  // new scale = float32(double(scale) * factor)
  Tensor q = param({1.0});
  SGD opt({q}, {.lr = 0.0});
  GradScalerOptions o = opts(1000.0, 1);
  o.growth_factor = 1.1;
  o.backoff_factor = 0.3;
  GradScaler s(o);
  s.scale(kiln::sum(q));
  set_grad(q, {1.0});
  s.step(opt);
  s.update();
  const float grown = static_cast<float>(1000.0 * 1.1);
  EXPECT_EQ(s.get_scale(), static_cast<double>(grown));
  s.scale(kiln::sum(q));
  set_grad(q, {kInf});
  s.step(opt);
  s.update();
  EXPECT_EQ(s.get_scale(), static_cast<double>(static_cast<float>(static_cast<double>(grown) * 0.3)));
}

TEST(GradScaler, InfInOneOptimizerSkipsOnlyThatOneButBacksOff) {
  Tensor a = param({1.0}), b = param({1.0});
  SGD opt_a({a}, {.lr = 1.0}), opt_b({b}, {.lr = 1.0});
  GradScaler s(opts(2.0, 2000));
  s.scale(kiln::sum(a));
  set_grad(a, {2.0});
  set_grad(b, {kInf});
  s.step(opt_a);
  s.step(opt_b);
  EXPECT_EQ(values(a)[0], 0.0);
  EXPECT_EQ(values(b)[0], 1.0);
  s.update();
  EXPECT_EQ(s.get_scale(), 1.0);
}

TEST(GradScaler, MisuseIsAnErrorAsInTorch) {
  Tensor p = param({1.0});
  SGD opt({p}, {.lr = 1.0});
  {
    GradScaler s;
    EXPECT_KILN_ERROR(s.step(opt), "Attempted step but _scale is None");
    EXPECT_KILN_ERROR(s.update(), "Attempted update but _scale is None");
    EXPECT_KILN_ERROR(s.unscale_(opt), "Attempted unscale_ but _scale is None");
  }
  {
    GradScaler s;
    s.scale(kiln::sum(p));
    EXPECT_KILN_ERROR(s.update(), "No inf checks were recorded prior to update.");
    EXPECT_KILN_ERROR(s.step(opt), "No inf checks were recorded for this optimizer.");  // no gradients
  }
  {
    GradScaler s(opts(2.0, 2000));
    s.scale(kiln::sum(p));
    set_grad(p, {2.0});
    s.unscale_(opt);
    EXPECT_KILN_ERROR(s.unscale_(opt), "unscale_() has already been called on this optimizer since the last update().");
    EXPECT_EQ(values(p.grad())[0], 1.0);  // not divided twice
    s.step(opt);
    EXPECT_KILN_ERROR(s.step(opt), "step() has already been called since the last update().");
    EXPECT_KILN_ERROR(s.unscale_(opt), "unscale_() is being called after step().");
    s.update();
    set_grad(p, {2.0});
    s.unscale_(opt);  // fine again after update()
    EXPECT_EQ(values(p.grad())[0], 1.0);
  }
  {
    Tensor h = param({1.0}, kFloat16);
    Tensor f = param({1.0});
    SGD opt16({f, h}, {.lr = 1.0});
    GradScaler s(opts(2.0, 2000));
    s.scale(kiln::sum(f));
    set_grad(f, {2.0});
    set_grad(h, {2.0});
    EXPECT_KILN_ERROR(s.unscale_(opt16), "Attempting to unscale FP16 gradients.");
    EXPECT_EQ(values(f.grad())[0], 2.0);  // checked before anything is touched
  }
  GradScalerOptions bad;
  bad.growth_factor = 0.5;
  EXPECT_KILN_ERROR(GradScaler{bad}, "The growth factor must be > 1.0.");
  bad = {};
  bad.backoff_factor = 1.5;
  EXPECT_KILN_ERROR(GradScaler{bad}, "The backoff factor must be < 1.0.");
}

TEST(GradScaler, DisabledIsAPassThrough) {
  Tensor p = param({1.0});
  SGD opt({p}, {.lr = 1.0});
  GradScalerOptions o;
  o.enabled = false;
  GradScaler s(o);
  const Tensor loss = kiln::sum(p);
  EXPECT_EQ(s.scale(loss).impl(), loss.impl());
  EXPECT_EQ(s.get_scale(), 1.0);
  set_grad(p, {kInf});
  s.unscale_(opt);
  s.step(opt);  // steps even with inf: nothing is checked
  EXPECT_TRUE(std::isinf(values(p)[0]));
  s.update();
  EXPECT_EQ(s.state_dict().size(), 0u);
  s.load_state_dict({});  // ignored
}

TEST(GradScaler, StateDictRoundTrip) {
  Tensor q = param({1.0});
  SGD opt({q}, {.lr = 0.0});
  GradScalerOptions o = opts(32.0, 3);
  o.growth_factor = 4.0;
  o.backoff_factor = 0.25;
  GradScaler s(o);
  auto one_step = [&](GradScaler& sc, double g) {
    sc.scale(kiln::sum(q));
    set_grad(q, {g});
    sc.step(opt);
    sc.update();
  };
  one_step(s, kInf);  // 8, tracker 0
  one_step(s, 1.0);   // 8, tracker 1
  const nn::StateDict d = s.state_dict();
  EXPECT_EQ(d.at("scale").item<double>(), 8.0);
  EXPECT_EQ(d.at("growth_factor").item<double>(), 4.0);
  EXPECT_EQ(d.at("backoff_factor").item<double>(), 0.25);
  EXPECT_EQ(d.at("growth_interval").item<int64_t>(), 3);
  EXPECT_EQ(d.at("_growth_tracker").item<int64_t>(), 1);

  GradScaler fresh;  // defaults, never used
  fresh.load_state_dict(d);
  EXPECT_EQ(fresh.get_scale(), 8.0);
  EXPECT_EQ(fresh.get_growth_tracker(), 1);
  EXPECT_EQ(fresh.get_growth_interval(), 3);
  // Both continue identically: two more clean steps grow by 4.
  for (GradScaler* sc : {&s, &fresh}) {
    one_step(*sc, 1.0);
    one_step(*sc, 1.0);
    EXPECT_EQ(sc->get_scale(), 32.0);
    EXPECT_EQ(sc->get_growth_tracker(), 0);
  }
  // Loading into a scaler already in use replaces its live scale too.
  s.load_state_dict(d);
  EXPECT_EQ(s.get_scale(), 8.0);
  EXPECT_EQ(s.get_growth_tracker(), 1);

  EXPECT_KILN_ERROR(fresh.load_state_dict({}), "The source state dict is empty");
  nn::StateDict partial;
  partial.insert("scale", d.at("scale"));
  EXPECT_KILN_ERROR(fresh.load_state_dict(partial), "missing key 'growth_factor'");
  EXPECT_EQ(fresh.get_scale(), 32.0);  // unchanged by the failed load
}

TEST(GradScaler, EmptyAndStridedSixteenBitGradientsInOneUnscale) {
  // float32, bfloat16 (stored transposed) and float64 gradients plus an empty
  // one: one multi-tensor unscale per dtype, one flag for the device.
  Tensor p = param({1.0, 2.0});
  Tensor q = native::zeros({3, 2}, TensorOptions().dtype(kBFloat16)).requires_grad_(true);
  Tensor r = param({}, kFloat64);
  SGD opt({p, q, r}, {.lr = 1.0});
  GradScaler s(opts(4.0, 2000));
  s.scale(kiln::sum(p));
  set_grad(p, {8.0, 4.0});
  q.set_grad(native::t(make({2, 3}, {4.0, 8.0, 12.0, 16.0, 20.0, 24.0}, kBFloat16)));
  r.set_grad(make({0}, {}, kFloat64));
  s.unscale_(opt);
  EXPECT_EQ(values(p.grad()), (std::vector<double>{2.0, 1.0}));
  EXPECT_EQ(values(q.grad()), (std::vector<double>{1.0, 4.0, 2.0, 5.0, 3.0, 6.0}));
  EXPECT_EQ(r.grad().numel(), 0);
  s.step(opt);  // clean: the step runs
  EXPECT_EQ(values(p), (std::vector<double>{-1.0, 1.0}));
  s.update();
  EXPECT_EQ(s.get_scale(), 4.0);

  // An inf in the strided bfloat16 gradient alone skips the step and backs off.
  s.scale(kiln::sum(p));
  set_grad(p, {8.0, 4.0});
  q.set_grad(native::t(make({2, 3}, {4.0, 8.0, kInf, 16.0, 20.0, 24.0}, kBFloat16)));
  r.set_grad(make({0}, {}, kFloat64));
  s.step(opt);
  EXPECT_EQ(values(p), (std::vector<double>{-1.0, 1.0}));
  s.update();
  EXPECT_EQ(s.get_scale(), 2.0);
}
