// clip_grad_norm_ / clip_grad_value_ against norms computed here in float64,
// and torch's handling of NaN and infinite gradients.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "test_util.h"

using namespace kiln;
using namespace kiln::optim;
using kiln::testing::kInf;
using kiln::testing::kNaN;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

Tensor with_grad(IntArrayRef sizes, const std::vector<double>& g, DType dtype = kFloat64) {
  Tensor p = native::zeros(sizes, TensorOptions().dtype(dtype)).requires_grad_(true);
  p.set_grad(make(sizes, g, dtype));
  return p;
}

double ref_norm(const std::vector<std::vector<double>>& gs, double p) {
  if (std::isinf(p)) {
    double m = 0;
    for (const auto& g : gs)
      for (double x : g) m = std::max(m, std::fabs(x));
    return m;
  }
  double s = 0;
  for (const auto& g : gs)
    for (double x : g) s += std::pow(std::fabs(x), p);
  return std::pow(s, 1.0 / p);
}

}  // namespace

TEST(ClipGrad, NormIsGlobalOverAllGradients) {
  auto ga = sample(12, -1, 1, 1), gb = sample(5, -3, 3, 2);
  for (double p : {2.0, 1.0, 3.0, kInf}) {
    Tensor a = with_grad({3, 4}, ga), b = with_grad({5}, gb);
    Tensor none = native::zeros({2}).requires_grad_(true);  // no gradient: ignored
    const double total = ref_norm({ga, gb}, p);
    const double max_norm = total / 4;
    Tensor got = clip_grad_norm_({a, none, b}, max_norm, p);
    EXPECT_EQ(got.dim(), 0);
    EXPECT_NEAR(got.item<double>(), total, 1e-12 * total) << "p = " << p;
    // Scaled by max_norm / (total + 1e-6): the clipped norm is just under max_norm.
    const double coef = max_norm / (total + 1e-6);
    auto va = values(a.grad()), vb = values(b.grad());
    for (size_t i = 0; i < ga.size(); ++i) EXPECT_NEAR(va[i], ga[i] * coef, 1e-14);
    for (size_t i = 0; i < gb.size(); ++i) EXPECT_NEAR(vb[i], gb[i] * coef, 1e-14);
    EXPECT_FALSE(none.grad().defined());
  }
}

TEST(ClipGrad, SmallNormIsLeftAlone) {
  auto g = sample(6, -1, 1, 3);
  Tensor a = with_grad({6}, g);
  Tensor total = clip_grad_norm_({a}, 100.0);
  EXPECT_NEAR(total.item<double>(), ref_norm({g}, 2), 1e-14);
  EXPECT_EQ(values(a.grad()), g);  // coefficient clamped to exactly 1
}

TEST(ClipGrad, Float32NormHasFloat32Dtype) {
  auto g = sample(100, -1, 1, 4);
  Tensor a = with_grad({10, 10}, g, kFloat32);
  Tensor b = with_grad({3}, {1, 2, 2}, kFloat64);
  Tensor total32 = get_total_norm({a.grad()});
  EXPECT_EQ(total32.dtype(), kFloat32);
  EXPECT_NEAR(total32.item<double>(), ref_norm({values(a.grad())}, 2), 1e-5);
  // Mixed dtypes promote, as torch.stack does.
  EXPECT_EQ(get_total_norm({a.grad(), b.grad()}).dtype(), kFloat64);
}

TEST(ClipGrad, EmptyListGivesZero) {
  Tensor total = clip_grad_norm_({}, 1.0);
  EXPECT_EQ(total.item<double>(), 0.0);
  EXPECT_EQ(total.dtype(), kFloat32);
  Tensor no_grad = native::zeros({3}).requires_grad_(true);
  EXPECT_EQ(clip_grad_norm_({no_grad}, 1.0).item<double>(), 0.0);
}

TEST(ClipGrad, NonFiniteNormPropagatesAsTorch) {
  // An infinite element: total inf, coefficient 0, grads 0 except inf * 0 = NaN.
  Tensor a = with_grad({3}, {1, kInf, 2});
  Tensor total = clip_grad_norm_({a}, 1.0);
  EXPECT_EQ(total.item<double>(), kInf);
  auto v = values(a.grad());
  EXPECT_EQ(v[0], 0.0);
  EXPECT_TRUE(std::isnan(v[1]));
  EXPECT_EQ(v[2], 0.0);
  // A NaN element: everything becomes NaN.
  Tensor b = with_grad({3}, {1, kNaN, 2});
  EXPECT_TRUE(std::isnan(clip_grad_norm_({b}, 1.0).item<double>()));
  for (double x : values(b.grad())) EXPECT_TRUE(std::isnan(x));
  // The inf norm sees the infinity too.
  Tensor c = with_grad({3}, {1, kInf, 2});
  EXPECT_EQ(clip_grad_norm_({c}, 1.0, kInf).item<double>(), kInf);
}

TEST(ClipGrad, ErrorIfNonfinite) {
  Tensor a = with_grad({3}, {1, kInf, 2});
  EXPECT_KILN_ERROR(clip_grad_norm_({a}, 1.0, 2.0, true), "The total norm of order 2 for gradients from `parameters` is non-finite");
  // The gradients were not touched.
  auto v = values(a.grad());
  EXPECT_EQ(v[1], kInf);
  Tensor b = with_grad({2}, {kNaN, 1});
  EXPECT_KILN_ERROR(clip_grad_norm_({b}, 1.0, 2.0, true), "non-finite");
  Tensor c = with_grad({2}, {3, 4});
  EXPECT_NEAR(clip_grad_norm_({c}, 1.0, 2.0, true).item<double>(), 5.0, 1e-15);
}

TEST(ClipGrad, ClipValue) {
  Tensor a = with_grad({5}, {-3, -0.5, 0, 0.7, 10});
  Tensor b = with_grad({2}, {kNaN, -kInf}, kFloat32);
  clip_grad_value_({a, b}, 1.0);
  EXPECT_EQ(values(a.grad()), (std::vector<double>{-1, -0.5, 0, 0.7, 1}));
  auto vb = values(b.grad());
  EXPECT_TRUE(std::isnan(vb[0]));
  EXPECT_EQ(vb[1], -1.0);
}

TEST(ClipGrad, DoesNotRecordHistory) {
  Tensor a = native::ones({3}).requires_grad_(true);
  (a * a * a).sum().backward(Tensor(), true, /*create_graph=*/true);
  ASSERT_TRUE(a.grad().requires_grad());
  Tensor total = clip_grad_norm_({a}, 1.0);
  EXPECT_FALSE(total.requires_grad());
}

TEST(ClipGrad, MixedDtypesAndLayoutsInOneCall) {
  // float32 (stored transposed), bfloat16 and float64 gradients: one
  // multi-tensor norm per dtype, the per-tensor norms rounded to their
  // tensors' dtype (as torch._foreach_norm returns them), the total in float64.
  auto g32 = sample(12, -1, 1, 5), g16 = sample(7, -2, 2, 6), g64 = sample(5, -1, 1, 7);
  Tensor a = native::zeros({4, 3}).requires_grad_(true);
  a.set_grad(native::t(make({3, 4}, g32, kFloat32)));
  Tensor b = with_grad({7}, g16, kBFloat16);
  Tensor c = with_grad({5}, g64, kFloat64);
  const auto v32 = values(a.grad()), v16 = values(b.grad());
  const double n32 = static_cast<float>(ref_norm({v32}, 2));
  const double n16 = values(make({1}, {ref_norm({v16}, 2)}, kBFloat16))[0];
  const double total = std::sqrt(n32 * n32 + n16 * n16 + std::pow(ref_norm({g64}, 2), 2));
  const double max_norm = 0.5;
  Tensor got = clip_grad_norm_({a, b, c}, max_norm);
  EXPECT_EQ(got.dtype(), kFloat64);
  EXPECT_NEAR(got.item<double>(), total, 1e-12 * total);
  // Each gradient times the coefficient in its compute type: float for the
  // float32 and bfloat16 ones (rounded once to bfloat16 after), double for float64.
  const double coef = max_norm / (got.item<double>() + 1e-6);
  const float coef32 = static_cast<float>(coef);
  const auto ga = values(a.grad()), gb = values(b.grad()), gc = values(c.grad());
  for (size_t i = 0; i < v32.size(); ++i) EXPECT_EQ(ga[i], static_cast<float>(v32[i] * coef32));
  for (size_t i = 0; i < v16.size(); ++i) {
    EXPECT_EQ(gb[i], values(make({1}, {static_cast<float>(v16[i] * coef32)}, kBFloat16))[0]);
  }
  for (size_t i = 0; i < g64.size(); ++i) EXPECT_EQ(gc[i], g64[i] * coef);
}

TEST(ClipGrad, EmptyGradientTensors) {
  Tensor e = with_grad({0}, {});
  Tensor e2 = with_grad({2, 0}, {}, kFloat32);
  Tensor a = with_grad({2}, {3, 4});
  EXPECT_NEAR(clip_grad_norm_({e, a, e2}, 100.0).item<double>(), 5.0, 1e-15);
  EXPECT_NEAR(clip_grad_norm_({e, a, e2}, 100.0, 1.0).item<double>(), 7.0, 1e-15);
  EXPECT_EQ(values(a.grad()), (std::vector<double>{3, 4}));
  EXPECT_EQ(clip_grad_norm_({e}, 1.0).item<double>(), 0.0);
  // The inf norm of an empty tensor has no identity: an error, as torch.
  EXPECT_KILN_ERROR(clip_grad_norm_({e, a}, 1.0, kInf), "cannot compute the inf norm on an empty tensor");
}

TEST(ClipGrad, ManyGradientsMatchOneBigVector) {
  // 150 gradients of mixed sizes, one of them > 1M elements: the total is
  // the norm of all their elements seen as one vector.
  std::vector<Tensor> grads;
  std::vector<std::vector<double>> gs;
  for (unsigned i = 0; i < 150; ++i) {
    const int64_t n = i == 3 ? (int64_t{1} << 20) + 5 : 1 + (i * 37) % 500;
    gs.push_back(sample(n, -1, 1, 200 + i));
    grads.push_back(make({n}, gs.back()));
  }
  for (double p : {1.0, 2.0, kInf}) {
    const double want = ref_norm(gs, p);
    EXPECT_NEAR(get_total_norm(grads, p).item<double>(), want, 1e-11 * want) << "p = " << p;
  }
}
