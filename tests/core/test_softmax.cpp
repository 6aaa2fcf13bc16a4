// softmax / log_softmax and their backward against float64 loops written
// here (the backward against central differences of sum(g * softmax(x))),
// along every dim, on strided inputs and every floating dtype.
#include <cmath>
#include <limits>

#include "kiln/core/native.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::all_close;
using kiln::testing::make;
using kiln::testing::kInf;
using kiln::testing::kNaN;
using kiln::testing::sample;
using kiln::testing::values;

namespace {



// Row-major element offsets of the line through `base` along `dim`.
std::vector<int64_t> line(IntArrayRef shape, int64_t dim, int64_t base) {
  int64_t stride = 1;
  for (size_t d = dim + 1; d < shape.size(); ++d) stride *= shape[d];
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < shape[dim]; ++i) idx.push_back(base + i * stride);
  return idx;
}

// Calls f(offsets) once per line along dim.
template <typename F>
void for_each_line(IntArrayRef shape, int64_t dim, F f) {
  int64_t inner = 1, outer = 1;
  for (size_t d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
  for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) f(line(shape, dim, o * shape[dim] * inner + i));
}

std::vector<double> ref_softmax(const std::vector<double>& x, IntArrayRef shape, int64_t dim, bool log) {
  std::vector<double> y(x.size());
  for_each_line(shape, dim, [&](const std::vector<int64_t>& idx) {
    double m = -kInf, s = 0;
    for (int64_t k : idx) m = std::max(m, x[k]);
    for (int64_t k : idx) s += std::exp(x[k] - m);
    for (int64_t k : idx) y[k] = log ? x[k] - m - std::log(s) : std::exp(x[k] - m) / s;
  });
  return y;
}

Tensor ref(const Tensor& x, int64_t dim, bool log) {
  return make(x.sizes(), ref_softmax(values(x), x.sizes(), dim, log));
}

}  // namespace

TEST(Softmax, EveryDimAndLayoutMatchesFloat64Loop) {
  Tensor base = make({3, 4, 5}, sample(60, -3, 3, 1));
  Tensor perm = native::permute(make({5, 3, 4}, sample(60, -3, 3, 2)), {1, 2, 0});
  Tensor sliced = native::slice(make({3, 8, 5}, sample(120, -3, 3, 3)), 1, 0, 8, 2);
  for (const Tensor& x : {base, perm, sliced}) {
    for (int64_t dim = -3; dim < 3; ++dim) {
      const int64_t d = dim < 0 ? dim + 3 : dim;
      for (bool log : {false, true}) {
        Tensor y = log ? native::log_softmax(x, dim) : native::softmax(x, dim);
        EXPECT_EQ(y.dtype(), kFloat64);
        EXPECT_TRUE(all_close(y, ref(x, d, log), 1e-12, 1e-14)) << "dim " << dim << " log " << log;
      }
    }
  }
}

TEST(Softmax, ReducedPrecisionComputesInFloat) {
  for (DType d : {kFloat32, kFloat16, kBFloat16}) {
    const double tol = d == kFloat32 ? 1e-6 : d == kFloat16 ? 1e-3 : 8e-3;
    Tensor x = make({6, 33}, sample(198, -4, 4, 7), d);
    for (int64_t dim : {0, 1}) {
      Tensor y = native::softmax(x, dim);
      EXPECT_EQ(y.dtype(), d);
      EXPECT_TRUE(all_close(y, ref(x, dim, false), tol, tol * 1e-2));
      Tensor l = native::log_softmax(x, dim);
      EXPECT_TRUE(all_close(l, ref(x, dim, true), tol, tol));
    }
  }
  // dtype converts first: float32 in, float64 out.
  Tensor x = make({2, 3}, sample(6, -1, 1, 8), kFloat32);
  Tensor y = native::softmax(x, 1, kFloat64);
  EXPECT_EQ(y.dtype(), kFloat64);
  EXPECT_TRUE(all_close(y, ref(x, 1, false), 1e-12));
  Tensor i = make({3}, {1, 2, 3}, kInt64);
  EXPECT_KILN_ERROR(native::softmax(i, 0), "floating point");
  EXPECT_TRUE(all_close(native::log_softmax(i, 0, kFloat32), ref(i, 0, true), 1e-6));
}

TEST(Softmax, StableWithLargeAndInfiniteValues) {
  Tensor x = make({3, 3}, {1000, 1001, 1002, -1000, -kInf, -999, -kInf, -kInf, -kInf});
  auto y = values(native::softmax(x, 1));
  const double z = 1 + std::exp(1.0) + std::exp(2.0);
  EXPECT_NEAR(y[0], 1 / z, 1e-15);
  EXPECT_NEAR(y[2], std::exp(2.0) / z, 1e-15);
  EXPECT_EQ(y[4], 0);  // a masked entry
  EXPECT_NEAR(y[5], 1 / (1 + std::exp(-1.0)), 1e-15);
  EXPECT_TRUE(std::isnan(y[6]) && std::isnan(y[7]));  // a fully masked row is NaN, as torch
  auto l = values(native::log_softmax(x, 1));
  EXPECT_NEAR(l[2], 2 - std::log(z), 1e-12);
  EXPECT_EQ(l[4], -kInf);
  EXPECT_TRUE(std::isnan(values(native::softmax(make({3}, {1, std::nan(""), 2}), 0))[0]));
}

TEST(Softmax, ZeroDimEmptyAndWide) {
  Tensor s = native::scalar_tensor(3.0, dtype(kFloat64));
  EXPECT_EQ(native::softmax(s, 0).item<double>(), 1);
  EXPECT_EQ(native::log_softmax(s, -1).item<double>(), 0);
  EXPECT_EQ(native::softmax(native::zeros({0, 4}), 1).sizes(), IntArrayRef({0, 4}));
  EXPECT_KILN_ERROR(native::softmax(native::zeros({2, 2}), 2), "out of range");
  // Many long rows: the threaded path.
  Tensor w = make({64, 1000}, sample(64000, -5, 5, 9), kFloat32);
  EXPECT_TRUE(all_close(native::softmax(w, 1), ref(w, 1, false), 1e-6, 1e-9));
  EXPECT_TRUE(all_close(native::softmax(w, 0), ref(w, 0, false), 1e-6, 1e-9));
  // Lines longer than one partial-sum block, along a non-innermost dim.
  Tensor tall = make({1100, 20}, sample(22000, -5, 5, 10), kFloat32);
  EXPECT_TRUE(all_close(native::softmax(tall, 0), ref(tall, 0, false), 1e-6, 1e-9));
  EXPECT_TRUE(all_close(native::log_softmax(tall, 0), ref(tall, 0, true), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(native::softmax(native::transpose(tall, 0, 1), 1), native::transpose(ref(tall, 0, false), 0, 1),
                        1e-6, 1e-9));
}

TEST(SoftmaxBackward, MatchesCentralDifferences) {
  const std::vector<int64_t> shape = {3, 5, 4};
  const auto xv = sample(60, -2, 2, 11), gv = sample(60, -1, 1, 12);
  for (int64_t dim : {1, 2}) {
    for (bool log : {false, true}) {
      // d/dx_j sum_i g_i f(x)_i by central differences of the float64 reference.
      std::vector<double> expect(60);
      const double h = 1e-6;
      for (int64_t j = 0; j < 60; ++j) {
        auto xp = xv, xm = xv;
        xp[j] += h;
        xm[j] -= h;
        const auto yp = ref_softmax(xp, shape, dim, log), ym = ref_softmax(xm, shape, dim, log);
        double lp = 0, lm = 0;
        for (int64_t i = 0; i < 60; ++i) {
          lp += gv[i] * yp[i];
          lm += gv[i] * ym[i];
        }
        expect[j] = (lp - lm) / (2 * h);
      }
      Tensor x = make(shape, xv), g = make(shape, gv);
      Tensor y = log ? native::log_softmax(x, dim) : native::softmax(x, dim);
      Tensor gi = native::softmax_backward(g, y, dim, log);
      EXPECT_TRUE(all_close(gi, make(shape, expect), 1e-6, 1e-8)) << "dim " << dim << " log " << log;
      // A transposed grad (strided lines) and float32 give the same.
      Tensor gt = native::transpose(native::contiguous(native::transpose(g, 0, 2)), 0, 2);
      EXPECT_TRUE(all_close(native::softmax_backward(gt, y, dim, log), gi, 1e-12));
      Tensor y32 = native::to(y, kFloat32);
      Tensor gi32 = native::softmax_backward(native::to(g, kFloat32), y32, dim, log);
      EXPECT_EQ(gi32.dtype(), kFloat32);
      EXPECT_TRUE(all_close(gi32, gi, 1e-5, 1e-6));
      Tensor gi16 = native::softmax_backward(native::to(g, kBFloat16), native::to(y, kBFloat16), dim, log);
      EXPECT_TRUE(all_close(gi16, gi, 0.05, 0.02));
    }
  }
  EXPECT_KILN_ERROR(native::softmax_backward(native::zeros({2, 3}), native::zeros({3, 2}), 1, false), "[2, 3]");
}
