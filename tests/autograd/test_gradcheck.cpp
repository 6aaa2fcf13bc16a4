// gradcheck itself: it accepts correct formulas, and catches (and locates)
// wrong ones; plus custom differentiable functions written with record().
#include <kiln/kiln.h>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using autograd::FunctionNode;
using autograd::variable_list;
using kiln::testing::leaf;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::values;

namespace {
// x * x with a backward that is wrong by `error` on element `bad`.
Tensor buggy_square(const Tensor& x, int64_t bad, double error) {
  return autograd::record("BuggySquareBackward", native::mul(x, x), {x}, {x},
                          [bad, error](FunctionNode& c, const Tensor& g) -> variable_list {
                            Tensor grad = native::mul(native::mul(g, c.saved(0)), 2.0);
                            Tensor wrong = native::clone(grad);
                            Tensor flat = native::reshape(wrong, {-1});
                            native::copy_(native::select(flat, 0, bad),
                                          native::add(native::select(flat, 0, bad), error));
                            return {wrong};
                          });
}
// A custom op written with the public pattern: softplus(x) = log(1 + e^x).
Tensor softplus(const Tensor& x) {
  return autograd::record("SoftplusBackward0", kiln::log1p(kiln::exp(x)).detach(), {x}, {x},
                          [](FunctionNode& c, const Tensor& g) -> variable_list {
                            return {g * kiln::sigmoid(c.saved(0))};
                          });
}
}  // namespace

TEST(Gradcheck, AcceptsCorrectFormulas) {
  Tensor x = random_leaf({2, 3});
  EXPECT_TRUE(autograd::gradcheck([](const variable_list& in) { return in[0].exp() * in[0]; }, {x}));
  EXPECT_TRUE(autograd::gradcheck([](const variable_list& in) { return variable_list{in[0] * 2.0, in[0].sin()}; },
                                  {x}));
}

TEST(Gradcheck, ReportsTheMismatchedElement) {
  Tensor x = random_leaf({2, 3});
  auto f = [](const variable_list& in) { return variable_list{buggy_square(in[0], 4, 1e-2)}; };
  std::string report = autograd::gradcheck_report(f, {x});
  EXPECT_NE(report.find("output 0 with respect to input 0"), std::string::npos) << report;
  EXPECT_NE(report.find("input element 4 (index [1, 1])"), std::string::npos) << report;
  EXPECT_FALSE(autograd::gradcheck(f, {x}));
  EXPECT_KILN_ERROR(autograd::gradcheck(f, {x}, 1e-6, 1e-5, 1e-3, /*raise_exception=*/true), "Jacobian mismatch");
  // Errors below the tolerance pass.
  auto tiny = [](const variable_list& in) { return variable_list{buggy_square(in[0], 4, 1e-9)}; };
  EXPECT_TRUE(autograd::gradcheck(tiny, {x}));
}

TEST(Gradcheck, ChecksOnlyInputsThatRequireGrad) {
  Tensor x = random_leaf({3});
  Tensor c = make({3}, {1, 2, 3});
  EXPECT_TRUE(autograd::gradcheck([](const variable_list& in) { return in[0] * in[1]; }, {x, c}));
  EXPECT_FALSE(c.grad().defined());
  EXPECT_FALSE(x.grad().defined());  // gradcheck leaves .grad() as it found it
}

TEST(Gradcheck, RejectsUnsuitableInputs) {
  auto id = [](const variable_list& in) { return in[0] * 1.0; };
  Tensor f32 = native::ones({2}, kFloat32).requires_grad_();
  EXPECT_KILN_ERROR(autograd::gradcheck(id, {f32}), "float64");
  Tensor expanded = native::expand(make({1}, {1}), {3}).requires_grad_();
  EXPECT_KILN_ERROR(autograd::gradcheck(id, {expanded}), "share memory");
  EXPECT_KILN_ERROR(autograd::gradcheck(id, {make({2}, {1, 2})}), "no input requires grad");
}

TEST(Gradcheck, OutputIndependentOfAnInput) {
  Tensor x = random_leaf({2});
  Tensor y = random_leaf({2}, -1, 1, 3);
  EXPECT_TRUE(autograd::gradcheck([](const variable_list& in) { return in[0].exp(); }, {x, y}));
}

TEST(Gradcheck, GradgradcheckCatchesAWrongSecondDerivative) {
  // First derivative right (2x) but built from a detached x: the second derivative is lost.
  auto f = [](const variable_list& in) {
    return autograd::record("DetachedSquareBackward", native::mul(in[0], in[0]), {in[0]}, {in[0]},
                            [](FunctionNode& c, const Tensor& g) -> variable_list {
                              return {g * kiln::detach(c.saved(0)) * 2.0};
                            });
  };
  Tensor x = random_leaf({3});
  EXPECT_TRUE(autograd::gradcheck(f, {x}));
  EXPECT_FALSE(autograd::gradgradcheck(f, {x}));
  EXPECT_TRUE(autograd::gradgradcheck([](const variable_list& in) { return in[0] * in[0]; }, {x}));
}

TEST(Gradcheck, CustomFunctionWithThePublicPattern) {
  Tensor x = random_leaf({4}, -3, 3);
  EXPECT_EQ(softplus(x).grad_fn()->name(), "SoftplusBackward0");
  EXPECT_GRADCHECK([](const variable_list& in) { return softplus(in[0]); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return softplus(in[0]); }, {x});
  // Nothing recorded without grad.
  EXPECT_FALSE(softplus(make({2}, {1, 2})).requires_grad());
}
