// F::conv2d's autograd: gradients of input, weight and bias against the
// naive float64 loop in conv_reference.h, gradcheck and gradgradcheck in
// float64 (strides, padding, dilation, groups, depthwise, unbatched,
// non-contiguous leaves), the graph's node names, 16-bit inputs, errors.
#include <kiln/kiln.h>

#include <string>
#include <vector>

#include "autograd/gradcheck_util.h"
#include "conv_reference.h"

using namespace kiln;
using autograd::variable_list;
using kiln::testing::all_close;
using kiln::testing::conv_ref_shape;
using kiln::testing::conv_reference;
using kiln::testing::ConvSpec;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::sample;
using kiln::testing::values;
namespace F = kiln::nn::functional;

namespace {

ConvSpec spec(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh = 1, int64_t dw = 1, int64_t groups = 1) {
  ConvSpec s;
  s.stride[0] = sh;
  s.stride[1] = sw;
  s.padding[0] = ph;
  s.padding[1] = pw;
  s.dilation[0] = dh;
  s.dilation[1] = dw;
  s.groups = groups;
  return s;
}

F::Conv2dFuncOptions options(const ConvSpec& s, const Tensor& bias = Tensor()) {
  return F::Conv2dFuncOptions()
      .bias(bias)
      .stride({s.stride[0], s.stride[1]})
      .padding({s.padding[0], s.padding[1]})
      .dilation({s.dilation[0], s.dilation[1]})
      .groups(s.groups);
}

struct GradCase {
  std::string name;
  std::vector<int64_t> x, w;
  ConvSpec s;
};

// Small shapes for gradcheck: each of stride, padding, dilation, groups,
// depthwise (with a channel multiplier), 1x1 and asymmetric kernels.
std::vector<GradCase> grad_cases() {
  return {
      {"3x3 pad1", {2, 2, 4, 5}, {3, 2, 3, 3}, spec(1, 1, 1, 1)},
      {"stride2 asym pad", {1, 2, 5, 6}, {2, 2, 3, 2}, spec(2, 2, 1, 0)},
      {"dilation", {1, 2, 6, 5}, {2, 2, 2, 3}, spec(1, 1, 1, 2, 2, 1)},
      {"groups2", {2, 4, 4, 4}, {4, 2, 2, 2}, spec(1, 2, 1, 0, 1, 1, 2)},
      {"depthwise x2", {1, 3, 5, 4}, {6, 1, 3, 3}, spec(2, 1, 1, 1, 1, 1, 3)},
      {"1x1", {2, 3, 3, 3}, {2, 3, 1, 1}, spec(1, 1, 0, 0)},
  };
}

}  // namespace

// y = conv2d(x, w, b); y.backward(go) gives the reference's gradients, in
// float64 and float32, with and without bias, through both call forms.
TEST(Conv2dGrad, BackwardAgainstReference) {
  struct Case {
    std::string name;
    std::vector<int64_t> x, w;
    ConvSpec s;
    bool bias;
  };
  const std::vector<Case> cases = {
      {"3x3", {2, 3, 7, 6}, {4, 3, 3, 3}, spec(1, 1, 1, 1), true},
      {"stride2 dil2 groups", {3, 4, 9, 8}, {6, 2, 3, 2}, spec(2, 1, 1, 2, 2, 1, 2), true},
      {"depthwise", {2, 4, 6, 7}, {4, 1, 3, 3}, spec(1, 1, 1, 1, 1, 1, 4), false},
      {"1x1", {2, 8, 5, 5}, {6, 8, 1, 1}, spec(1, 1, 0, 0), true},
      {"7x7 stride2 stem", {2, 3, 16, 16}, {4, 3, 7, 7}, spec(2, 2, 3, 3), false},
  };
  for (DType dt : {kFloat64, kFloat32}) {
    const double rtol = dt == kFloat64 ? 1e-12 : 1e-5, atol = dt == kFloat64 ? 1e-12 : 1e-4;
    for (const Case& c : cases) {
      SCOPED_TRACE(c.name + " " + dtype_name(dt));
      Tensor x = make(c.x, sample(numel_of(c.x), -1, 1, 1), dt).requires_grad_(true);
      Tensor w = make(c.w, sample(numel_of(c.w), -1, 1, 2), dt).requires_grad_(true);
      Tensor b = c.bias ? make({c.w[0]}, sample(c.w[0], -1, 1, 3), dt).requires_grad_(true) : Tensor();
      auto ys = conv_ref_shape(c.x, c.w, c.s);
      Tensor go = make(ys, sample(numel_of(ys), -1, 1, 4), dt);
      auto ref = conv_reference(values(x), c.x, values(w), c.w, c.bias ? values(b) : std::vector<double>{}, values(go),
                                c.s);
      Tensor y = F::conv2d(x, w, options(c.s, b));
      ASSERT_TRUE(y.grad_fn());
      EXPECT_EQ(y.grad_fn()->name(), "ConvolutionBackward0");
      EXPECT_TRUE(all_close(y, make(ys, ref.y), rtol, atol));
      y.backward(go);
      EXPECT_TRUE(all_close(x.grad(), make(c.x, ref.gx), rtol, atol));
      EXPECT_TRUE(all_close(w.grad(), make(c.w, ref.gw), rtol, atol));
      if (c.bias) {
        EXPECT_TRUE(all_close(b.grad(), make({c.w[0]}, ref.gb), rtol, atol));
      }

      // The positional (torch::conv2d-style) form records the same graph.
      Tensor x2 = native::clone(x).requires_grad_(true);
      Tensor y2 = F::conv2d(x2, native::clone(w), b, {c.s.stride[0], c.s.stride[1]}, {c.s.padding[0], c.s.padding[1]},
                            {c.s.dilation[0], c.s.dilation[1]}, c.s.groups);
      EXPECT_TRUE(all_close(y2, y, 0, 0));
      y2.backward(go);
      EXPECT_TRUE(all_close(x2.grad(), x.grad(), 0, 0));
    }
  }
}

// Only the operands that require grad get one; the fused weight+bias path
// and the separate ones give the same numbers.
TEST(Conv2dGrad, PartialRequiresGrad) {
  const ConvSpec s = spec(1, 1, 1, 1);
  Tensor x0 = make({2, 3, 5, 5}, sample(150, -1, 1, 1));
  Tensor w0 = make({4, 3, 3, 3}, sample(108, -1, 1, 2));
  Tensor b0 = make({4}, sample(4, -1, 1, 3));
  Tensor go = make({2, 4, 5, 5}, sample(200, -1, 1, 4));
  auto ref = conv_reference(values(x0), {2, 3, 5, 5}, values(w0), {4, 3, 3, 3}, values(b0), values(go), s);
  for (int mask = 1; mask < 8; ++mask) {
    SCOPED_TRACE("mask " + std::to_string(mask));
    Tensor x = native::clone(x0).requires_grad_((mask & 1) != 0);
    Tensor w = native::clone(w0).requires_grad_((mask & 2) != 0);
    Tensor b = native::clone(b0).requires_grad_((mask & 4) != 0);
    F::conv2d(x, w, options(s, b)).backward(go);
    EXPECT_EQ(x.grad().defined(), (mask & 1) != 0);
    EXPECT_EQ(w.grad().defined(), (mask & 2) != 0);
    EXPECT_EQ(b.grad().defined(), (mask & 4) != 0);
    if (mask & 1) {
      EXPECT_TRUE(all_close(x.grad(), make({2, 3, 5, 5}, ref.gx), 1e-12, 1e-12));
    }
    if (mask & 2) {
      EXPECT_TRUE(all_close(w.grad(), make({4, 3, 3, 3}, ref.gw), 1e-12, 1e-12));
    }
    if (mask & 4) {
      EXPECT_TRUE(all_close(b.grad(), make({4}, ref.gb), 1e-12, 1e-12));
    }
  }
  // No operand requiring grad: nothing recorded.
  EXPECT_FALSE(F::conv2d(x0, w0, options(s, b0)).grad_fn());
}

TEST(Conv2dGrad, Gradcheck) {
  for (const GradCase& c : grad_cases()) {
    SCOPED_TRACE(c.name);
    const ConvSpec s = c.s;
    auto f = [&](const variable_list& in) { return F::conv2d(in[0], in[1], options(s, in[2])); };
    EXPECT_GRADCHECK(f, {random_leaf(c.x, -1, 1, 1), random_leaf(c.w, -1, 1, 2), random_leaf({c.w[0]}, -1, 1, 3)});
    auto no_bias = [&](const variable_list& in) { return F::conv2d(in[0], in[1], options(s)); };
    EXPECT_GRADCHECK(no_bias, {random_leaf(c.x, -1, 1, 4), random_leaf(c.w, -1, 1, 5)});
  }
}

TEST(Conv2dGrad, Gradgradcheck) {
  for (const GradCase& c : grad_cases()) {
    SCOPED_TRACE(c.name);
    const ConvSpec s = c.s;
    auto f = [&](const variable_list& in) { return F::conv2d(in[0], in[1], options(s, in[2])); };
    EXPECT_GRADGRADCHECK(f, {random_leaf(c.x, -1, 1, 1), random_leaf(c.w, -1, 1, 2), random_leaf({c.w[0]}, -1, 1, 3)});
  }
}

// Second derivatives with only one of input/weight differentiable (the
// other a constant), and a composite second-order loss.
TEST(Conv2dGrad, GradgradcheckOneOperand) {
  const ConvSpec s = spec(2, 1, 1, 1, 1, 2);
  Tensor w_const = make({3, 2, 2, 3}, sample(36, -1, 1, 7));
  Tensor x_const = make({2, 2, 5, 6}, sample(120, -1, 1, 8));
  auto of_x = [&](const variable_list& in) { return F::conv2d(in[0], w_const, options(s)); };
  auto of_w = [&](const variable_list& in) { return F::conv2d(x_const, in[0], options(s)); };
  EXPECT_GRADGRADCHECK(of_x, {random_leaf({2, 2, 5, 6}, -1, 1, 1)});
  EXPECT_GRADGRADCHECK(of_w, {random_leaf({3, 2, 2, 3}, -1, 1, 2)});
  // A nonlinearity after the convolution makes the second derivative depend
  // on the forward values, not only on the bilinear structure.
  auto tanh_conv = [&](const variable_list& in) { return kiln::tanh(F::conv2d(in[0], in[1], options(s, in[2]))); };
  EXPECT_GRADGRADCHECK(tanh_conv,
                       {random_leaf({2, 2, 5, 6}, -1, 1, 3), random_leaf({3, 2, 2, 3}, -1, 1, 4), random_leaf({3}, -1, 1, 5)});
}

TEST(Conv2dGrad, UnbatchedAndNonContiguous) {
  const ConvSpec s = spec(1, 2, 1, 1);
  auto f = [&](const variable_list& in) { return F::conv2d(in[0], in[1], options(s, in[2])); };
  // Unbatched input [C, H, W].
  EXPECT_GRADCHECK(f, {random_leaf({2, 4, 5}, -1, 1, 1), random_leaf({3, 2, 3, 3}, -1, 1, 2), random_leaf({3}, -1, 1, 3)});
  EXPECT_GRADGRADCHECK(f,
                       {random_leaf({2, 4, 5}, -1, 1, 1), random_leaf({3, 2, 3, 3}, -1, 1, 2), random_leaf({3}, -1, 1, 3)});
  // Leaves whose memory is permuted: channels-last input, kernel-transposed weight.
  Tensor x = native::permute(make({2, 4, 5, 2}, sample(80, -1, 1, 4)), {0, 3, 1, 2}).requires_grad_(true);
  Tensor w = native::transpose(make({3, 2, 3, 3}, sample(54, -1, 1, 5)), 2, 3).requires_grad_(true);
  ASSERT_FALSE(x.is_contiguous());
  ASSERT_FALSE(w.is_contiguous());
  EXPECT_GRADCHECK(f, {x, w, random_leaf({3}, -1, 1, 6)});
  EXPECT_GRADGRADCHECK(f, {x, w, random_leaf({3}, -1, 1, 6)});

  // The unbatched result and gradients equal the batch-of-one ones.
  Tensor x3 = random_leaf({2, 4, 5}, -1, 1, 7), w3 = random_leaf({3, 2, 3, 3}, -1, 1, 8);
  Tensor y3 = F::conv2d(x3, w3, options(s));
  EXPECT_EQ(y3.sizes(), IntArrayRef({3, 4, 3}));
  Tensor x4 = native::unsqueeze(native::clone(x3), 0).requires_grad_(true);
  Tensor y4 = F::conv2d(x4, w3, options(s));
  EXPECT_TRUE(all_close(y3, native::squeeze(y4, 0), 0, 0));
  y3.sum().backward();
  Tensor gw3 = native::clone(w3.grad());
  w3.set_grad(Tensor());
  y4.sum().backward();
  EXPECT_TRUE(all_close(native::unsqueeze(x3.grad(), 0), x4.grad(), 0, 0));
  EXPECT_TRUE(all_close(gw3, w3.grad(), 0, 0));
}

// Double backward through the graph by hand: d/dw of <grad_x, v> where
// grad_x = d<y, go>/dx = bwd_input(go, w) is linear in w, so its gradient
// is bwd_weight(go, v), i.e. the reference weight gradient with x := v.
TEST(Conv2dGrad, CreateGraphSecondDerivative) {
  const ConvSpec s = spec(1, 1, 1, 1, 1, 1, 2);
  const std::vector<int64_t> xs{2, 4, 5, 5}, ws{4, 2, 3, 3};
  Tensor x = random_leaf(xs, -1, 1, 1), w = random_leaf(ws, -1, 1, 2);
  Tensor go = make({2, 4, 5, 5}, sample(200, -1, 1, 3));
  Tensor v = make(xs, sample(200, -1, 1, 4));
  Tensor y = F::conv2d(x, w, options(s));
  variable_list gx = autograd::grad({y}, {x}, {go}, /*retain_graph=*/true, /*create_graph=*/true);
  ASSERT_TRUE(gx[0].grad_fn());
  EXPECT_EQ(gx[0].grad_fn()->name(), "ConvolutionBackwardBackward0");
  variable_list gw = autograd::grad({(gx[0] * v).sum()}, {w});
  auto ref = conv_reference(values(v), xs, values(w), ws, {}, values(go), s);
  EXPECT_TRUE(all_close(gw[0], make(ws, ref.gw), 1e-12, 1e-12));
}

TEST(Conv2dGrad, HalfAndBFloat16) {
  for (DType dt : {kFloat16, kBFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    const double rel = dt == kFloat16 ? 1e-3 : 8e-3;
    const ConvSpec s = spec(1, 1, 1, 1);
    Tensor x = make({2, 3, 5, 5}, sample(150, -1, 1, 1), dt).requires_grad_(true);
    Tensor w = make({4, 3, 3, 3}, sample(108, -1, 1, 2), dt).requires_grad_(true);
    Tensor b = make({4}, sample(4, -1, 1, 3), dt).requires_grad_(true);
    Tensor go = make({2, 4, 5, 5}, sample(200, -1, 1, 4), dt);
    auto ref = conv_reference(values(x), {2, 3, 5, 5}, values(w), {4, 3, 3, 3}, values(b), values(go), s);
    Tensor y = F::conv2d(x, w, options(s, b));
    EXPECT_EQ(y.dtype(), dt);
    EXPECT_TRUE(all_close(y, make({2, 4, 5, 5}, ref.y), rel, 8 * rel));
    y.backward(go);
    EXPECT_EQ(x.grad().dtype(), dt);
    EXPECT_TRUE(all_close(x.grad(), make({2, 3, 5, 5}, ref.gx), rel, 8 * rel));
    // Weight and bias gradients sum 50 terms: allow an ulp of that magnitude.
    EXPECT_TRUE(all_close(w.grad(), make({4, 3, 3, 3}, ref.gw), rel, 50 * rel));
    EXPECT_TRUE(all_close(b.grad(), make({4}, ref.gb), rel, 50 * rel));
  }
}

TEST(Conv2dGrad, Errors) {
  Tensor x = native::zeros({2, 3, 5, 5}), w = native::zeros({4, 3, 3, 3});
  EXPECT_KILN_ERROR(F::conv2d(native::zeros({2, 4, 5, 5}), w), "expected input[2, 4, 5, 5] to have 3 channels");
  EXPECT_KILN_ERROR(F::conv2d(x, w, F::Conv2dFuncOptions().stride(0)), "non-positive stride");
  EXPECT_KILN_ERROR(F::conv2d(x, w, F::Conv2dFuncOptions().dilation(3)),
                    "Kernel size can't be greater than actual input size");
  EXPECT_KILN_ERROR(F::conv2d(x, native::zeros({4, 3, 3, 3}), native::zeros({3})),
                    "expected bias to be 1-dimensional with 4 elements");
  EXPECT_KILN_ERROR(F::conv2d(native::zeros({2, 6, 5, 5}), native::zeros({3, 3, 3, 3}), F::Conv2dFuncOptions().groups(2)),
                    "expected weight to be divisible by 2");
  EXPECT_KILN_ERROR(F::Conv2dFuncOptions().stride({1, 2, 3}), "expected 2 values");
}
