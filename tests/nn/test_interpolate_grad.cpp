// Gradients of nn::functional::interpolate (nearest, bilinear): gradcheck
// and gradgradcheck in float64 for up- and downsampling, non-integer scale
// factors with and without recompute_scale_factor, align_corners both ways
// and non-contiguous inputs; closed-form gradients; grad_fn names; errors.
#include <kiln/kiln.h>

#include <vector>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using autograd::variable_list;
using kiln::testing::all_close;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::sample;
using kiln::testing::values;
namespace F = kiln::nn::functional;

namespace {

std::string grad_fn_name(const Tensor& t) { return t.grad_fn() ? t.grad_fn()->name() : "(none)"; }

std::vector<F::InterpolateFuncOptions> all_options() {
  using M = F::InterpolateMode;
  std::vector<F::InterpolateFuncOptions> v;
  for (M mode : {M::Nearest, M::Bilinear}) {
    for (int align = 0; align < (mode == M::Bilinear ? 2 : 1); ++align) {
      auto base = F::InterpolateFuncOptions().mode(mode);
      if (mode == M::Bilinear) base.align_corners(align == 1);
      v.push_back(F::InterpolateFuncOptions(base).size(std::vector<int64_t>{7, 9}));  // up
      v.push_back(F::InterpolateFuncOptions(base).size(std::vector<int64_t>{3, 2}));  // down
      v.push_back(F::InterpolateFuncOptions(base).scale_factor(std::vector<double>{1.7, 0.6}));
      v.push_back(
          F::InterpolateFuncOptions(base).scale_factor(std::vector<double>{2.5}).recompute_scale_factor(true));
    }
  }
  return v;
}

}  // namespace

TEST(InterpolateGrad, Gradcheck) {
  for (const auto& o : all_options()) {
    auto fn = [&](const variable_list& in) { return F::interpolate(in[0], o); };
    EXPECT_GRADCHECK(fn, {random_leaf({2, 2, 4, 5}, -1, 1, 3)});
    EXPECT_GRADGRADCHECK(fn, {random_leaf({1, 2, 4, 5}, -1, 1, 4)});
    Tensor cl = native::permute(make({1, 4, 5, 3}, sample(60, -1, 1, 5)), {0, 3, 1, 2}).requires_grad_(true);
    EXPECT_GRADCHECK(fn, {cl});
  }
}

TEST(InterpolateGrad, ClosedForm) {
  // Nearest x2: every input feeds a 2x2 block.
  Tensor x = random_leaf({1, 1, 2, 3});
  F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0})).sum().backward();
  EXPECT_EQ(values(x.grad()), std::vector<double>(6, 4.0));
  // Bilinear, align_corners, 2 -> 3 along W: outputs x0, (x0 + x1) / 2, x1.
  Tensor y = random_leaf({1, 1, 1, 2});
  Tensor out = F::interpolate(
      y, F::InterpolateFuncOptions().mode(F::InterpolateMode::Bilinear).align_corners(true).size(
             std::vector<int64_t>{1, 3}));
  EXPECT_TRUE(all_close(out, make({1, 1, 1, 3}, {values(y)[0], (values(y)[0] + values(y)[1]) / 2, values(y)[1]}),
                        1e-15, 1e-15));
  (out * make({1, 1, 1, 3}, {1, 2, 3})).sum().backward();
  EXPECT_TRUE(all_close(y.grad(), make({1, 1, 1, 2}, {2, 4}), 1e-15, 1e-15));
}

TEST(InterpolateGrad, NamesAndDoubleBackward) {
  for (auto mode : {F::InterpolateMode::Nearest, F::InterpolateMode::Bilinear}) {
    const bool nearest = mode == F::InterpolateMode::Nearest;
    Tensor x = random_leaf({1, 2, 3, 4});
    Tensor out = F::interpolate(x, F::InterpolateFuncOptions().mode(mode).size(std::vector<int64_t>{5, 7}));
    EXPECT_EQ(grad_fn_name(out), nearest ? "UpsampleNearest2DBackward0" : "UpsampleBilinear2DBackward0");
    Tensor g = random_leaf(out.sizes().vec(), -1, 1, 2);
    auto gx = autograd::grad({out}, {x}, {g}, std::nullopt, true);
    EXPECT_EQ(grad_fn_name(gx[0]),
              nearest ? "UpsampleNearest2DBackwardBackward0" : "UpsampleBilinear2DBackwardBackward0");
    // d<gx, w>/dg is the forward resize of w.
    Tensor w = random_leaf(x.sizes().vec(), -1, 1, 3);
    auto gg = autograd::grad({(gx[0] * w).sum()}, {g});
    EXPECT_TRUE(all_close(gg[0], native::upsample2d(w, nearest ? InterpolationMode::Nearest : InterpolationMode::Bilinear,
                                                    {5, 7}),
                          1e-15, 1e-15));
  }
}

TEST(InterpolateGrad, ReducedPrecisionAndErrors) {
  Tensor x = native::to(make({1, 1, 2, 2}, {1, 2, 3, 4}), kBFloat16).requires_grad_(true);
  Tensor y = F::interpolate(x, F::InterpolateFuncOptions().mode(F::InterpolateMode::Bilinear).size(
                                   std::vector<int64_t>{4, 4}));
  EXPECT_EQ(y.dtype(), kBFloat16);
  y.sum().backward();
  EXPECT_EQ(x.grad().dtype(), kBFloat16);
  EXPECT_EQ(values(x.grad()), std::vector<double>(4, 4.0));  // 16 outputs share 4 inputs' weights evenly
  Tensor z = random_leaf({1, 1, 4, 5});
  EXPECT_KILN_ERROR(F::interpolate(z, F::InterpolateFuncOptions()), "either size or scale_factor");
  EXPECT_KILN_ERROR(F::interpolate(z, F::InterpolateFuncOptions()
                                          .size(std::vector<int64_t>{3, 3})
                                          .scale_factor(std::vector<double>{2.0})),
                    "only one of size or scale_factor");
  EXPECT_KILN_ERROR(F::interpolate(z, F::InterpolateFuncOptions().size(std::vector<int64_t>{3, 3}).align_corners(true)),
                    "align_corners can only be set");
  EXPECT_KILN_ERROR(F::interpolate(random_leaf({4, 5}), F::InterpolateFuncOptions().size(std::vector<int64_t>{3, 3})),
                    "expected a 4-D [N, C, H, W] input");
}
