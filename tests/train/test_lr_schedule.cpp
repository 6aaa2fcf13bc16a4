// LR schedules at their boundary steps (0, the end of warm-up and the step
// after, the end of training and beyond) against closed forms written here
// from the Hugging Face / torch definitions; applying lrs and lr_scale to
// the groups; the scheduler's state dict.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "test_util.h"

using namespace kiln;
using namespace kiln::optim;
using kiln::testing::make;

namespace {

constexpr double kBase = 0.01;
constexpr double kPi = std::numbers::pi;

Tensor leaf(double v) { return make({1}, {v}).requires_grad_(true); }

// One group at kBase.
struct Fixture {
  Tensor w = leaf(1.0);
  SGD opt{std::vector<Tensor>{w}, SGDOptions{.lr = kBase}};
};

}  // namespace

TEST(LRSchedule, ConstantWithWarmup) {
  Fixture f;
  ConstantWithWarmupLR s(f.opt, 4);
  EXPECT_EQ(s.lr_at(0, kBase), 0.0);  // HF: warm-up starts at 0
  EXPECT_DOUBLE_EQ(s.lr_at(1, kBase), kBase / 4);
  EXPECT_DOUBLE_EQ(s.lr_at(3, kBase), kBase * 3 / 4);
  EXPECT_EQ(s.lr_at(4, kBase), kBase);
  EXPECT_EQ(s.lr_at(5, kBase), kBase);
  EXPECT_EQ(s.lr_at(1000000, kBase), kBase);
  Fixture g;
  ConstantWithWarmupLR none(g.opt);
  EXPECT_EQ(none.lr_at(0, kBase), kBase);
}

TEST(LRSchedule, StepLR) {
  Fixture f;
  StepLR s(f.opt, 3, 0.5);
  for (int64_t k : {0, 1, 2}) EXPECT_EQ(s.lr_at(k, kBase), kBase);
  for (int64_t k : {3, 4, 5}) EXPECT_EQ(s.lr_at(k, kBase), kBase * 0.5);
  EXPECT_EQ(s.lr_at(6, kBase), kBase * 0.25);
  EXPECT_DOUBLE_EQ(s.lr_at(30, kBase), kBase * std::pow(0.5, 10));
}

TEST(LRSchedule, MultiStepLRCountsRepeatedMilestones) {
  Fixture f;
  MultiStepLR s(f.opt, {5, 2, 5}, 0.1);
  EXPECT_EQ(s.lr_at(0, kBase), kBase);
  EXPECT_EQ(s.lr_at(1, kBase), kBase);
  EXPECT_DOUBLE_EQ(s.lr_at(2, kBase), kBase * 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(4, kBase), kBase * 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(5, kBase), kBase * 0.001);
  EXPECT_DOUBLE_EQ(s.lr_at(500, kBase), kBase * 0.001);
}

// BiT-HyperRule: linear warm-up from 0, then /10 at each milestone.
TEST(LRSchedule, StepSchedulesWithWarmup) {
  Fixture f;
  MultiStepLR s(f.opt, {30, 60, 90}, 0.1, 10);
  EXPECT_EQ(s.lr_at(0, kBase), 0.0);
  EXPECT_EQ(s.lr_at(5, kBase), kBase * (5.0 / 10.0));
  EXPECT_EQ(s.lr_at(10, kBase), kBase);
  EXPECT_EQ(s.lr_at(29, kBase), kBase);
  EXPECT_DOUBLE_EQ(s.lr_at(30, kBase), kBase * 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(95, kBase), kBase * 0.001);
  Fixture g;
  StepLR t(g.opt, 4, 0.5, 2);
  EXPECT_EQ(t.lr_at(1, kBase), kBase * 0.5);
  EXPECT_EQ(t.lr_at(2, kBase), kBase);
  EXPECT_EQ(t.lr_at(4, kBase), kBase * 0.5);
  Fixture h;
  EXPECT_KILN_ERROR(MultiStepLR(h.opt, {3}, 0.1, -1), "warmup_steps must be non-negative");
}

TEST(LRSchedule, LinearWithWarmup) {
  Fixture f;
  LinearWithWarmupLR s(f.opt, 10, 110);
  EXPECT_EQ(s.lr_at(0, kBase), 0.0);
  EXPECT_DOUBLE_EQ(s.lr_at(9, kBase), kBase * 0.9);
  EXPECT_EQ(s.lr_at(10, kBase), kBase);              // end of warm-up: the full lr
  EXPECT_DOUBLE_EQ(s.lr_at(11, kBase), kBase * 0.99);  // 99 of 100 decay steps left
  EXPECT_DOUBLE_EQ(s.lr_at(60, kBase), kBase * 0.5);
  EXPECT_EQ(s.lr_at(110, kBase), 0.0);
  EXPECT_EQ(s.lr_at(150, kBase), 0.0);  // clamped at 0 past the end
}

TEST(LRSchedule, LinearWithMinLr) {
  Fixture f;
  const double min_lr = 1e-4;
  LinearWithWarmupLR s(f.opt, 10, 110, min_lr);
  EXPECT_EQ(s.lr_at(0, kBase), 0.0);  // warm-up still starts at 0
  EXPECT_DOUBLE_EQ(s.lr_at(10, kBase), kBase);
  EXPECT_DOUBLE_EQ(s.lr_at(60, kBase), min_lr + (kBase - min_lr) * 0.5);
  EXPECT_DOUBLE_EQ(s.lr_at(110, kBase), min_lr);
  EXPECT_DOUBLE_EQ(s.lr_at(150, kBase), min_lr);
}

TEST(LRSchedule, CosineWithWarmup) {
  Fixture f;
  CosineWithWarmupLR s(f.opt, 10, 110);
  EXPECT_EQ(s.lr_at(0, kBase), 0.0);
  EXPECT_DOUBLE_EQ(s.lr_at(5, kBase), kBase * 0.5);
  EXPECT_EQ(s.lr_at(10, kBase), kBase);
  EXPECT_DOUBLE_EQ(s.lr_at(11, kBase), kBase * 0.5 * (1 + std::cos(kPi * 0.01)));
  EXPECT_DOUBLE_EQ(s.lr_at(35, kBase), kBase * 0.5 * (1 + std::sqrt(0.5)));  // a quarter of the way: cos(pi/4)
  EXPECT_DOUBLE_EQ(s.lr_at(60, kBase), kBase * 0.5);
  EXPECT_EQ(s.lr_at(110, kBase), 0.0);
  // Past the end HF's half cosine rises again: progress 1.5 -> 0.5 * (1 + cos(1.5 pi)).
  EXPECT_NEAR(s.lr_at(160, kBase), kBase * 0.5, 1e-17);
}

TEST(LRSchedule, CosineWithMinLrAndCycles) {
  Fixture f;
  const double min_lr = 1e-3;
  CosineWithWarmupLR s(f.opt, 0, 100, min_lr);
  EXPECT_EQ(s.lr_at(0, kBase), kBase);  // no warm-up: step 0 at the full lr
  EXPECT_DOUBLE_EQ(s.lr_at(50, kBase), min_lr + (kBase - min_lr) * 0.5);
  EXPECT_DOUBLE_EQ(s.lr_at(100, kBase), min_lr);
  Fixture g;
  CosineWithWarmupLR full(g.opt, 0, 100, 0.0, 1.0);  // one whole cycle: back up at the end
  EXPECT_NEAR(full.lr_at(50, kBase), 0.0, 1e-18);
  EXPECT_DOUBLE_EQ(full.lr_at(100, kBase), kBase);
}

TEST(LRSchedule, PolynomialWithWarmup) {
  Fixture f;
  const double end = 1e-7;
  PolynomialWithWarmupLR s(f.opt, 10, 110, end, 2.0);
  EXPECT_EQ(s.lr_at(0, kBase), 0.0);
  EXPECT_DOUBLE_EQ(s.lr_at(9, kBase), kBase * 0.9);
  EXPECT_DOUBLE_EQ(s.lr_at(10, kBase), kBase);
  EXPECT_DOUBLE_EQ(s.lr_at(11, kBase), (kBase - end) * 0.99 * 0.99 + end);
  EXPECT_DOUBLE_EQ(s.lr_at(60, kBase), (kBase - end) * 0.25 + end);
  EXPECT_DOUBLE_EQ(s.lr_at(110, kBase), end);
  EXPECT_DOUBLE_EQ(s.lr_at(111, kBase), end);
  EXPECT_DOUBLE_EQ(s.lr_at(5000, kBase), end);
  Fixture g;
  PolynomialWithWarmupLR linear(g.opt, 0, 100);  // HF defaults: lr_end 1e-7, power 1
  EXPECT_DOUBLE_EQ(linear.lr_at(25, kBase), (kBase - 1e-7) * 0.75 + 1e-7);
}

TEST(LRSchedule, AppliesToGroupsWithLrScale) {
  Tensor a = leaf(1), b = leaf(2), c = leaf(3);
  AdamW opt({ParamGroup({a}), ParamGroup({b}, {{"lr_scale", 0.5}}), ParamGroup({c}, {{"lr", 0.1}})}, {.lr = kBase});
  LinearWithWarmupLR s(opt, 2, 12);
  // Constructing applies step 0: lr 0 during warm-up.
  EXPECT_EQ(s.last_step(), 0);
  for (const auto& g : opt.param_groups()) EXPECT_EQ(g.lr(), 0.0);
  EXPECT_EQ(s.base_lrs(), (std::vector<double>{kBase, kBase, 0.1}));
  s.step();
  EXPECT_EQ(s.last_step(), 1);
  EXPECT_DOUBLE_EQ(opt.param_groups()[0].lr(), kBase * 0.5);
  EXPECT_DOUBLE_EQ(opt.param_groups()[1].lr(), kBase * 0.5 * 0.5);
  EXPECT_DOUBLE_EQ(opt.param_groups()[2].lr(), 0.1 * 0.5);
  s.step();
  EXPECT_EQ(opt.param_groups()[0].lr(), kBase);
  EXPECT_EQ(opt.param_groups()[1].lr(), kBase * 0.5);
  EXPECT_EQ(s.lrs_at(7), (std::vector<double>{s.lr_at(7, kBase), s.lr_at(7, kBase) * 0.5, s.lr_at(7, 0.1)}));
}

TEST(LRSchedule, StateDictResumes) {
  Fixture f;
  CosineWithWarmupLR s(f.opt, 3, 20, 1e-4);
  for (int k = 0; k < 7; ++k) s.step();
  nn::StateDict sd = s.state_dict();
  EXPECT_EQ(sd["step"].dtype(), kInt64);
  EXPECT_EQ(sd["step"].item<int64_t>(), 7);
  EXPECT_EQ(sd["base_lrs"].dim(), 1);

  // A fresh run: the optimizer's lr is some scheduled value (from its own
  // state dict), so the new scheduler's base lrs are wrong until loaded.
  Fixture g;
  g.opt.param_groups()[0].set_lr(f.opt.param_groups()[0].lr());
  CosineWithWarmupLR resumed(g.opt, 3, 20, 1e-4);
  resumed.load_state_dict(sd);
  EXPECT_EQ(resumed.last_step(), 7);
  EXPECT_EQ(resumed.base_lrs(), s.base_lrs());
  EXPECT_EQ(g.opt.param_groups()[0].lr(), f.opt.param_groups()[0].lr());
  for (int k = 0; k < 5; ++k) {
    s.step();
    resumed.step();
    EXPECT_EQ(g.opt.param_groups()[0].lr(), f.opt.param_groups()[0].lr());
  }
}

TEST(LRSchedule, Errors) {
  Fixture f;
  EXPECT_KILN_ERROR(StepLR(f.opt, 0), "step_size must be positive");
  EXPECT_KILN_ERROR(LinearWithWarmupLR(f.opt, -1, 10), "warmup_steps must be non-negative");
  EXPECT_KILN_ERROR(CosineWithWarmupLR(f.opt, 0, 10, -1.0), "min_lr must be non-negative");
  EXPECT_KILN_ERROR(PolynomialWithWarmupLR(f.opt, 10, 10), "total_steps (10) must exceed warmup_steps (10)");
  EXPECT_KILN_ERROR(PolynomialWithWarmupLR(f.opt, 0, 10, 0.5), "lr_end (0.5) must be smaller than initial lr (0.01)");
  StepLR s(f.opt, 2);
  EXPECT_KILN_ERROR(s.lr_at(-1, kBase), "step must be non-negative");

  nn::StateDict sd = s.state_dict();
  nn::StateDict missing;
  missing.insert("step", sd["step"]);
  EXPECT_KILN_ERROR(s.load_state_dict(missing), "missing key 'base_lrs'");
  nn::StateDict extra = s.state_dict();
  extra.insert("gamma", sd["step"]);
  EXPECT_KILN_ERROR(s.load_state_dict(extra), "unexpected key 'gamma'");
  nn::StateDict two = s.state_dict();
  two.insert_or_assign("base_lrs", make({2}, {0.1, 0.2}));
  EXPECT_KILN_ERROR(s.load_state_dict(two), "has shape [2] but the optimizer has 1 parameter groups");
  nn::StateDict negative = s.state_dict();
  negative.insert_or_assign("step", native::scalar_tensor(-3, TensorOptions().dtype(kInt64)));
  EXPECT_KILN_ERROR(s.load_state_dict(negative), "non-negative whole number");

  f.opt.add_param_group(ParamGroup({leaf(5)}));
  EXPECT_KILN_ERROR(s.step(), "the optimizer has 2 parameter groups but the scheduler was made for 1");
}
