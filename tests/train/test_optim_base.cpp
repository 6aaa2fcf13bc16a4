// The Optimizer base: parameter groups and their defaults, zero_grad in both
// modes, step with a closure, and the errors for bad groups.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <vector>

#include "test_util.h"

using namespace kiln;
using namespace kiln::optim;
using kiln::testing::make;
using kiln::testing::values;

namespace {

Tensor leaf(const std::vector<double>& v) {
  return make({static_cast<int64_t>(v.size())}, v).requires_grad_(true);
}

}  // namespace

TEST(OptimBase, GroupsTakeDefaultsForOptionsTheyLeaveOut) {
  Tensor a = leaf({1, 2}), b = leaf({3});
  SGD opt({ParamGroup({a}, {{"lr", 0.5}}), ParamGroup({b}, {{"lr_scale", 0.25}})}, {.lr = 0.1, .momentum = 0.9});
  const auto& g = opt.param_groups();
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].lr(), 0.5);
  EXPECT_EQ(g[0].get("momentum"), 0.9);
  EXPECT_EQ(g[0].get("lr_scale"), 1.0);
  EXPECT_EQ(g[1].lr(), 0.1);
  EXPECT_EQ(g[1].get("lr_scale"), 0.25);
  EXPECT_EQ(opt.defaults().keys(),
            (std::vector<std::string>{"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize",
                                      "lr_scale"}));
}

TEST(OptimBase, AddParamGroupLater) {
  Tensor a = leaf({1}), b = leaf({2});
  Adam opt({a}, {.lr = 0.01});
  opt.add_param_group(ParamGroup({b}, {{"lr", 0.1}}));
  ASSERT_EQ(opt.param_groups().size(), 2u);
  EXPECT_EQ(opt.param_groups()[1].get("beta2"), 0.999);
  b.set_grad(make({1}, {1.0}));
  opt.step();
  EXPECT_NEAR(values(b)[0], 2 - 0.1, 1e-8);  // Adam's first step: lr * sign(g)
  EXPECT_EQ(values(a)[0], 1.0);
}

TEST(OptimBase, GroupErrors) {
  Tensor a = leaf({1, 2}), b = leaf({3});
  SGD opt({a});
  EXPECT_KILN_ERROR(opt.add_param_group(ParamGroup({b, a})), "some parameters appear in more than one parameter group");
  EXPECT_KILN_ERROR(opt.add_param_group(ParamGroup({b, b})), "parameter group 1 contains parameter 1 more than once");
  EXPECT_KILN_ERROR(opt.add_param_group(ParamGroup({b}, {{"betas", 0.9}})), "unknown option 'betas'");
  EXPECT_KILN_ERROR(opt.add_param_group(ParamGroup({b}, {{"lr", -0.1}})), "Invalid learning rate: -0.1 (parameter group 1)");
  EXPECT_KILN_ERROR(opt.add_param_group(ParamGroup({b}, {{"lr_scale", -1.0}})), "Invalid lr_scale");
  EXPECT_KILN_ERROR(opt.add_param_group(ParamGroup({Tensor()})), "undefined tensor");
  EXPECT_KILN_ERROR(opt.add_param_group(ParamGroup({native::zeros({2}, TensorOptions().dtype(kInt64))})),
                    "must be floating point");
  Tensor nonleaf = b * 2.0;
  EXPECT_KILN_ERROR(opt.add_param_group(ParamGroup({nonleaf})), "can't optimize a non-leaf Tensor");
  ParamGroup named({b});
  named.param_names = {"x", "y"};
  EXPECT_KILN_ERROR(opt.add_param_group(named), "has 2 names for 1 parameters");
  EXPECT_EQ(opt.param_groups().size(), 1u);  // nothing was added
  EXPECT_KILN_ERROR(SGD(std::vector<ParamGroup>{}), "optimizer got an empty parameter list");
  EXPECT_KILN_ERROR(opt.param_groups()[0].get("betas"), "no option 'betas'");
}

TEST(OptimBase, ZeroGradSetToNone) {
  Tensor a = leaf({1, 2});
  (a * a).sum().backward();
  ASSERT_TRUE(a.grad().defined());
  SGD opt({a});
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  opt.zero_grad();  // no gradient: nothing to do
  EXPECT_FALSE(a.grad().defined());
}

TEST(OptimBase, ZeroGradInPlace) {
  Tensor a = leaf({1, 2});
  (a * a).sum().backward();
  const Tensor before = a.grad();
  SGD opt({a});
  opt.zero_grad(false);
  ASSERT_TRUE(a.grad().defined());
  EXPECT_TRUE(a.grad().is_same(before));  // the same tensor, zeroed
  EXPECT_EQ(values(a.grad()), (std::vector<double>{0, 0}));
}

TEST(OptimBase, ZeroGradInPlaceDetachesAGradientWithHistory) {
  Tensor a = leaf({1, 2});
  (a * a * a).sum().backward(Tensor(), true, /*create_graph=*/true);
  ASSERT_TRUE(a.grad().requires_grad());
  SGD opt({a});
  opt.zero_grad(false);
  EXPECT_FALSE(a.grad().requires_grad());
  EXPECT_EQ(values(a.grad()), (std::vector<double>{0, 0}));
}

TEST(OptimBase, StepRunsTheClosureWithGradEnabled) {
  Tensor a = leaf({1.0, -2.0});
  SGD opt({a}, {.lr = 0.1});
  int calls = 0;
  Tensor loss;
  {
    NoGradGuard no_grad;  // the closure must still record the graph
    loss = opt.step([&] {
      ++calls;
      opt.zero_grad();
      Tensor l = (a * a).sum();
      l.backward();
      return l;
    });
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loss.item<double>(), 5.0);
  EXPECT_EQ(values(a), (std::vector<double>{1.0 - 0.1 * 2.0, -2.0 + 0.1 * 4.0}));
  EXPECT_FALSE(opt.step().defined());  // no closure: no loss
}

TEST(OptimBase, StepDoesNotRecordHistory) {
  Tensor a = leaf({1, 2});
  a.set_grad(make({2}, {1, 1}));
  Adam opt({a});
  opt.step();
  EXPECT_TRUE(a.is_leaf());
  EXPECT_TRUE(a.requires_grad());
  EXPECT_FALSE(opt.state(a)->at("exp_avg").requires_grad());
}
