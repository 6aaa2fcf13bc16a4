// max_pool2d / avg_pool2d / adaptive_avg_pool2d and their backward maps
// against float64 loops written here from torch's definitions (windows
// enumerated tap by tap, output sizes by counting windows), over odd sizes,
// padding, dilation, ceil_mode, strided inputs, unbatched inputs and every
// floating dtype; plus torch's tie/NaN rules and errors.
#include <cmath>
#include <limits>
#include <vector>

#include "kiln/core/native.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::all_close;
using kiln::testing::kInf;
using kiln::testing::kNaN;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

struct Cfg {
  int64_t h, w, kh, kw, sh, sw, ph, pw, dh, dw;
  bool ceil;
};

// Windows along one dim, counted from their definition: a window starts at
// o * s - p in input coordinates and spans (k - 1) d + 1; without ceil_mode
// it must end inside the padded input; with ceil_mode it may hang over the
// end by less than a stride but must start before the input's end.
int64_t count_windows(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil) {
  const int64_t span = (k - 1) * d + 1;
  int64_t n = 0;
  for (int64_t o = 0;; ++o) {
    const int64_t start = o * s - p;  // in input coordinates
    const int64_t end = start + span;  // exclusive
    const bool fits = end <= in + p;
    const bool ceil_ok = ceil && end - (in + p) < s && start < in;
    if (!(fits || ceil_ok)) break;
    ++n;
  }
  return n;
}

struct Shape4 {
  int64_t n, c, h, w;
};

// Reference max pooling on float64 values of a [N, C, H, W] tensor.
void ref_max(const std::vector<double>& x, Shape4 s, const Cfg& g, std::vector<double>& y, std::vector<int64_t>& idx,
             int64_t& oh, int64_t& ow) {
  oh = count_windows(s.h, g.kh, g.sh, g.ph, g.dh, g.ceil);
  ow = count_windows(s.w, g.kw, g.sw, g.pw, g.dw, g.ceil);
  y.assign(s.n * s.c * oh * ow, 0);
  idx.assign(y.size(), 0);
  for (int64_t pl = 0; pl < s.n * s.c; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        std::vector<std::pair<double, int64_t>> taps;  // row-major window order
        for (int64_t a = 0; a < g.kh; ++a)
          for (int64_t b = 0; b < g.kw; ++b) {
            const int64_t hh = i * g.sh - g.ph + a * g.dh, ww = j * g.sw - g.pw + b * g.dw;
            if (hh >= 0 && hh < s.h && ww >= 0 && ww < s.w)
              taps.push_back({x[pl * s.h * s.w + hh * s.w + ww], hh * s.w + ww});
          }
        double best = -kInf;
        int64_t at = -1;
        bool nan = false;
        for (auto& [v, k] : taps) {
          if (std::isnan(v)) {  // any NaN wins; the last one's index
            nan = true;
            at = k;
          }
        }
        if (!nan) {
          for (auto& [v, k] : taps) best = std::max(best, v);
          for (auto& [v, k] : taps)
            if (v == best) {
              at = k;
              break;
            }
        }
        const int64_t o = pl * oh * ow + i * ow + j;
        y[o] = nan ? kNaN : best;
        idx[o] = at;
      }
}

// Reference average pooling; `divisor` as torch: override, else the window
// clipped to the padded input (count_include_pad) or to the input.
std::vector<double> ref_avg(const std::vector<double>& x, Shape4 s, const Cfg& g, bool include_pad, int64_t divisor,
                            int64_t& oh, int64_t& ow) {
  oh = count_windows(s.h, g.kh, g.sh, g.ph, 1, g.ceil);
  ow = count_windows(s.w, g.kw, g.sw, g.pw, 1, g.ceil);
  std::vector<double> y(s.n * s.c * oh * ow, 0);
  for (int64_t pl = 0; pl < s.n * s.c; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        double sum = 0;
        int64_t inside = 0, padded = 0;
        for (int64_t a = 0; a < g.kh; ++a)
          for (int64_t b = 0; b < g.kw; ++b) {
            const int64_t hh = i * g.sh - g.ph + a, ww = j * g.sw - g.pw + b;
            if (hh >= -g.ph && hh < s.h + g.ph && ww >= -g.pw && ww < s.w + g.pw) ++padded;
            if (hh >= 0 && hh < s.h && ww >= 0 && ww < s.w) {
              ++inside;
              sum += x[pl * s.h * s.w + hh * s.w + ww];
            }
          }
        const double div = divisor != 0 ? divisor : include_pad ? padded : inside;
        y[pl * oh * ow + i * ow + j] = inside == 0 ? 0.0 : sum / div;
      }
  return y;
}

std::vector<double> ref_adaptive(const std::vector<double>& x, Shape4 s, int64_t oh, int64_t ow) {
  std::vector<double> y(s.n * s.c * oh * ow, 0);
  for (int64_t pl = 0; pl < s.n * s.c; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const auto h0 = static_cast<int64_t>(std::floor(double(i) * s.h / oh));
        const auto h1 = static_cast<int64_t>(std::ceil(double(i + 1) * s.h / oh));
        const auto w0 = static_cast<int64_t>(std::floor(double(j) * s.w / ow));
        const auto w1 = static_cast<int64_t>(std::ceil(double(j + 1) * s.w / ow));
        double sum = 0;
        for (int64_t a = h0; a < h1; ++a)
          for (int64_t b = w0; b < w1; ++b) sum += x[pl * s.h * s.w + a * s.w + b];
        y[pl * oh * ow + i * ow + j] = sum / double((h1 - h0) * (w1 - w0));
      }
  return y;
}

double tol_for(DType d) {
  switch (d) {
    case kFloat64: return 1e-12;
    case kFloat32: return 2e-6;
    case kFloat16: return 2e-3;
    default: return 1e-2;
  }
}

// A [N, C, H, W] tensor of dtype d whose memory is [N, H, W, C] (channels last).
Tensor channels_last(Shape4 s, DType d, unsigned seed) {
  Tensor t = make({s.n, s.h, s.w, s.c}, sample(s.n * s.c * s.h * s.w, -2, 2, seed), d);
  return native::permute(t, {0, 3, 1, 2});
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

const Cfg kMaxCfgs[] = {
    {7, 6, 3, 3, 2, 2, 1, 1, 1, 1, false}, {7, 6, 3, 3, 2, 2, 1, 1, 1, 1, true},
    {5, 5, 2, 2, 2, 2, 0, 0, 1, 1, true},  {9, 8, 3, 2, 2, 3, 1, 1, 2, 1, false},
    {9, 8, 3, 2, 2, 3, 1, 0, 2, 3, true},  {4, 7, 4, 1, 1, 1, 2, 0, 1, 1, false},
    {1, 5, 1, 3, 1, 2, 0, 1, 1, 1, true},  {6, 6, 2, 2, 3, 3, 1, 1, 1, 1, true},
    {11, 10, 3, 3, 1, 1, 1, 1, 1, 1, false}, {8, 9, 3, 3, 2, 2, 2, 2, 2, 2, true},
    {5, 7, 3, 3, 3, 3, 1, 1, 1, 1, true},  {13, 3, 5, 3, 4, 1, 2, 1, 1, 1, true},
};

const Cfg kAvgCfgs[] = {
    {7, 6, 3, 3, 2, 2, 1, 1, 1, 1, false}, {7, 6, 3, 3, 2, 2, 1, 1, 1, 1, true},
    {5, 5, 2, 2, 2, 2, 0, 0, 1, 1, true},  {4, 7, 4, 1, 1, 1, 2, 0, 1, 1, false},
    {6, 6, 2, 2, 3, 3, 1, 1, 1, 1, true},  {5, 7, 3, 3, 3, 3, 1, 1, 1, 1, true},
    {13, 3, 5, 3, 4, 1, 2, 1, 1, 1, true}, {9, 10, 4, 5, 3, 2, 2, 2, 1, 1, true},
    {1, 1, 1, 1, 1, 1, 0, 0, 1, 1, false}, {8, 8, 2, 3, 1, 2, 1, 1, 1, 1, false},
};

}  // namespace

TEST(Pool, OutputSizeFormula) {
  // torch's shapes (checked against torch.nn.functional): the ceil rule keeps
  // a last window only when it starts inside the input or the left padding.
  EXPECT_EQ(native::pool_output_size(5, 2, 2, 0, 1, true), 3);
  EXPECT_EQ(native::pool_output_size(5, 3, 2, 1, 1, true), 3);
  EXPECT_EQ(native::pool_output_size(6, 3, 3, 1, 1, true), 3);
  EXPECT_EQ(native::pool_output_size(4, 2, 3, 1, 1, true), 2);
  EXPECT_EQ(native::pool_output_size(7, 3, 3, 0, 1, true), 3);
  EXPECT_EQ(native::pool_output_size(5, 3, 3, 1, 1, true), 2);  // the would-be third window starts at 5
  EXPECT_EQ(native::pool_output_size(5, 2, 2, 0, 1, false), 2);
  EXPECT_EQ(native::pool_output_size(5, 7, 7, 0, 1, false), 0);
  for (int64_t in = 1; in <= 12; ++in)
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t s = 1; s <= 4; ++s)
        for (int64_t d = 1; d <= 2; ++d)
          for (int64_t p = 0; p <= ((k - 1) * d + 1) / 2; ++p)
            for (bool ceil : {false, true}) {
              const int64_t expect = count_windows(in, k, s, p, d, ceil);
              if (expect == 0) continue;
              EXPECT_EQ(native::pool_output_size(in, k, s, p, d, ceil), expect)
                  << "in " << in << " k " << k << " s " << s << " p " << p << " d " << d << " ceil " << ceil;
            }
}

TEST(Pool, MaxPoolMatchesFloat64Loop) {
  const Shape4 base{2, 3, 0, 0};
  for (const Cfg& g : kMaxCfgs) {
    const Shape4 s{base.n, base.c, g.h, g.w};
    for (DType d : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
      Tensor x = make({s.n, s.c, s.h, s.w}, sample(s.n * s.c * s.h * s.w, -3, 3, unsigned(g.h * 31 + g.w)), d);
      std::vector<double> y;
      std::vector<int64_t> idx;
      int64_t oh, ow;
      ref_max(values(x), s, g, y, idx, oh, ow);
      auto [out, ind] = native::max_pool2d_with_indices(x, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw},
                                                        g.ceil);
      ASSERT_EQ(out.dtype(), d);
      ASSERT_EQ(ind.dtype(), kInt64);
      // Maxima are copies of input values: exact in every dtype.
      EXPECT_TRUE(all_close(out, make({s.n, s.c, oh, ow}, y), 0, 0)) << "H " << g.h << " W " << g.w;
      std::vector<double> idx_d(idx.begin(), idx.end());
      EXPECT_TRUE(all_close(ind, make({s.n, s.c, oh, ow}, idx_d), 0, 0)) << "H " << g.h << " W " << g.w;
      EXPECT_TRUE(all_close(native::max_pool2d(x, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw}, g.ceil),
                            out, 0, 0));
    }
  }
}

TEST(Pool, MaxPoolStridedUnbatchedAndBatchOne) {
  const Cfg g{7, 6, 3, 3, 2, 2, 1, 1, 1, 1, true};
  const Shape4 s{2, 3, 7, 6};
  Tensor x = channels_last(s, kFloat32, 5);
  ASSERT_FALSE(x.is_contiguous());
  std::vector<double> y;
  std::vector<int64_t> idx;
  int64_t oh, ow;
  ref_max(values(x), s, g, y, idx, oh, ow);
  Tensor out = native::max_pool2d(x, 3, 2, 1, 1, true);
  EXPECT_TRUE(all_close(out, make({2, 3, oh, ow}, y), 0, 0));
  // Unbatched [C, H, W] and a column slice.
  Tensor plane = native::select(x, 0, 1);
  auto [u, ui] = native::max_pool2d_with_indices(plane, 3, 2, 1, 1, true);
  ASSERT_EQ(u.sizes(), IntArrayRef({3, oh, ow}));
  auto [b, bi] = native::max_pool2d_with_indices(native::unsqueeze(native::contiguous(plane), 0), 3, 2, 1, 1, true);
  EXPECT_TRUE(all_close(u, native::select(b, 0, 0), 0, 0));
  EXPECT_TRUE(all_close(ui, native::select(bi, 0, 0), 0, 0));
  Tensor wide = make({1, 2, 5, 12}, sample(120, -1, 1, 9));
  Tensor sliced = native::slice(wide, 3, 1, 12, 2);  // W = 6 with stride 2
  std::vector<double> ys;
  ref_max(values(sliced), {1, 2, 5, 6}, {5, 6, 2, 3, 1, 2, 1, 1, 1, 1, false}, ys, idx, oh, ow);
  EXPECT_TRUE(all_close(native::max_pool2d(sliced, {2, 3}, {1, 2}, 1), make({1, 2, oh, ow}, ys), 0, 0));
}

TEST(Pool, MaxPoolTiesNaNAndPadding) {
  // Values and indices printed by torch.nn.functional.max_pool2d.
  Tensor x = make({1, 1, 3, 3}, {1, 3, 3, 3, kNaN, 2, kNaN, 1, 3});
  auto [v, i] = native::max_pool2d_with_indices(x, 2, 1);
  EXPECT_TRUE(all_close(v, make({1, 1, 2, 2}, {kNaN, kNaN, kNaN, kNaN})));
  EXPECT_EQ(values(i), (std::vector<double>{4, 4, 6, 4}));
  Tensor neg = native::full({1, 1, 3, 3}, -kInf, TensorOptions().dtype(kFloat32));
  auto [nv, ni] = native::max_pool2d_with_indices(neg, 2, 1, 1);
  EXPECT_EQ(values(ni), (std::vector<double>{0, 0, 1, 2, 0, 0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8}));
  EXPECT_TRUE(all_close(nv, native::full({1, 1, 4, 4}, -kInf, TensorOptions().dtype(kFloat64))));
  auto [tv, ti] = native::max_pool2d_with_indices(native::ones({1, 1, 2, 2}), 2, 1, 1);
  EXPECT_EQ(values(ti), (std::vector<double>{0, 0, 1, 0, 0, 1, 2, 2, 3}));
}

TEST(Pool, MaxPoolBackwardScattersToIndices) {
  // Overlapping windows (stride 1), so indices repeat and gradients add up.
  for (DType d : {kFloat64, kFloat32, kBFloat16}) {
    Tensor x = make({2, 2, 7, 6}, sample(168, -1, 1, 3), d);
    auto [out, ind] = native::max_pool2d_with_indices(x, 3, 1, 1);
    Tensor grad = make(out.sizes(), sample(out.numel(), -1, 1, 4), d);
    std::vector<double> expect(168, 0), gv = values(grad), iv = values(ind);
    for (int64_t k = 0; k < out.numel(); ++k) {
      const int64_t pl = k / (out.size(2) * out.size(3));
      expect[pl * 42 + static_cast<int64_t>(iv[k])] += gv[k];
    }
    Tensor gi = native::max_pool2d_backward(grad, ind, x.sizes());
    EXPECT_EQ(gi.dtype(), d);
    EXPECT_TRUE(all_close(gi, make(x.sizes(), expect), tol_for(d), tol_for(d)));
    // Adjoint of the gather at the same indices.
    Tensor t = make(x.sizes(), sample(168, -1, 1, 6));
    Tensor gathered = native::max_pool2d_gather(t, ind);
    EXPECT_NEAR(dot(values(gathered), values(grad)), dot(values(t), values(gi)), 1e-2);
  }
  // Unbatched and a non-contiguous gradient.
  Tensor x = make({3, 5, 5}, sample(75, -1, 1, 11));
  auto [out, ind] = native::max_pool2d_with_indices(x, 2, 2, 1, 1, true);
  Tensor gbig = make({out.size(2), out.size(1), 3}, sample(out.numel(), -1, 1, 12));
  Tensor grad = native::permute(gbig, {2, 1, 0});
  Tensor gi = native::max_pool2d_backward(grad, ind, x.sizes());
  std::vector<double> expect(75, 0), gv = values(grad), iv = values(ind);
  for (int64_t k = 0; k < out.numel(); ++k) expect[(k / (out.size(1) * out.size(2))) * 25 + int64_t(iv[k])] += gv[k];
  EXPECT_TRUE(all_close(gi, make({3, 5, 5}, expect), 1e-12, 1e-14));
}

TEST(Pool, AvgPoolMatchesFloat64Loop) {
  for (const Cfg& g : kAvgCfgs) {
    const Shape4 s{2, 3, g.h, g.w};
    for (bool include_pad : {true, false}) {
      for (int64_t divisor : {int64_t{0}, int64_t{3}, int64_t{-2}}) {
        for (DType d : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
          Tensor x = make({s.n, s.c, s.h, s.w}, sample(s.n * s.c * s.h * s.w, -3, 3, unsigned(g.h + 7 * g.w)), d);
          int64_t oh, ow;
          auto y = ref_avg(values(x), s, g, include_pad, divisor, oh, ow);
          std::optional<int64_t> div = divisor != 0 ? std::optional<int64_t>(divisor) : std::nullopt;
          Tensor out =
              native::avg_pool2d(x, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, g.ceil, include_pad, div);
          ASSERT_EQ(out.dtype(), d);
          EXPECT_TRUE(all_close(out, make({s.n, s.c, oh, ow}, y), tol_for(d), tol_for(d)))
              << "H " << g.h << " W " << g.w << " include_pad " << include_pad << " divisor " << divisor << " dtype "
              << d;
        }
      }
    }
  }
}

TEST(Pool, AvgPoolStridedUnbatchedAndEmptyBatch) {
  const Shape4 s{2, 3, 7, 6};
  const Cfg g{7, 6, 3, 2, 2, 2, 1, 1, 1, 1, true};
  Tensor x = channels_last(s, kFloat64, 3);
  int64_t oh, ow;
  auto y = ref_avg(values(x), s, g, false, 0, oh, ow);
  EXPECT_TRUE(all_close(native::avg_pool2d(x, {3, 2}, 2, 1, true, false), make({2, 3, oh, ow}, y), 1e-12, 1e-14));
  Tensor u = native::avg_pool2d(native::select(x, 0, 1), {3, 2}, 2, 1, true, false);
  ASSERT_EQ(u.sizes(), IntArrayRef({3, oh, ow}));
  std::vector<double> second(y.begin() + 3 * oh * ow, y.end());
  EXPECT_TRUE(all_close(u, make({3, oh, ow}, second), 1e-12, 1e-14));
  Tensor empty = native::avg_pool2d(native::zeros({0, 3, 7, 6}), 2);
  EXPECT_EQ(empty.sizes(), IntArrayRef({0, 3, 3, 3}));
  EXPECT_EQ(native::max_pool2d(native::zeros({0, 3, 7, 6}), 2).sizes(), IntArrayRef({0, 3, 3, 3}));
}

TEST(Pool, AvgPoolBackwardIsTheAdjoint) {
  for (const Cfg& g : kAvgCfgs) {
    const Shape4 s{1, 2, g.h, g.w};
    for (bool include_pad : {true, false}) {
      for (int64_t divisor : {int64_t{0}, int64_t{5}}) {
        std::optional<int64_t> div = divisor != 0 ? std::optional<int64_t>(divisor) : std::nullopt;
        Tensor x = make({s.n, s.c, s.h, s.w}, sample(s.c * s.h * s.w, -1, 1, 3));
        Tensor out = native::avg_pool2d(x, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, g.ceil, include_pad, div);
        Tensor grad = make(out.sizes(), sample(out.numel(), -1, 1, 4));
        Tensor gi = native::avg_pool2d_backward(grad, x.sizes(), {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, g.ceil,
                                                include_pad, div);
        // Column by column: the backward applied to a unit gradient is the
        // forward's weight on each input, from the reference loop.
        std::vector<double> expect(x.numel(), 0), gv = values(grad);
        const int64_t n_in = x.numel();
        for (int64_t k = 0; k < n_in; ++k) {
          std::vector<double> e(n_in, 0);
          e[k] = 1;
          int64_t oh, ow;
          auto col = ref_avg(e, s, g, include_pad, divisor, oh, ow);
          expect[k] = dot(col, gv);
        }
        EXPECT_TRUE(all_close(gi, make(x.sizes(), expect), 1e-12, 1e-14)) << "H " << g.h << " W " << g.w;
      }
    }
  }
  // Reduced precision accumulates in float.
  Tensor grad = make({1, 2, 4, 4}, sample(32, -1, 1, 5), kBFloat16);
  Tensor gi = native::avg_pool2d_backward(grad, {1, 2, 8, 8}, 3, 2, 1);
  Tensor gi64 = native::avg_pool2d_backward(native::to(grad, kFloat64), {1, 2, 8, 8}, 3, 2, 1);
  EXPECT_EQ(gi.dtype(), kBFloat16);
  EXPECT_TRUE(all_close(gi, gi64, 1e-2, 1e-2));
}

TEST(Pool, AdaptiveAvgPoolMatchesFloat64Loop) {
  const int64_t sizes[][4] = {{7, 5, 3, 2}, {5, 7, 5, 7}, {6, 6, 4, 4}, {4, 9, 8, 3},
                              {10, 3, 1, 1}, {3, 3, 7, 7}, {1, 1, 2, 3}, {13, 11, 5, 4}};
  for (auto& z : sizes) {
    const Shape4 s{2, 3, z[0], z[1]};
    for (DType d : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
      Tensor x = make({2, 3, z[0], z[1]}, sample(6 * z[0] * z[1], -2, 2, unsigned(z[0] + z[1])), d);
      Tensor out = native::adaptive_avg_pool2d(x, {z[2], z[3]});
      ASSERT_EQ(out.dtype(), d);
      EXPECT_TRUE(all_close(out, make({2, 3, z[2], z[3]}, ref_adaptive(values(x), s, z[2], z[3])), tol_for(d),
                            tol_for(d)))
          << z[0] << "x" << z[1] << " -> " << z[2] << "x" << z[3];
    }
    // Backward: the adjoint, checked through <pool(x), g> = <x, pool^T(g)>
    // on a basis of x (independent of the kernel's scatter order).
    Tensor g = make({2, 3, z[2], z[3]}, sample(6 * z[2] * z[3], -1, 1, 8));
    Tensor gi = native::adaptive_avg_pool2d_backward(g, {2, 3, z[0], z[1]});
    std::vector<double> expect(6 * z[0] * z[1]), gv = values(g);
    for (size_t k = 0; k < expect.size(); ++k) {
      std::vector<double> e(expect.size(), 0);
      e[k] = 1;
      expect[k] = dot(ref_adaptive(e, s, z[2], z[3]), gv);
    }
    EXPECT_TRUE(all_close(gi, make({2, 3, z[0], z[1]}, expect), 1e-12, 1e-14));
  }
}

TEST(Pool, AdaptiveAvgPoolLayoutsAndEmpty) {
  const Shape4 s{2, 4, 9, 7};
  Tensor x = channels_last(s, kFloat32, 2);
  EXPECT_TRUE(all_close(native::adaptive_avg_pool2d(x, {4, 3}),
                        make({2, 4, 4, 3}, ref_adaptive(values(x), s, 4, 3)), 2e-6, 2e-6));
  EXPECT_TRUE(all_close(native::adaptive_avg_pool2d(native::select(x, 0, 0), 1),
                        native::mean(native::to(native::select(x, 0, 0), kFloat64), {1, 2}, true), 2e-6, 2e-6));
  EXPECT_EQ(native::adaptive_avg_pool2d(x, 0).sizes(), IntArrayRef({2, 4, 0, 0}));
  EXPECT_EQ(native::adaptive_avg_pool2d(native::zeros({0, 4, 9, 7}), 2).sizes(), IntArrayRef({0, 4, 2, 2}));
  EXPECT_EQ(native::adaptive_avg_pool2d(native::zeros({1, 0, 9, 7}), 2).sizes(), IntArrayRef({1, 0, 2, 2}));
  Tensor gi = native::adaptive_avg_pool2d_backward(native::zeros({2, 4, 0, 0}), {2, 4, 9, 7});
  EXPECT_EQ(values(gi), std::vector<double>(2 * 4 * 9 * 7, 0.0));
}

TEST(Pool, LargeInputsSplitAcrossThreads) {
  // Enough rows and planes for several OpenMP chunks in every kernel.
  const Shape4 s{2, 8, 64, 48};
  Tensor x = make({s.n, s.c, s.h, s.w}, sample(s.n * s.c * s.h * s.w, -1, 1, 21), kFloat32);
  std::vector<double> y;
  std::vector<int64_t> idx;
  int64_t oh, ow;
  const Cfg g{64, 48, 3, 3, 2, 2, 1, 1, 1, 1, false};
  ref_max(values(x), s, g, y, idx, oh, ow);
  auto [out, ind] = native::max_pool2d_with_indices(x, 3, 2, 1);
  EXPECT_TRUE(all_close(out, make({s.n, s.c, oh, ow}, y), 0, 0));
  auto ya = ref_avg(values(x), s, g, true, 0, oh, ow);
  EXPECT_TRUE(all_close(native::avg_pool2d(x, 3, 2, 1), make({s.n, s.c, oh, ow}, ya), 2e-6, 2e-6));
  EXPECT_TRUE(all_close(native::adaptive_avg_pool2d(x, {7, 5}),
                        make({s.n, s.c, 7, 5}, ref_adaptive(values(x), s, 7, 5)), 2e-6, 2e-6));
  Tensor grad = native::ones(out.sizes(), TensorOptions().dtype(kFloat32));
  Tensor gi = native::max_pool2d_backward(grad, ind, x.sizes());
  std::vector<double> counts(x.numel(), 0), iv = values(ind);
  for (int64_t k = 0; k < out.numel(); ++k) counts[(k / (oh * ow)) * s.h * s.w + int64_t(iv[k])] += 1;
  EXPECT_TRUE(all_close(gi, make(x.sizes(), counts), 0, 0));
}

TEST(Pool, Errors) {
  Tensor x = native::zeros({1, 1, 5, 5});
  EXPECT_KILN_ERROR(native::max_pool2d(x, 3, 1, 2), "padding should be at most half of the effective kernel size");
  EXPECT_KILN_ERROR(native::max_pool2d(x, 3, 1, 2), "[1, 1, 5, 5]");
  EXPECT_NO_THROW(native::max_pool2d(x, 3, 1, 2, 2));  // effective kernel 5
  EXPECT_KILN_ERROR(native::avg_pool2d(x, 3, 1, 2), "padding should be at most half");
  EXPECT_KILN_ERROR(native::max_pool2d(x, 7), "gives an output of 0 x 0, which is too small");
  EXPECT_KILN_ERROR(native::avg_pool2d(x, 7), "too small");
  EXPECT_KILN_ERROR(native::max_pool2d(x, 0), "kernel_size should be greater than zero");
  EXPECT_KILN_ERROR(native::max_pool2d(x, 2, 0), "stride should be greater than zero");
  EXPECT_KILN_ERROR(native::max_pool2d(x, 2, 2, 0, 0), "dilation should be greater than zero");
  EXPECT_KILN_ERROR(native::max_pool2d(x, 2, 2, -1), "padding must be non-negative");
  EXPECT_KILN_ERROR(native::max_pool2d(x, {2, 3, 4}), "kernel_size must either be a single int, or a tuple of two");
  EXPECT_KILN_ERROR(native::avg_pool2d(x, 2, {1, 1, 1}), "stride must either be a single int");
  EXPECT_KILN_ERROR(native::avg_pool2d(x, 2, 2, 0, false, true, 0), "divisor_override must be non-zero");
  EXPECT_KILN_ERROR(native::max_pool2d(native::zeros({5, 5}), 2), "got shape [5, 5]");
  EXPECT_KILN_ERROR(native::max_pool2d(native::zeros({1, 1, 1, 5, 5}), 2), "3-D [C, H, W] or 4-D [N, C, H, W]");
  EXPECT_KILN_ERROR(native::max_pool2d(native::zeros({2, 0, 5, 5}), 2), "got shape [2, 0, 5, 5]");
  EXPECT_KILN_ERROR(native::avg_pool2d(native::zeros({0, 5, 5}), 2), "got shape [0, 5, 5]");
  EXPECT_KILN_ERROR(native::max_pool2d(native::zeros({1, 1, 5, 5}, TensorOptions().dtype(kInt64)), 2),
                    "expected a floating-point input, got int64");
  // A dilated window made only of padding (torch returns -inf with an out-of-plane index).
  EXPECT_KILN_ERROR(native::max_pool2d(native::zeros({1, 1, 2, 2}), 2, 1, 1, 3), "covers no input row");
  EXPECT_KILN_ERROR(native::adaptive_avg_pool2d(x, -1), "must be greater than or equal to 0");
  EXPECT_KILN_ERROR(native::adaptive_avg_pool2d(x, {1, 2, 3}), "output_size must either be a single int");
  EXPECT_KILN_ERROR(native::adaptive_avg_pool2d(native::zeros({5, 5}), 2), "got shape [5, 5]");
  EXPECT_KILN_ERROR(native::adaptive_avg_pool2d(native::zeros({1, 1, 0, 5}), 2), "non-zero H and W");
  Tensor g = native::zeros({1, 1, 2, 2});
  EXPECT_KILN_ERROR(native::avg_pool2d_backward(g, {1, 1, 5, 5}, 3), "does not match the output shape [1, 1, 1, 1]");
  EXPECT_KILN_ERROR(native::max_pool2d_backward(g, native::zeros({1, 1, 2, 3}, TensorOptions().dtype(kInt64)),
                                                {1, 1, 5, 5}),
                    "do not match");
  EXPECT_KILN_ERROR(native::max_pool2d_backward(g, native::full({1, 1, 2, 2}, 25, TensorOptions().dtype(kInt64)),
                                                {1, 1, 5, 5}),
                    "outside the input plane of 5 x 5");
  EXPECT_KILN_ERROR(native::max_pool2d_backward(g, native::zeros({1, 1, 2, 2}), {1, 1, 5, 5}), "int64 indices");
  EXPECT_KILN_ERROR(native::adaptive_avg_pool2d_backward(g, {1, 2, 5, 5}), "does not match");
}
