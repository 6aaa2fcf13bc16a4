// kiln::optim::SGD against torch.optim.SGD's update written out again here
// in float64 (momentum, dampening, Nesterov, weight decay, maximize,
// several groups), and bit for bit against the same sequence of
// fused-multiply-add operations torch's CPU kernels perform in float32.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>
#include <utility>
#include <vector>

#include "test_util.h"

using namespace kiln;
using kiln::optim::ParamGroup;
using kiln::optim::SGD;
using kiln::optim::SGDOptions;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

// One parameter's trajectory under torch's SGD, in double.
struct RefSGD {
  explicit RefSGD(std::vector<double> p0) : p(std::move(p0)) {}
  std::vector<double> p, buf;
  bool has_buf = false;

  void step(const std::vector<double>& g, const SGDOptions& o) {
    std::vector<double> d(g.size());
    for (size_t i = 0; i < g.size(); ++i) {
      d[i] = o.maximize ? -g[i] : g[i];
      if (o.weight_decay != 0) d[i] += o.weight_decay * p[i];
    }
    if (o.momentum != 0) {
      if (!has_buf) {
        buf = d;  // the first step copies the gradient, no dampening
        has_buf = true;
      } else {
        for (size_t i = 0; i < d.size(); ++i) buf[i] = o.momentum * buf[i] + (1 - o.dampening) * d[i];
      }
      for (size_t i = 0; i < d.size(); ++i) d[i] = o.nesterov ? d[i] + o.momentum * buf[i] : buf[i];
    }
    for (size_t i = 0; i < d.size(); ++i) p[i] -= o.lr * d[i];
  }
};

Tensor param(const std::vector<double>& v, DType dtype, IntArrayRef sizes = {}) {
  std::vector<int64_t> shape = sizes.empty() ? std::vector<int64_t>{static_cast<int64_t>(v.size())}
                                             : std::vector<int64_t>(sizes.begin(), sizes.end());
  return make(shape, v, dtype).requires_grad_(true);
}

void set_grad(const Tensor& p, const std::vector<double>& g) { p.set_grad(make(p.sizes(), g, p.dtype())); }

std::vector<double> grad_at(int step, int64_t n, unsigned salt = 0) { return sample(n, -1.0, 1.0, 100 + step + salt); }

void expect_near_all(const std::vector<double>& actual, const std::vector<double>& expected, double rtol) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i], rtol * (1 + std::fabs(expected[i]))) << "element " << i;
}

// Runs `steps` updates of kiln's SGD and the reference on the same data.
void check_against_reference(const SGDOptions& o, DType dtype, double rtol, int steps = 5) {
  const int64_t n = 37;
  const std::vector<double> p0 = sample(n, -2.0, 2.0, 7);
  Tensor p = param(p0, dtype);
  SGD opt({p}, o);
  RefSGD ref(values(p));  // start from the values as rounded to dtype
  for (int s = 0; s < steps; ++s) {
    std::vector<double> g = values(make({n}, grad_at(s, n), dtype));
    set_grad(p, g);
    opt.step();
    ref.step(g, o);
  }
  expect_near_all(values(p), ref.p, rtol);
  if (o.momentum != 0) {
    ASSERT_NE(opt.state(p), nullptr);
    expect_near_all(values(opt.state(p)->at("momentum_buffer")), ref.buf, rtol);
  } else {
    EXPECT_EQ(opt.state(p), nullptr);  // torch keeps no state without momentum
  }
}

}  // namespace

TEST(OptimSGD, PlainMatchesReference) {
  check_against_reference({.lr = 0.1}, kFloat64, 1e-14);
  check_against_reference({.lr = 0.1}, kFloat32, 1e-6);
}

TEST(OptimSGD, MomentumMatchesReference) {
  check_against_reference({.lr = 0.05, .momentum = 0.9}, kFloat64, 1e-14);
  check_against_reference({.lr = 0.05, .momentum = 0.9}, kFloat32, 1e-6);
}

TEST(OptimSGD, DampeningAndWeightDecayMatchReference) {
  const SGDOptions o{.lr = 0.07, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.02};
  check_against_reference(o, kFloat64, 1e-14);
  check_against_reference(o, kFloat32, 1e-6);
}

TEST(OptimSGD, NesterovMatchesReference) {
  const SGDOptions o{.lr = 0.03, .momentum = 0.95, .weight_decay = 1e-3, .nesterov = true};
  check_against_reference(o, kFloat64, 1e-14);
  check_against_reference(o, kFloat32, 1e-6);
}

TEST(OptimSGD, MaximizeMatchesReference) {
  const SGDOptions o{.lr = 0.1, .momentum = 0.5, .weight_decay = 0.1, .maximize = true};
  check_against_reference(o, kFloat64, 1e-14);
}

TEST(OptimSGD, WeightDecayWithoutMomentum) {
  check_against_reference({.lr = 0.2, .weight_decay = 0.5}, kFloat64, 1e-14);
}

TEST(OptimSGD, HalfAndBFloat16ParamsFollowTheFloatUpdate) {
  // 16-bit parameters round after every op; against the float64 reference
  // that is within a few of their ulps after a couple of steps.
  const SGDOptions o{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01};
  check_against_reference(o, kFloat16, 4e-3, 3);
  check_against_reference(o, kBFloat16, 3e-2, 3);
}

TEST(OptimSGD, GroupsUseTheirOwnOptions) {
  Tensor a = param(sample(6, -1, 1, 1), kFloat64);
  Tensor b = param(sample(4, -1, 1, 2), kFloat64);
  SGD opt({ParamGroup({a}), ParamGroup({b}, {{"lr", 0.5}, {"momentum", 0.0}})}, {.lr = 0.1, .momentum = 0.9});
  EXPECT_EQ(opt.param_groups()[0].lr(), 0.1);
  EXPECT_EQ(opt.param_groups()[0].get("momentum"), 0.9);
  EXPECT_EQ(opt.param_groups()[1].lr(), 0.5);
  EXPECT_EQ(opt.param_groups()[1].get("momentum"), 0.0);
  RefSGD ra(values(a)), rb(values(b));
  for (int s = 0; s < 4; ++s) {
    auto ga = grad_at(s, 6), gb = grad_at(s, 4, 50);
    set_grad(a, ga);
    set_grad(b, gb);
    opt.step();
    ra.step(ga, {.lr = 0.1, .momentum = 0.9});
    rb.step(gb, {.lr = 0.5});
  }
  expect_near_all(values(a), ra.p, 1e-14);
  expect_near_all(values(b), rb.p, 1e-14);
}

TEST(OptimSGD, ParametersWithoutGradAreSkipped) {
  Tensor a = param({1, 2, 3}, kFloat64);
  Tensor b = param({4, 5}, kFloat64);
  SGD opt({a, b}, {.lr = 0.1, .momentum = 0.9});
  set_grad(a, {1, 1, 1});
  opt.step();
  EXPECT_EQ(values(b), (std::vector<double>{4, 5}));
  EXPECT_EQ(opt.state(b), nullptr);
  ASSERT_NE(opt.state(a), nullptr);
  expect_near_all(values(a), {0.9, 1.9, 2.9}, 1e-15);
}

TEST(OptimSGD, StridedParameterIsUpdatedInPlace) {
  // A transposed view as the parameter: the update must land in its storage.
  Tensor storage = make({4, 3}, sample(12, -1, 1, 3));
  Tensor p = native::t(storage).requires_grad_(true);  // [3, 4], column-major
  const std::vector<double> before = values(p);
  const std::vector<double> g = sample(12, -1, 1, 4);
  set_grad(p, g);
  const uint32_t version = p._version();
  SGD opt({p}, {.lr = 0.25, .momentum = 0.5});
  opt.step();
  std::vector<double> expected(12);
  for (size_t i = 0; i < 12; ++i) expected[i] = before[i] - 0.25 * g[i];
  expect_near_all(values(p), expected, 1e-15);
  EXPECT_GT(p._version(), version);  // an in-place write, visible to autograd
  // The view and its storage agree: storage[j][i] == p[i][j].
  const std::vector<double> s = values(storage);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(s[j * 3 + i], expected[i * 4 + j]);
}

TEST(OptimSGD, Float32IsBitExactWithTorchOpSequence) {
  // Torch's CPU kernels (AVX2/AVX-512) round add(alpha=) once through an FMA.
  // Large enough to run on several threads.
  const int64_t n = 100003;
  const SGDOptions o{.lr = 0.01, .momentum = 0.9, .dampening = 0.1, .weight_decay = 1e-4, .nesterov = false};
  std::vector<float> p(n), buf(n);
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(std::sin(0.001 * static_cast<double>(i)));
  Tensor tp = make({n}, std::vector<double>(p.begin(), p.end()), kFloat32).requires_grad_(true);
  SGD opt({tp}, o);
  const float wd = static_cast<float>(o.weight_decay), mom = static_cast<float>(o.momentum);
  const float keep = static_cast<float>(1 - o.dampening), neg_lr = static_cast<float>(-o.lr);
  for (int s = 0; s < 3; ++s) {
    std::vector<double> gd(n);
    for (int64_t i = 0; i < n; ++i) gd[i] = std::cos(0.37 * static_cast<double>(i) + s);
    set_grad(tp, gd);
    opt.step();
    for (int64_t i = 0; i < n; ++i) {
      float d = std::fma(wd, p[i], static_cast<float>(gd[i]));
      buf[i] = s == 0 ? d : std::fma(keep, d, buf[i] * mom);
      p[i] = std::fma(neg_lr, buf[i], p[i]);
    }
  }
  const float* got = tp.data_ptr<float>();
  int64_t mismatches = 0;
  for (int64_t i = 0; i < n; ++i) mismatches += got[i] != p[i];
  EXPECT_EQ(mismatches, 0);
}

TEST(OptimSGD, InvalidOptionsAreErrors) {
  Tensor p = param({1, 2}, kFloat64);
  EXPECT_KILN_ERROR(SGD({p}, {.lr = -1}), "Invalid learning rate");
  EXPECT_KILN_ERROR(SGD({p}, {.momentum = -0.1}), "Invalid momentum value");
  EXPECT_KILN_ERROR(SGD({p}, {.weight_decay = -0.1}), "Invalid weight_decay value");
  EXPECT_KILN_ERROR(SGD({p}, {.nesterov = true}), "Nesterov momentum requires a momentum and zero dampening");
  EXPECT_KILN_ERROR(SGD({p}, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}), "zero dampening");
  EXPECT_KILN_ERROR(SGD(std::vector<Tensor>{}), "optimizer got an empty parameter list");
}
