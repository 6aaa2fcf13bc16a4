// Layers without parameters: Dropout, DropPath, pooling, activations,
// Identity, Flatten. Forwards against closed forms or float64 loops here,
// train/eval behaviour, reprs as PyTorch's, and errors.
#include <kiln/kiln.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "nn/stats_util.h"
#include "test_util.h"

using namespace kiln;
using namespace kiln::nn;
using kiln::testing::all_close;
using kiln::testing::expect_frequency;
using kiln::testing::make;
using kiln::testing::reference;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

std::string str(const Module& m) {
  std::ostringstream os;
  os << m;
  return os.str();
}

// Pools each k x k window (stride s, no padding) of [C, H, W] with `reduce`.
std::vector<double> ref_pool(const std::vector<double>& x, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s,
                             bool max, int64_t& ho, int64_t& wo) {
  ho = (h - k) / s + 1;
  wo = (w - k) / s + 1;
  std::vector<double> y;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        double acc = max ? -std::numeric_limits<double>::infinity() : 0.0;
        for (int64_t u = 0; u < k; ++u)
          for (int64_t v = 0; v < k; ++v) {
            const double e = x[(ch * h + i * s + u) * w + j * s + v];
            acc = max ? std::max(acc, e) : acc + e;
          }
        y.push_back(max ? acc : acc / double(k * k));
      }
  return y;
}

}  // namespace

// ---- Dropout, DropPath ----

TEST(DropoutLayer, TrainDropsAndScalesEvalIsIdentity) {
  Dropout drop(0.3);
  EXPECT_EQ(str(*drop), "Dropout(p=0.3)");
  EXPECT_EQ(str(*Dropout()), "Dropout(p=0.5)");
  EXPECT_TRUE(drop->named_parameters().empty());
  Tensor x = kiln::ones({200000}, kFloat64);
  Tensor y = drop(x);
  auto v = values(y);
  double zeros = 0;
  for (double e : v) {
    ASSERT_TRUE(e == 0.0 || std::fabs(e - 1.0 / 0.7) < 1e-12) << e;
    zeros += e == 0.0;
  }
  expect_frequency(zeros / double(v.size()), 0.3, double(v.size()), "dropped fraction");
  drop->eval();
  EXPECT_EQ(values(drop(x)), values(x));
  EXPECT_KILN_ERROR(Dropout(1.5), "between 0 and 1");
  EXPECT_KILN_ERROR(Dropout(-0.1), "between 0 and 1");
}

TEST(DropPathLayer, DropsWholeSamplesInTraining) {
  DropPath dp(0.25);
  EXPECT_EQ(str(*dp), "DropPath(drop_prob=0.250)");
  EXPECT_EQ(str(*DropPath()), "DropPath(drop_prob=0.000)");
  const int64_t n = 20000, d = 3;
  Tensor x = kiln::ones({n, d}, kFloat64);
  auto v = values(dp(x));
  double dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double first = v[i * d];
    ASSERT_TRUE(first == 0.0 || std::fabs(first - 1.0 / 0.75) < 1e-12) << first;
    for (int64_t k = 1; k < d; ++k) ASSERT_EQ(v[i * d + k], first);  // one draw per sample
    dropped += first == 0.0;
  }
  expect_frequency(dropped / double(n), 0.25, double(n), "dropped samples");
  dp->eval();
  EXPECT_EQ(values(dp(x)), values(x));
  DropPath no_scale(DropPathOptions(0.5).scale_by_keep(false));
  auto ns = values(no_scale(x));
  for (double e : ns) ASSERT_TRUE(e == 0.0 || e == 1.0);
  EXPECT_KILN_ERROR(DropPath(2.0), "between 0 and 1");
}

// ---- Pooling ----

TEST(PoolingLayers, ForwardAgainstWindowLoops) {
  const int64_t c = 2, h = 6, w = 7;
  const auto xv = sample(c * h * w, -1, 1, 8);
  Tensor x = make({1, c, h, w}, xv);
  int64_t ho = 0, wo = 0;
  MaxPool2d mp(MaxPool2dOptions(3).stride(2));
  auto ref = ref_pool(xv, c, h, w, 3, 2, true, ho, wo);
  EXPECT_TRUE(all_close(mp(x), make({1, c, ho, wo}, ref), 0, 0));
  AvgPool2d ap(2);
  ref = ref_pool(xv, c, h, w, 2, 2, false, ho, wo);
  EXPECT_TRUE(all_close(ap(x), make({1, c, ho, wo}, ref), 1e-12, 1e-14));
  // Adaptive pooling to 1 x 1 is the plane mean.
  AdaptiveAvgPool2d gap(1);
  std::vector<double> means(c, 0.0);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t k = 0; k < h * w; ++k) means[ch] += xv[ch * h * w + k];
    means[ch] /= double(h * w);
  }
  EXPECT_TRUE(all_close(gap(x), make({1, c, 1, 1}, means), 1e-12, 1e-14));
  // Adaptive to the window grid a regular pool uses (6 x 7 -> 3 x 7 with 2 x 1 bins).
  AdaptiveAvgPool2d ad(AdaptiveAvgPool2dOptions({3, 7}));
  std::vector<double> bins;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 7; ++j) bins.push_back((xv[(ch * h + 2 * i) * w + j] + xv[(ch * h + 2 * i + 1) * w + j]) / 2);
  EXPECT_TRUE(all_close(ad(x), make({1, c, 3, 7}, bins), 1e-12, 1e-14));
}

TEST(PoolingLayers, ReprAndErrors) {
  EXPECT_EQ(str(*MaxPool2d(MaxPool2dOptions(3).stride(2).padding(1))),
            "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=false)");
  EXPECT_EQ(str(*MaxPool2d(2)), "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=false)");
  EXPECT_EQ(str(*AvgPool2d(2)), "AvgPool2d(kernel_size=2, stride=2, padding=0)");
  EXPECT_EQ(str(*AvgPool2d(AvgPool2dOptions({2, 3}).stride(1))), "AvgPool2d(kernel_size=(2, 3), stride=1, padding=0)");
  EXPECT_EQ(str(*AdaptiveAvgPool2d(1)), "AdaptiveAvgPool2d(output_size=1)");
  EXPECT_EQ(str(*AdaptiveAvgPool2d(AdaptiveAvgPool2dOptions({2, 3}))), "AdaptiveAvgPool2d(output_size=(2, 3))");
  EXPECT_KILN_ERROR(MaxPool2d(0), "kernel_size must be positive");
  EXPECT_KILN_ERROR(AvgPool2d(AvgPool2dOptions(2).stride(0)), "stride must be positive");
  EXPECT_KILN_ERROR(AdaptiveAvgPool2d(0), "output_size must be positive");
}

// ---- Activations ----

TEST(ActivationLayers, ClosedForms) {
  const auto xv = sample(50, -4, 4, 3);
  Tensor x = make({5, 10}, xv);
  EXPECT_TRUE(all_close(ReLU()(x), reference(x, [](double v) { return v > 0 ? v : 0.0; }), 0, 0));
  EXPECT_TRUE(all_close(Tanh()(x), reference(x, [](double v) { return std::tanh(v); }), 1e-14, 1e-15));
  EXPECT_TRUE(
      all_close(Sigmoid()(x), reference(x, [](double v) { return 1 / (1 + std::exp(-v)); }), 1e-14, 1e-15));
  EXPECT_TRUE(all_close(SiLU()(x), reference(x, [](double v) { return v / (1 + std::exp(-v)); }), 1e-14, 1e-15));
  EXPECT_TRUE(all_close(GELU()(x), reference(x, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }),
                        1e-14, 1e-15));
  EXPECT_TRUE(all_close(GELU("tanh")(x), reference(x, [](double v) {
                          const double k = std::sqrt(2.0 / M_PI);
                          return 0.5 * v * (1 + std::tanh(k * (v + 0.044715 * v * v * v)));
                        }),
                        1e-14, 1e-15));
  // Softmax along dim 1 (rows sum to one) and LogSoftmax as its log.
  std::vector<double> sm(xv.size());
  for (int r = 0; r < 5; ++r) {
    double s = 0;
    for (int k = 0; k < 10; ++k) s += std::exp(xv[r * 10 + k]);
    for (int k = 0; k < 10; ++k) sm[r * 10 + k] = std::exp(xv[r * 10 + k]) / s;
  }
  EXPECT_TRUE(all_close(Softmax(1)(x), make({5, 10}, sm), 1e-13, 1e-15));
  std::vector<double> lsm(sm.size());
  for (size_t i = 0; i < sm.size(); ++i) lsm[i] = std::log(sm[i]);
  EXPECT_TRUE(all_close(LogSoftmax(-1)(x), make({5, 10}, lsm), 1e-13, 1e-13));
  EXPECT_EQ(Softmax(0)(make({2}, {1, 2}, kFloat32), kFloat64).dtype(), kFloat64);
}

TEST(ActivationLayers, Repr) {
  EXPECT_EQ(str(*ReLU()), "ReLU()");
  EXPECT_EQ(str(*GELU()), "GELU(approximate='none')");
  EXPECT_EQ(str(*GELU(GELUOptions("tanh"))), "GELU(approximate='tanh')");
  EXPECT_EQ(str(*SiLU()), "SiLU()");
  EXPECT_EQ(str(*Tanh()), "Tanh()");
  EXPECT_EQ(str(*Sigmoid()), "Sigmoid()");
  EXPECT_EQ(str(*Softmax(-1)), "Softmax(dim=-1)");
  EXPECT_EQ(str(*LogSoftmax(1)), "LogSoftmax(dim=1)");
  EXPECT_KILN_ERROR(GELU("fast"), "approximate must be 'none' or 'tanh'");
}

// ---- Identity, Flatten ----

TEST(ShapeLayers, IdentityAndFlatten) {
  Tensor x = make({2, 3, 4}, sample(24, -1, 1, 1));
  Identity id;
  EXPECT_TRUE(id(x).is_same(x));
  EXPECT_EQ(str(*id), "Identity()");
  Flatten flat;
  EXPECT_EQ(flat(x).sizes(), IntArrayRef({2, 12}));
  EXPECT_EQ(values(flat(x)), values(x));
  EXPECT_EQ(str(*flat), "Flatten(start_dim=1, end_dim=-1)");
  Flatten all(FlattenOptions().start_dim(0));
  EXPECT_EQ(all(x).sizes(), IntArrayRef({24}));
  EXPECT_EQ(Flatten(FlattenOptions().start_dim(0).end_dim(1))(x).sizes(), IntArrayRef({6, 4}));
}
