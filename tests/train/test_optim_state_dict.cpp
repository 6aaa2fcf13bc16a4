// Optimizer state dicts: the flat tensor layout, a resumed run continuing
// bit for bit, dtype/device conversion on load, and clear errors for
// everything load_state_dict can be handed wrongly.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <memory>
#include <vector>

#include "test_util.h"

using namespace kiln;
using namespace kiln::optim;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

struct Model {
  Tensor w, b, frozen;
};

Model model(unsigned seed, DType dtype = kFloat32) {
  return {make({3, 4}, sample(12, -1, 1, seed), dtype).requires_grad_(true),
          make({4}, sample(4, -1, 1, seed + 1), dtype).requires_grad_(true),
          make({2}, sample(2, -1, 1, seed + 2), dtype).requires_grad_(true)};
}

// Gradients for step s (the frozen parameter never gets one).
void fake_backward(const Model& m, int s) {
  m.w.set_grad(make({3, 4}, sample(12, -1, 1, 300 + s), m.w.dtype()));
  m.b.set_grad(make({4}, sample(4, -1, 1, 400 + s), m.b.dtype()));
}

std::vector<ParamGroup> groups(const Model& m) {
  return {ParamGroup({m.w, m.frozen}), ParamGroup({m.b}, {{"lr", 0.05}, {"weight_decay", 0.0}})};
}

// Copies a state dict, dropping or replacing one key.
nn::StateDict edited(const nn::StateDict& sd, const std::string& key, const Tensor& value = Tensor()) {
  nn::StateDict out;
  for (const auto& item : sd) {
    if (item.key != key) {
      out.insert(item.key, item.value);
    } else if (value.defined()) {
      out.insert(item.key, value);
    }
  }
  return out;
}

Tensor f64(double v) { return native::scalar_tensor(v, TensorOptions().dtype(kFloat64)); }

}  // namespace

TEST(OptimStateDict, AdamLayoutIsFlatTensors) {
  Model m = model(1);
  AdamW opt(groups(m), {.lr = 0.01, .amsgrad = true});
  fake_backward(m, 0);
  opt.step();
  nn::StateDict sd = opt.state_dict();
  // Parameter indices count across groups: w=0, frozen=1 (no state: no grad yet), b=2.
  std::vector<std::string> expected = {
      "state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.max_exp_avg_sq",
      "state.2.step", "state.2.exp_avg", "state.2.exp_avg_sq", "state.2.max_exp_avg_sq",
      "param_groups.0.params", "param_groups.0.lr", "param_groups.0.beta1", "param_groups.0.beta2",
      "param_groups.0.eps", "param_groups.0.weight_decay", "param_groups.0.amsgrad", "param_groups.0.maximize",
      "param_groups.0.lr_scale", "param_groups.1.params", "param_groups.1.lr", "param_groups.1.weight_decay",
      "param_groups.1.beta1", "param_groups.1.beta2", "param_groups.1.eps", "param_groups.1.amsgrad",
      "param_groups.1.maximize", "param_groups.1.lr_scale"};
  EXPECT_EQ(sd.keys(), expected);
  EXPECT_EQ(sd["state.0.step"].dim(), 0);
  EXPECT_EQ(sd["state.0.step"].dtype(), kFloat32);
  EXPECT_EQ(sd["state.0.step"].item<double>(), 1.0);
  EXPECT_TRUE(sd["state.0.exp_avg"].sizes().equals({3, 4}));
  EXPECT_EQ(sd["param_groups.1.lr"].dtype(), kFloat64);
  EXPECT_EQ(sd["param_groups.1.lr"].dim(), 0);
  EXPECT_EQ(sd["param_groups.1.lr"].item<double>(), 0.05);
  EXPECT_EQ(sd["param_groups.0.weight_decay"].item<double>(), 1e-2);
  EXPECT_EQ(sd["param_groups.0.amsgrad"].item<double>(), 1.0);
  EXPECT_EQ(sd["param_groups.0.params"].dtype(), kInt64);
  EXPECT_EQ(values(sd["param_groups.0.params"]), (std::vector<double>{0, 1}));
  EXPECT_EQ(values(sd["param_groups.1.params"]), (std::vector<double>{2}));
}

TEST(OptimStateDict, StateDictIsASnapshot) {
  Model m = model(2);
  Adam opt(groups(m));
  fake_backward(m, 0);
  opt.step();
  nn::StateDict sd = opt.state_dict();
  const std::vector<double> before = values(sd["state.0.exp_avg"]);
  fake_backward(m, 1);
  opt.step();
  EXPECT_EQ(values(sd["state.0.exp_avg"]), before);
  EXPECT_EQ(sd["state.0.step"].item<double>(), 1.0);
}

template <typename Opt, typename Options>
void check_resume(const Options& options) {
  // Run A: 6 steps straight. Run B: 3 steps, save, a fresh optimizer on a
  // copy of the parameters loads the state, 3 more steps. Bit-identical.
  Model a = model(5);
  Opt opt_a(groups(a), options);
  Model b = model(5);
  auto opt_b = std::make_unique<Opt>(groups(b), options);
  for (int s = 0; s < 3; ++s) {
    fake_backward(a, s);
    opt_a.step();
    fake_backward(b, s);
    opt_b->step();
  }
  nn::StateDict saved = opt_b->state_dict();
  opt_b.reset();
  // The resumed optimizer starts with other hyperparameters: loading restores them.
  Opt resumed(groups(b), Options{});
  resumed.load_state_dict(saved);
  EXPECT_EQ(resumed.param_groups()[0].lr(), options.lr);
  EXPECT_EQ(resumed.param_groups()[1].lr(), 0.05);
  for (int s = 3; s < 6; ++s) {
    fake_backward(a, s);
    opt_a.step();
    fake_backward(b, s);
    resumed.step();
  }
  EXPECT_EQ(values(a.w), values(b.w));
  EXPECT_EQ(values(a.b), values(b.b));
  nn::StateDict sa = opt_a.state_dict(), sb = resumed.state_dict();
  ASSERT_EQ(sa.keys(), sb.keys());
  for (const auto& item : sa) EXPECT_EQ(values(item.value), values(sb[item.key])) << item.key;
}

TEST(OptimStateDict, AdamResumesBitForBit) {
  check_resume<Adam>(AdamOptions{.lr = 0.01, .beta1 = 0.8, .weight_decay = 0.1, .amsgrad = true});
}

TEST(OptimStateDict, AdamWResumesBitForBit) { check_resume<AdamW>(AdamWOptions{.lr = 0.02}); }

TEST(OptimStateDict, SGDResumesBitForBit) {
  check_resume<SGD>(SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.2, .weight_decay = 1e-3});
  check_resume<SGD>(SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
}

TEST(OptimStateDict, LoadConvertsToTheParameterDtype) {
  Model m64 = model(7, kFloat64);
  Adam src(groups(m64));
  fake_backward(m64, 0);
  src.step();
  Model m32 = model(7, kFloat32);
  Adam dst(groups(m32));
  dst.load_state_dict(src.state_dict());
  EXPECT_EQ(dst.state(m32.w)->at("exp_avg").dtype(), kFloat32);
  EXPECT_EQ(dst.state(m32.w)->at("step").dtype(), kFloat32);
  EXPECT_TRUE(kiln::testing::all_close(dst.state(m32.w)->at("exp_avg_sq"), src.state(m64.w)->at("exp_avg_sq"), 1e-6, 0));
  EXPECT_EQ(dst.state(m32.frozen), nullptr);
}

TEST(OptimStateDict, LoadedStateDoesNotAliasTheDict) {
  Model m = model(8, kFloat64);
  SGD src(groups(m), {.momentum = 0.9});
  fake_backward(m, 0);
  src.step();
  nn::StateDict sd = src.state_dict();
  SGD dst(groups(model(8, kFloat64)), {.momentum = 0.9});
  dst.load_state_dict(sd);
  const std::vector<double> saved = values(sd["state.0.momentum_buffer"]);
  dst.param_groups()[0].params[0].set_grad(make({3, 4}, sample(12, -1, 1, 77), kFloat64));
  dst.step();
  EXPECT_EQ(values(sd["state.0.momentum_buffer"]), saved);
}

TEST(OptimStateDict, LoadErrors) {
  Model m = model(9);
  Adam opt(groups(m), {.amsgrad = true});
  fake_backward(m, 0);
  opt.step();
  const nn::StateDict sd = opt.state_dict();
  Model m2 = model(9);
  Adam target(groups(m2), {.amsgrad = true});

  EXPECT_KILN_ERROR(target.load_state_dict(edited(sd, "state.0.exp_avg")), "missing key 'state.0.exp_avg'");
  EXPECT_KILN_ERROR(target.load_state_dict(edited(sd, "state.2.max_exp_avg_sq")),
                    "missing key 'state.2.max_exp_avg_sq'");
  EXPECT_KILN_ERROR(target.load_state_dict(edited(sd, "param_groups.1.eps")), "missing key 'param_groups.1.eps'");
  EXPECT_KILN_ERROR(target.load_state_dict(edited(sd, "param_groups.0.params")),
                    "missing key 'param_groups.0.params'");
  EXPECT_KILN_ERROR(target.load_state_dict(edited(sd, "state.0.exp_avg", native::zeros({4, 3}))),
                    "'state.0.exp_avg' has shape [4, 3] but the parameter has shape [3, 4]");
  EXPECT_KILN_ERROR(target.load_state_dict(edited(sd, "state.0.step", native::zeros({2}))), "single number");
  EXPECT_KILN_ERROR(target.load_state_dict(edited(sd, "state.0.step", f64(1.5))), "non-negative whole number");
  EXPECT_KILN_ERROR(target.load_state_dict(edited(sd, "param_groups.0.beta1", f64(1.5))),
                    "Invalid beta parameter at index 0");
  EXPECT_KILN_ERROR(target.load_state_dict(edited(sd, "param_groups.0.params",
                                                  native::tensor(std::vector<int64_t>{0}))),
                    "parameter group 0 has 1 parameters in the state dict but 2 in the optimizer");
  EXPECT_KILN_ERROR(target.load_state_dict(edited(sd, "param_groups.1.params",
                                                  native::tensor(std::vector<int64_t>{0}))),
                    "parameter index 0 is listed by more than one position");

  nn::StateDict extra = edited(sd, "");
  extra.insert("state.0.momentum_buffer", native::zeros({3, 4}));
  EXPECT_KILN_ERROR(target.load_state_dict(extra), "unexpected key 'state.0.momentum_buffer'");
  nn::StateDict stray = edited(sd, "");
  stray.insert("state.7.step", f64(1));
  EXPECT_KILN_ERROR(target.load_state_dict(stray), "refers to parameter 7, which no parameter group lists");
  nn::StateDict junk = edited(sd, "");
  junk.insert("epoch", f64(1));
  EXPECT_KILN_ERROR(target.load_state_dict(junk), "unexpected key 'epoch'");

  // Fewer groups in the optimizer than in the dict.
  Adam one_group({m2.w, m2.frozen, m2.b}, {.amsgrad = true});
  EXPECT_KILN_ERROR(one_group.load_state_dict(sd), "the state dict has 2 parameter groups but the optimizer has 1");

  // Another optimizer's dict: its options do not fit.
  SGD sgd(groups(model(9)), {.momentum = 0.9});
  EXPECT_KILN_ERROR(sgd.load_state_dict(sd), "unexpected key 'param_groups.0.amsgrad' (SGD has no option");

  // Without amsgrad the max_exp_avg_sq entries are unexpected.
  Adam plain(groups(model(9)));
  EXPECT_KILN_ERROR(plain.load_state_dict(edited(sd, "param_groups.0.amsgrad", f64(0))),
                    "unexpected key 'state.0.max_exp_avg_sq'");
}

TEST(OptimStateDict, FailedLoadChangesNothing) {
  Model m = model(10);
  Adam opt(groups(m), {.lr = 0.01});
  fake_backward(m, 0);
  opt.step();
  const nn::StateDict sd = opt.state_dict();
  nn::StateDict bad = edited(sd, "state.2.exp_avg");
  bad.insert_or_assign("param_groups.0.lr", f64(0.5));
  EXPECT_KILN_ERROR(opt.load_state_dict(bad), "missing key 'state.2.exp_avg'");
  EXPECT_EQ(opt.param_groups()[0].lr(), 0.01);
  const nn::StateDict after = opt.state_dict();
  for (const auto& item : sd) EXPECT_EQ(values(item.value), values(after[item.key])) << item.key;
}

TEST(OptimStateDict, EmptyStateRoundTrips) {
  Model m = model(11);
  SGD opt(groups(m), {.momentum = 0.9});
  nn::StateDict sd = opt.state_dict();
  for (const auto& key : sd.keys()) EXPECT_EQ(key.rfind("param_groups.", 0), 0u) << key;
  SGD other(groups(model(11)), {.lr = 0.5});
  other.load_state_dict(sd);
  EXPECT_EQ(other.param_groups()[0].lr(), 1e-3);
  EXPECT_EQ(other.param_groups()[0].get("momentum"), 0.9);
}
