// Autocast (kiln/autograd/autocast.h) on the CPU: the guard's state, which
// ops cast to what, that results equal the explicitly cast computation (and
// an independent float64 reference within bf16 rounding), that gradients
// reach f32 parameters in f32, and a small MLP trained step under autocast.
#include <kiln/kiln.h>

#include <cmath>
#include <thread>
#include <vector>

#include "test_util.h"

using namespace kiln;
using kiln::testing::all_close;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;
namespace F = kiln::nn::functional;

namespace {

Tensor f32(IntArrayRef sizes, unsigned seed, double lo = -1.0, double hi = 1.0) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return make(sizes, sample(n, lo, hi, seed), kFloat32);
}

Tensor f32_leaf(IntArrayRef sizes, unsigned seed) { return f32(sizes, seed).requires_grad_(true); }

Tensor bf16(const Tensor& t) { return kiln::to(t, kBFloat16); }

// Exactly equal values (NaN-free here), same shape.
::testing::AssertionResult same_values(const Tensor& a, const Tensor& b) { return all_close(a, b, 0.0, 0.0); }

// Round a double to the nearest bfloat16 (ties to even), via kiln's own
// conversion of a float64 tensor.
std::vector<double> round_bf16(const std::vector<double>& v) {
  return values(native::to(make({static_cast<int64_t>(v.size())}, v), kBFloat16));
}

}  // namespace

TEST(Autocast, GuardSetsAndRestoresPerDeviceType) {
  EXPECT_FALSE(is_autocast_enabled(kCPU));
  EXPECT_FALSE(is_autocast_enabled(kCUDA));
  EXPECT_EQ(get_autocast_dtype(kCPU), kBFloat16);
  EXPECT_EQ(get_autocast_dtype(kCUDA), kBFloat16);
  {
    AutocastGuard outer(kCPU);
    EXPECT_TRUE(is_autocast_enabled(kCPU));
    EXPECT_FALSE(is_autocast_enabled(kCUDA));  // device types are independent
    EXPECT_EQ(get_autocast_dtype(kCPU), kBFloat16);
    {
      autocast inner(kCPU, kFloat16);  // torch's name for the guard
      EXPECT_TRUE(is_autocast_enabled(kCPU));
      EXPECT_EQ(get_autocast_dtype(kCPU), kFloat16);
      {
        AutocastGuard off(kCPU, kBFloat16, /*enabled=*/false);
        EXPECT_FALSE(is_autocast_enabled(kCPU));
        AutocastGuard cuda(kCUDA, kFloat16);
        EXPECT_TRUE(is_autocast_enabled(kCUDA));
        EXPECT_EQ(get_autocast_dtype(kCUDA), kFloat16);
      }
      EXPECT_TRUE(is_autocast_enabled(kCPU));
      EXPECT_EQ(get_autocast_dtype(kCPU), kFloat16);
      EXPECT_FALSE(is_autocast_enabled(kCUDA));
      EXPECT_EQ(get_autocast_dtype(kCUDA), kBFloat16);
    }
    EXPECT_EQ(get_autocast_dtype(kCPU), kBFloat16);
    EXPECT_TRUE(is_autocast_enabled(kCPU));
  }
  EXPECT_FALSE(is_autocast_enabled(kCPU));
}

TEST(Autocast, OnlySixteenBitDtypesAreAccepted) {
  EXPECT_KILN_ERROR(AutocastGuard g(kCPU, kFloat32), "float16 or bfloat16");
  EXPECT_KILN_ERROR(AutocastGuard g(kCPU, kInt64), "float16 or bfloat16");
  EXPECT_FALSE(is_autocast_enabled(kCPU));  // a rejected guard changed nothing
  EXPECT_EQ(get_autocast_dtype(kCPU), kBFloat16);
}

TEST(Autocast, StateIsThreadLocal) {
  const Tensor x = f32({2, 3}, 1), w = f32({4, 3}, 2);
  AutocastGuard guard(kCPU);
  bool other_enabled = true;
  DType other_dtype = kBFloat16;
  std::thread t([&] {
    other_enabled = is_autocast_enabled(kCPU);
    other_dtype = kiln::linear(x, w).dtype();
    AutocastGuard inside(kCPU, kFloat16);  // does not leak into the main thread
  });
  t.join();
  EXPECT_FALSE(other_enabled);
  EXPECT_EQ(other_dtype, kFloat32);
  EXPECT_TRUE(is_autocast_enabled(kCPU));
  EXPECT_EQ(get_autocast_dtype(kCPU), kBFloat16);
}

TEST(Autocast, LinearRunsInBFloat16) {
  const Tensor x = f32({3, 5}, 1), w = f32({4, 5}, 2), b = f32({4}, 3);
  Tensor y;
  {
    AutocastGuard guard(kCPU);
    y = kiln::linear(x, w, b);
  }
  EXPECT_EQ(y.dtype(), kBFloat16);
  EXPECT_TRUE(same_values(y, kiln::linear(bf16(x), bf16(w), bf16(b))));
  // Independent reference: the bf16-rounded operands in float64, rounded once.
  const auto xv = values(bf16(x)), wv = values(bf16(w)), bv = values(bf16(b));
  std::vector<double> ref(12);
  for (int i = 0; i < 3; ++i) {
    for (int o = 0; o < 4; ++o) {
      double acc = bv[o];
      for (int k = 0; k < 5; ++k) acc += xv[i * 5 + k] * wv[o * 5 + k];
      ref[i * 4 + o] = acc;
    }
  }
  EXPECT_TRUE(all_close(y, make({3, 4}, round_bf16(ref)), 1.0 / 256, 0.0));
}

TEST(Autocast, MatrixProductsRunInBFloat16) {
  const Tensor a3 = f32({2, 3, 4}, 1), b3 = f32({2, 4, 5}, 2), m = f32({4, 5}, 3), a2 = f32({3, 4}, 4);
  const Tensor in2 = f32({3, 5}, 5), in3 = f32({2, 3, 5}, 6);
  // Transposed (non-contiguous) operand too.
  const Tensor bt = native::transpose(f32({2, 5, 4}, 7), 1, 2);
  AutocastGuard guard(kCPU);
  struct Case {
    Tensor got, want;
  };
  std::vector<Case> cases = {
      {kiln::matmul(a3, m), kiln::matmul(bf16(a3), bf16(m))},
      {kiln::matmul(a3, bt), kiln::matmul(bf16(a3), bf16(bt))},
      {kiln::bmm(a3, b3), kiln::bmm(bf16(a3), bf16(b3))},
      {kiln::mm(a2, m), kiln::mm(bf16(a2), bf16(m))},
      {kiln::addmm(in2, a2, m), kiln::addmm(bf16(in2), bf16(a2), bf16(m))},
      {kiln::baddbmm(in3, a3, b3), kiln::baddbmm(bf16(in3), bf16(a3), bf16(b3))},
      {a3.matmul(m), kiln::matmul(bf16(a3), bf16(m))},  // Tensor methods go through the same functions
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i].got.dtype(), kBFloat16) << "case " << i;
    EXPECT_TRUE(same_values(cases[i].got, cases[i].want)) << "case " << i;
  }
}

TEST(Autocast, Conv2dRunsInBFloat16) {
  const Tensor x = f32({2, 3, 6, 5}, 1), w = f32({4, 3, 3, 3}, 2), b = f32({4}, 3);
  Tensor y;
  {
    AutocastGuard guard(kCPU);
    y = F::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);
  }
  EXPECT_EQ(y.dtype(), kBFloat16);
  EXPECT_TRUE(same_values(y, F::conv2d(bf16(x), bf16(w), bf16(b), 1, 1)));
  // Independent reference at a few output positions.
  const auto xv = values(bf16(x)), wv = values(bf16(w)), bv = values(bf16(b)), yv = values(y);
  for (int n = 0; n < 2; ++n) {
    for (int o = 0; o < 4; ++o) {
      for (int i = 0; i < 6; i += 5) {
        for (int j = 0; j < 5; j += 2) {
          double acc = bv[o];
          for (int c = 0; c < 3; ++c)
            for (int di = 0; di < 3; ++di)
              for (int dj = 0; dj < 3; ++dj) {
                const int r = i + di - 1, s = j + dj - 1;
                if (r < 0 || r >= 6 || s < 0 || s >= 5) continue;
                acc += xv[((n * 3 + c) * 6 + r) * 5 + s] * wv[((o * 3 + c) * 3 + di) * 3 + dj];
              }
          const double got = yv[((n * 4 + o) * 6 + i) * 5 + j];
          EXPECT_NEAR(got, round_bf16({acc})[0], std::fabs(acc) / 128 + 1e-6);
        }
      }
    }
  }
}

TEST(Autocast, Float16DtypeIsHonoured) {
  const Tensor x = f32({3, 5}, 1), w = f32({4, 5}, 2);
  AutocastGuard guard(kCPU, kFloat16);
  const Tensor y = kiln::linear(x, w);
  EXPECT_EQ(y.dtype(), kFloat16);
  EXPECT_TRUE(same_values(y, kiln::linear(kiln::to(x, kFloat16), kiln::to(w, kFloat16))));
}

TEST(Autocast, Float32ListUpcastsSixteenBitInputs) {
  const Tensor x = bf16(f32({2, 4, 3, 3}, 1, -3, 3));
  const Tensor x32 = kiln::to(x, kFloat32);
  const Tensor w = f32({4}, 2), b = f32({4}, 3), ln_w = f32({3}, 4);
  const Tensor rm = native::zeros({4}, TensorOptions().dtype(kFloat32));
  const Tensor rv = native::ones({4}, TensorOptions().dtype(kFloat32));
  AutocastGuard guard(kCPU);
  const std::vector<std::pair<Tensor, Tensor>> cases = {
      {kiln::softmax(x, 1), kiln::softmax(x32, 1)},
      {kiln::log_softmax(x, -1), kiln::log_softmax(x32, -1)},
      {F::layer_norm(x, {3}, ln_w, bf16(ln_w)), F::layer_norm(x32, {3}, ln_w, kiln::to(bf16(ln_w), kFloat32))},
      {F::group_norm(x, 2, w, b), F::group_norm(x32, 2, w, b)},
      {F::batch_norm(x, Tensor(), Tensor(), w, b, true), F::batch_norm(x32, Tensor(), Tensor(), w, b, true)},
      {F::mse_loss(x, bf16(f32({2, 4, 3, 3}, 5))), F::mse_loss(x32, kiln::to(bf16(f32({2, 4, 3, 3}, 5)), kFloat32))},
      {F::l1_loss(x, x32), F::l1_loss(x32, x32)},
      {F::cross_entropy(x, native::zeros({2, 3, 3}, TensorOptions().dtype(kInt64))),
       F::cross_entropy(x32, native::zeros({2, 3, 3}, TensorOptions().dtype(kInt64)))},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i].first.dtype(), kFloat32) << "case " << i;
    EXPECT_TRUE(same_values(cases[i].first, cases[i].second)) << "case " << i;
  }
  // An explicit dtype wins over autocast, as torch.
  EXPECT_EQ(kiln::softmax(x, 1, kBFloat16).dtype(), kBFloat16);
  // Reductions are not on either list.
  EXPECT_EQ(kiln::sum(x).dtype(), kBFloat16);
  EXPECT_EQ(kiln::mean(x).dtype(), kBFloat16);
  // Running statistics in bf16 (a model converted whole): batch_norm keeps the input's dtype.
  const Tensor rm16 = native::zeros({4}, TensorOptions().dtype(kBFloat16));
  const Tensor rv16 = native::ones({4}, TensorOptions().dtype(kBFloat16));
  EXPECT_EQ(F::batch_norm(x, rm16, rv16, Tensor(), Tensor(), true).dtype(), kBFloat16);
  // f32 running statistics are updated in place through the f32 computation.
  F::batch_norm(x, rm, rv, w, b, true, 0.5);
  EXPECT_NE(values(rm)[0], 0.0);
}

TEST(Autocast, NoEffectWhenDisabledOrFloat64OrOtherDevice) {
  const Tensor x = f32({3, 5}, 1), w = f32({4, 5}, 2);
  {
    AutocastGuard off(kCPU, kBFloat16, /*enabled=*/false);
    EXPECT_EQ(kiln::linear(x, w).dtype(), kFloat32);
  }
  {
    AutocastGuard cuda_only(kCUDA);  // CPU tensors follow CPU autocast, which is off
    EXPECT_EQ(kiln::linear(x, w).dtype(), kFloat32);
    EXPECT_EQ(kiln::softmax(bf16(x), 1).dtype(), kBFloat16);
  }
  AutocastGuard guard(kCPU);
  const Tensor x64 = kiln::to(x, kFloat64), w64 = kiln::to(w, kFloat64);
  const Tensor y = kiln::linear(x64, w64);
  EXPECT_EQ(y.dtype(), kFloat64);
  {
    AutocastGuard off(kCPU, kBFloat16, false);
    EXPECT_TRUE(same_values(y, kiln::linear(x64, w64)));
  }
  EXPECT_EQ(kiln::softmax(x64, 0).dtype(), kFloat64);
  EXPECT_EQ(kiln::softmax(x, 0).dtype(), kFloat32);  // f32 stays f32 on the f32 list
}

TEST(Autocast, GradientsReachFloat32ParametersInFloat32) {
  const Tensor x = f32({3, 5}, 1);
  Tensor w = f32_leaf({4, 5}, 2), b = f32_leaf({4}, 3);
  Tensor y;
  {
    AutocastGuard guard(kCPU);
    y = kiln::linear(x, w, b);
  }
  // Backward outside the region, as torch recommends.
  kiln::sum(y * y).backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_EQ(w.grad().dtype(), kFloat32);
  EXPECT_EQ(b.grad().dtype(), kFloat32);

  // The same graph with the casts written out.
  Tensor w2 = f32_leaf({4, 5}, 2), b2 = f32_leaf({4}, 3);
  const Tensor y2 = kiln::linear(bf16(x), bf16(w2), bf16(b2));
  kiln::sum(y2 * y2).backward();
  EXPECT_TRUE(same_values(w.grad(), w2.grad()));
  EXPECT_TRUE(same_values(b.grad(), b2.grad()));

  // Independent check of the bias gradient: sum over rows of 2*y, each
  // product rounded to bf16 (the gradient flows in bf16 until the cast back).
  const auto yv = values(y);
  std::vector<double> gb(4, 0.0);
  for (int i = 0; i < 3; ++i)
    for (int o = 0; o < 4; ++o) gb[o] += 2 * yv[i * 4 + o];
  EXPECT_TRUE(all_close(b.grad(), make({4}, gb), 1.0 / 64, 1e-3));
}

TEST(Autocast, ConvGradientsReachFloat32Parameters) {
  Tensor x = f32_leaf({1, 2, 5, 5}, 1), w = f32_leaf({3, 2, 3, 3}, 2);
  Tensor x2 = f32_leaf({1, 2, 5, 5}, 1), w2 = f32_leaf({3, 2, 3, 3}, 2);
  {
    AutocastGuard guard(kCPU);
    kiln::sum(F::conv2d(x, w, Tensor())).backward();  // backward inside the region works too
  }
  kiln::sum(F::conv2d(bf16(x2), bf16(w2), Tensor())).backward();
  EXPECT_EQ(w.grad().dtype(), kFloat32);
  EXPECT_EQ(x.grad().dtype(), kFloat32);
  EXPECT_TRUE(same_values(w.grad(), w2.grad()));
  EXPECT_TRUE(same_values(x.grad(), x2.grad()));
}

TEST(Autocast, WeightCastsAreCachedWithinARegion) {
  using autograd::autocast_args;
  using autograd::CastPolicy;
  Tensor w = f32_leaf({4, 5}, 2);
  const Tensor act = f32({4, 5}, 3);  // not a leaf requiring grad: never cached
  Tensor first;
  {
    AutocastGuard guard(kCPU);
    auto cast = autocast_args(CastPolicy::LowerPrecision, {w});
    ASSERT_TRUE(static_cast<bool>(cast));
    first = cast(w);
    EXPECT_EQ(cast(w).impl(), first.impl());
    EXPECT_NE(cast(act).impl(), cast(act).impl());
    {
      AutocastGuard nested(kCPU);
      EXPECT_EQ(autocast_args(CastPolicy::LowerPrecision, {w})(w).impl(), first.impl());
    }
    // An in-place change of the weight makes a fresh cast with the new values.
    {
      NoGradGuard no_grad;
      w.mul_(2.0);
    }
    const Tensor again = cast(w);
    EXPECT_NE(again.impl(), first.impl());
    EXPECT_TRUE(same_values(again, bf16(kiln::detach(w))));
    // Disabling the cache gives a new cast each time.
    AutocastGuard uncached(kCPU, kBFloat16, true, /*cache_enabled=*/false);
    EXPECT_NE(cast(w).impl(), cast(w).impl());
  }
  // Leaving the outermost region drops the cache.
  AutocastGuard guard(kCPU);
  EXPECT_NE(autocast_args(CastPolicy::LowerPrecision, {w})(w).impl(), first.impl());
}

TEST(Autocast, SharedWeightGradientAccumulatesThroughTheCachedCast) {
  const Tensor x1 = f32({2, 5}, 1), x2 = f32({3, 5}, 4);
  Tensor w = f32_leaf({4, 5}, 2), w2 = f32_leaf({4, 5}, 2);
  {
    AutocastGuard guard(kCPU);
    (kiln::sum(kiln::linear(x1, w)) + kiln::sum(kiln::linear(x2, w))).backward();
  }
  const Tensor wb = bf16(w2);
  (kiln::sum(kiln::linear(bf16(x1), wb)) + kiln::sum(kiln::linear(bf16(x2), wb))).backward();
  EXPECT_TRUE(same_values(w.grad(), w2.grad()));
}

TEST(Autocast, SmallMlpLossAndGradientsStayWithinBFloat16Tolerance) {
  const Tensor x = f32({16, 8}, 1, -2, 2);
  const Tensor target = make({16}, {0, 1, 2, 3, 0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 2, 2}, kInt64);
  auto run = [&](bool use_autocast, std::vector<Tensor>& grads) {
    Tensor w1 = f32_leaf({16, 8}, 2), b1 = f32_leaf({16}, 3), w2 = f32_leaf({4, 16}, 4), b2 = f32_leaf({4}, 5);
    Tensor loss;
    {
      AutocastGuard guard(kCPU, kBFloat16, use_autocast);
      const Tensor h = kiln::relu(kiln::linear(x, w1, b1));
      const Tensor logits = kiln::linear(h, w2, b2);
      EXPECT_EQ(logits.dtype(), use_autocast ? kBFloat16 : kFloat32);
      loss = F::cross_entropy(logits, target);
    }
    EXPECT_EQ(loss.dtype(), kFloat32);
    loss.backward();
    grads = {w1.grad(), b1.grad(), w2.grad(), b2.grad()};
    return loss.item<double>();
  };
  std::vector<Tensor> g32, g16;
  const double l32 = run(false, g32);
  const double l16 = run(true, g16);
  EXPECT_NEAR(l16, l32, 2e-2 * std::fabs(l32));
  ASSERT_EQ(g16.size(), g32.size());
  for (size_t i = 0; i < g16.size(); ++i) {
    EXPECT_EQ(g16[i].dtype(), kFloat32);
    // bf16 has an 8-bit significand: a few roundings deep, gradients agree to a few percent of their scale.
    double scale = 0;
    for (double v : values(g32[i])) scale = std::max(scale, std::fabs(v));
    EXPECT_TRUE(all_close(g16[i], g32[i], 0.0, 0.05 * scale)) << "gradient " << i;
  }
}
