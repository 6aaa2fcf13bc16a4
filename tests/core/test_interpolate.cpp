// interpolate (nearest, bilinear) and its adjoint against float64 loops
// written here from torch's coordinate rules, for up- and downsampling,
// odd sizes, non-integer scale factors with and without
// recompute_scale_factor, align_corners both ways, strided inputs and every
// floating dtype; torch's own outputs pin the float-arithmetic nearest rule
// and its special cases; then errors.
#include <cmath>
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

constexpr auto kNearest = InterpolationMode::Nearest;
constexpr auto kBilinear = InterpolationMode::Bilinear;

// torch's "nearest": floor(o * s) in single precision, s = 1 / scale_factor
// when one drives the coordinates, else in / out; sizes that are equal or
// exactly doubled map o -> o and o -> o / 2.
int64_t nearest_src(int64_t o, int64_t in, int64_t out, double scale) {
  if (out == in) return o;
  if (out == 2 * in) return o / 2;
  const float s = scale > 0 ? float(1.0 / scale) : float(in) / float(out);
  return std::min<int64_t>(int64_t(std::floor(float(o) * s)), in - 1);
}

// Linear source coordinate: align_corners maps the corner pixel centres
// onto each other; otherwise pixel centres are scaled, and a coordinate left
// of the first centre is clamped to it. torch computes the coordinate in the
// tensor's math type C (float for float32 and the 16-bit floats).
struct Lin {
  int64_t i0, i1;
  double w1;
};
template <typename C>
Lin linear_src(int64_t o, int64_t in, int64_t out, bool align, double scale) {
  if (out == in) return {o, o, 0.0};
  C src;
  if (align) {
    src = out > 1 ? C(o) * (C(in - 1) / C(out - 1)) : C(0);
  } else {
    const C ratio = scale > 0 ? C(1.0 / scale) : C(in) / C(out);
    src = std::max(C(0), (C(o) + C(0.5)) * ratio - C(0.5));
  }
  const int64_t i0 = std::min<int64_t>(int64_t(std::floor(src)), in - 1);
  return {i0, std::min(i0 + 1, in - 1), std::min(1.0, std::max(0.0, double(src) - double(i0)))};
}

struct Geo {
  int64_t n, c, h, w, oh, ow;
};

std::vector<double> ref_resize(const std::vector<double>& x, const Geo& g, InterpolationMode mode, bool align,
                               double sh, double sw, DType dtype = kFloat64) {
  auto linear_src = dtype == kFloat64 ? ::linear_src<double> : ::linear_src<float>;
  std::vector<double> y(g.n * g.c * g.oh * g.ow);
  for (int64_t p = 0; p < g.n * g.c; ++p)
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j) {
        const double* xp = x.data() + p * g.h * g.w;
        double v;
        if (mode == kNearest) {
          v = xp[nearest_src(i, g.h, g.oh, sh) * g.w + nearest_src(j, g.w, g.ow, sw)];
        } else {
          const Lin a = linear_src(i, g.h, g.oh, align, sh), b = linear_src(j, g.w, g.ow, align, sw);
          auto at = [&](int64_t r, int64_t c) { return xp[r * g.w + c]; };
          v = (1 - a.w1) * ((1 - b.w1) * at(a.i0, b.i0) + b.w1 * at(a.i0, b.i1)) +
              a.w1 * ((1 - b.w1) * at(a.i1, b.i0) + b.w1 * at(a.i1, b.i1));
        }
        y[(p * g.oh + i) * g.ow + j] = v;
      }
  return y;
}

double tol_for(DType d) {
  switch (d) {
    case kFloat64: return 1e-12;
    case kFloat32: return 2e-6;
    case kFloat16: return 2e-3;
    default: return 1.2e-2;
  }
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// (H, W) -> (H_out, W_out): up, down, mixed, odd, equal along one dim, 1-pixel.
const int64_t kSizes[][4] = {{4, 5, 8, 10}, {4, 5, 7, 3},  {7, 3, 2, 11}, {5, 5, 5, 9}, {6, 9, 6, 4},
                             {1, 4, 3, 1},  {9, 7, 13, 5}, {3, 8, 1, 1},  {2, 2, 5, 5}, {11, 6, 4, 12}};

}  // namespace

TEST(Interpolate, SizesMatchFloat64Loop) {
  for (auto& z : kSizes) {
    const Geo g{2, 3, z[0], z[1], z[2], z[3]};
    for (DType d : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
      Tensor x = make({2, 3, z[0], z[1]}, sample(6 * z[0] * z[1], -2, 2, unsigned(z[0] * 13 + z[1])), d);
      for (InterpolationMode mode : {kNearest, kBilinear}) {
        for (bool align : {false, true}) {
          if (mode == kNearest && align) continue;
          Tensor y = mode == kNearest ? native::interpolate(x, mode, std::vector<int64_t>{z[2], z[3]})
                                      : native::interpolate(x, mode, std::vector<int64_t>{z[2], z[3]}, std::nullopt,
                                                            align);
          ASSERT_EQ(y.dtype(), d);
          auto ref = ref_resize(values(x), g, mode, align, 0, 0, d);
          const double tol = mode == kNearest ? 0.0 : tol_for(d);
          EXPECT_TRUE(all_close(y, make({2, 3, z[2], z[3]}, ref), tol, tol))
              << z[0] << "x" << z[1] << " -> " << z[2] << "x" << z[3] << " mode " << int(mode) << " align " << align
              << " dtype " << d;
        }
      }
    }
  }
}

TEST(Interpolate, ScaleFactorsDriveCoordinates) {
  const double scales[][2] = {{1.7, 0.6}, {2.5, 2.5}, {0.45, 1.3}, {3.0, 1.1}, {0.33, 2.0}, {1.05, 0.9}};
  for (auto& s : scales) {
    for (bool recompute : {false, true}) {
      const int64_t h = 10, w = 11;
      const int64_t oh = int64_t(double(h) * s[0]), ow = int64_t(double(w) * s[1]);
      const Geo g{1, 2, h, w, oh, ow};
      Tensor x = make({1, 2, h, w}, sample(2 * h * w, -1, 1, 17));
      for (InterpolationMode mode : {kNearest, kBilinear}) {
        for (bool align : {false, true}) {
          if (mode == kNearest && align) continue;
          Tensor y = native::interpolate(x, mode, std::nullopt, std::vector<double>{s[0], s[1]},
                                         mode == kBilinear ? std::optional<bool>(align) : std::nullopt, recompute);
          ASSERT_EQ(y.sizes(), IntArrayRef({1, 2, oh, ow}));
          const double sh = recompute ? 0 : s[0], sw = recompute ? 0 : s[1];
          EXPECT_TRUE(all_close(y, make({1, 2, oh, ow}, ref_resize(values(x), g, mode, align, sh, sw)), 1e-12, 1e-13))
              << "scale " << s[0] << ", " << s[1] << " recompute " << recompute << " mode " << int(mode) << " align "
              << align;
        }
      }
    }
  }
  // One value scales both dims; the output size truncates in * scale.
  Tensor x = native::zeros({1, 1, 4, 5});
  EXPECT_EQ(native::interpolate(x, kNearest, std::nullopt, std::vector<double>{1.7}).sizes(),
            IntArrayRef({1, 1, 6, 8}));
  EXPECT_EQ(native::interpolate(x, kNearest, std::vector<int64_t>{7}).sizes(), IntArrayRef({1, 1, 7, 7}));
}

TEST(Interpolate, MatchesTorchOutputs) {
  // Values printed by torch.nn.functional.interpolate (torch 2.x, CPU).
  Tensor a26 = native::reshape(native::arange(26.0, TensorOptions().dtype(kFloat64)), {1, 1, 1, 26});
  Tensor y = native::interpolate(a26, kNearest, std::vector<int64_t>{1, 22});
  EXPECT_EQ(values(y)[11], 12.0);  // 11 * 26 / 22 = 13 exactly, but 11 * float(26 / 22) < 13
  Tensor a39 = native::reshape(native::arange(39.0, TensorOptions().dtype(kFloat64)), {1, 1, 39, 1});
  auto v39 = values(native::interpolate(a39, kNearest, std::vector<int64_t>{33, 1}));
  EXPECT_EQ(v39[11], 12.0);
  EXPECT_EQ(v39[22], 25.0);
  Tensor a5 = native::reshape(native::arange(5.0, TensorOptions().dtype(kFloat64)), {1, 1, 1, 5});
  EXPECT_EQ(values(native::interpolate(a5, kNearest, std::nullopt, std::vector<double>{1, 2.1})),
            (std::vector<double>{0, 0, 1, 1, 2, 2, 3, 3, 4, 4}));  // doubled size: o / 2, not floor(o / 2.1)
  Tensor a10 = native::reshape(native::arange(10.0, TensorOptions().dtype(kFloat64)), {1, 1, 1, 10});
  for (InterpolationMode mode : {kNearest, kBilinear})  // equal size: identity despite the scale
    EXPECT_EQ(values(native::interpolate(a10, mode, std::nullopt, std::vector<double>{1, 1.05})), values(a10));
  const std::vector<double> s045{1, 0.45};
  EXPECT_EQ(values(native::interpolate(a10, kNearest, std::nullopt, s045)), (std::vector<double>{0, 2, 4, 6}));
  EXPECT_EQ(values(native::interpolate(a10, kNearest, std::nullopt, s045, std::nullopt, true)),
            (std::vector<double>{0, 2, 5, 7}));
  EXPECT_TRUE(all_close(native::interpolate(a10, kBilinear, std::nullopt, s045),
                        make({1, 1, 1, 4}, {0.6111111111111112, 2.8333333333333335, 5.055555555555555,
                                            7.277777777777779}),
                        1e-14, 1e-14));
  EXPECT_TRUE(all_close(native::interpolate(a10, kBilinear, std::nullopt, s045, std::nullopt, true),
                        make({1, 1, 1, 4}, {0.75, 3.25, 5.75, 8.25}), 1e-14, 1e-14));
  EXPECT_TRUE(all_close(native::interpolate(a10, kBilinear, std::nullopt, s045, true),
                        make({1, 1, 1, 4}, {0, 3, 6, 9}), 1e-14, 1e-14));
  EXPECT_TRUE(all_close(native::interpolate(a10, kBilinear, std::nullopt, std::vector<double>{1, 2.5}),
                        make({1, 1, 1, 25}, {0.0, 0.1, 0.5, 0.9, 1.3, 1.7, 2.1, 2.5, 2.9, 3.3, 3.7, 4.1, 4.5,
                                             4.9, 5.3, 5.7, 6.1, 6.5, 6.9, 7.3, 7.7, 8.1, 8.5, 8.9, 9.0}),
                        1e-14, 1e-14));
  // A dim whose size is unchanged still reads element 0 with weight 0, so
  // torch spreads a NaN or inf from there along the row or column.
  std::vector<double> v(12);
  for (int i = 0; i < 12; ++i) v[i] = i;
  v[0] = kInf;
  v[7] = kNaN;
  Tensor q = make({1, 1, 3, 4}, v, kFloat32);
  EXPECT_TRUE(all_close(native::interpolate(q, kBilinear, std::vector<int64_t>{5, 4}),
                        make({1, 1, 5, 4}, {kNaN, 1, 2, kNaN, kNaN, 2.6, 3.6, kNaN, 4, 5, 6, kNaN, 6.4, 7.4, 8.4,
                                            kNaN, 8, 9, 10, 11}),
                        1e-6, 1e-6));
}

TEST(Interpolate, StridedInputsAndEmptyBatch) {
  Tensor base = make({2, 6, 7, 3}, sample(252, -1, 1, 5));
  Tensor x = native::permute(base, {0, 3, 1, 2});  // [2, 3, 6, 7], channels last
  ASSERT_FALSE(x.is_contiguous());
  const Geo g{2, 3, 6, 7, 9, 4};
  for (InterpolationMode mode : {kNearest, kBilinear}) {
    Tensor y = native::upsample2d(x, mode, {9, 4}, true);
    EXPECT_TRUE(all_close(y, make({2, 3, 9, 4}, ref_resize(values(x), g, mode, true, 0, 0)), 1e-12, 1e-13));
  }
  Tensor sliced = native::slice(make({1, 2, 5, 12}, sample(120, -1, 1, 6)), 3, 0, 12, 3);  // W = 4, stride 3
  EXPECT_TRUE(all_close(native::upsample2d(sliced, kBilinear, {3, 7}),
                        make({1, 2, 3, 7}, ref_resize(values(sliced), {1, 2, 5, 4, 3, 7}, kBilinear, false, 0, 0)),
                        1e-12, 1e-13));
  EXPECT_EQ(native::interpolate(native::zeros({0, 2, 3, 3}), kBilinear, std::vector<int64_t>{5, 5}).sizes(),
            IntArrayRef({0, 2, 5, 5}));
  EXPECT_EQ(values(native::upsample2d_backward(native::zeros({0, 2, 5, 5}), {0, 2, 3, 3}, kNearest)).size(), 0u);
}

TEST(Interpolate, BackwardIsTheAdjoint) {
  const int64_t sizes[][4] = {{4, 5, 8, 10}, {7, 3, 2, 11}, {5, 5, 5, 9}, {3, 8, 1, 1}, {6, 4, 9, 4}};
  for (auto& z : sizes) {
    const Geo g{1, 2, z[0], z[1], z[2], z[3]};
    const int64_t n_in = 2 * z[0] * z[1];
    Tensor grad = make({1, 2, z[2], z[3]}, sample(2 * z[2] * z[3], -1, 1, 9));
    const std::vector<double> gv = values(grad);
    for (InterpolationMode mode : {kNearest, kBilinear}) {
      for (bool align : {false, true}) {
        if (mode == kNearest && align) continue;
        for (double scale : {0.0, 1.9}) {
          // Backward at input k = <forward(e_k), grad>, forward from the reference loop.
          std::vector<double> expect(n_in);
          for (int64_t k = 0; k < n_in; ++k) {
            std::vector<double> e(n_in, 0);
            e[k] = 1;
            expect[k] = dot(ref_resize(e, g, mode, align, scale, scale), gv);
          }
          for (DType d : {kFloat64, kFloat32, kBFloat16}) {
            Tensor gd = native::to(grad, d);
            std::vector<double> ed = expect;
            if (d != kFloat64) {  // reference on the rounded gradient
              const std::vector<double> gr = values(gd);
              for (int64_t k = 0; k < n_in; ++k) {
                std::vector<double> e(n_in, 0);
                e[k] = 1;
                ed[k] = dot(ref_resize(e, g, mode, align, scale, scale, d), gr);
              }
            }
            Tensor gi = native::upsample2d_backward(gd, {1, 2, z[0], z[1]}, mode, align, scale, scale);
            EXPECT_EQ(gi.dtype(), d);
            EXPECT_TRUE(all_close(gi, make({1, 2, z[0], z[1]}, ed), tol_for(d), tol_for(d)))
                << z[0] << "x" << z[1] << " -> " << z[2] << "x" << z[3] << " mode " << int(mode) << " align "
                << align << " scale " << scale << " dtype " << d;
          }
        }
      }
    }
  }
}

TEST(Interpolate, LargeInputsSplitAcrossThreads) {
  const Geo g{2, 8, 40, 50, 70, 33};
  Tensor x = make({2, 8, 40, 50}, sample(2 * 8 * 40 * 50, -1, 1, 23), kFloat32);
  for (InterpolationMode mode : {kNearest, kBilinear}) {
    Tensor y = native::upsample2d(x, mode, {70, 33});
    // float32 source coordinates near 40 carry rounding of ~4e-6 pixels (the
    // kernel may fuse the multiply-add, the reference does not); times
    // neighbour differences up to 2 that allows 1e-5.
    EXPECT_TRUE(
        all_close(y, make({2, 8, 70, 33}, ref_resize(values(x), g, mode, false, 0, 0, kFloat32)), 2e-6, 1e-5));
    // Summed over everything, the adjoint of a ones gradient equals the
    // forward of ones summed: both count each input's total weight.
    Tensor ones_out = native::ones({2, 8, 70, 33}, TensorOptions().dtype(kFloat32));
    Tensor gi = native::upsample2d_backward(ones_out, {2, 8, 40, 50}, mode);
    EXPECT_NEAR(dot(values(gi), values(x)), dot(values(y), values(ones_out)), 1e-2);
  }
}

TEST(Interpolate, Errors) {
  Tensor x = native::zeros({1, 1, 4, 5});
  const std::vector<int64_t> s33{3, 3};
  const std::vector<double> f2{2.0};
  EXPECT_KILN_ERROR(native::interpolate(x, kNearest, s33, f2), "only one of size or scale_factor should be defined");
  EXPECT_KILN_ERROR(native::interpolate(x, kNearest, std::nullopt), "either size or scale_factor should be defined");
  EXPECT_KILN_ERROR(native::interpolate(x, kNearest, std::vector<int64_t>{3, 3, 3}), "size must hold 1 value or 2");
  EXPECT_KILN_ERROR(native::interpolate(x, kNearest, std::nullopt, std::vector<double>{2, 2, 2}),
                    "scale_factor must hold 1 value or 2");
  EXPECT_KILN_ERROR(native::interpolate(x, kNearest, std::vector<int64_t>{0, 3}),
                    "input and output sizes should be greater than 0, but got input (H: 4, W: 5) output (H: 0, W: 3)");
  EXPECT_KILN_ERROR(native::interpolate(x, kNearest, std::nullopt, std::vector<double>{0.1}),
                    "output (H: 0, W: 0)");
  EXPECT_KILN_ERROR(native::interpolate(x, kBilinear, std::nullopt, std::vector<double>{-2.0}),
                    "output (H: -8, W: -10)");
  EXPECT_KILN_ERROR(native::interpolate(x, kNearest, s33, std::nullopt, true),
                    "align_corners can only be set with the interpolating mode bilinear");
  EXPECT_KILN_ERROR(native::interpolate(x, kNearest, s33, std::nullopt, false), "align_corners");
  EXPECT_KILN_ERROR(native::interpolate(x, kNearest, s33, std::nullopt, std::nullopt, true),
                    "recompute_scale_factor is not meaningful with an explicit size");
  EXPECT_KILN_ERROR(native::interpolate(native::zeros({1, 4, 5}), kBilinear, s33), "got shape [1, 4, 5]");
  EXPECT_KILN_ERROR(native::interpolate(native::zeros({4, 5}), kNearest, s33), "expected a 4-D [N, C, H, W] input");
  EXPECT_KILN_ERROR(native::interpolate(native::zeros({1, 0, 4, 5}), kNearest, s33), "got shape [1, 0, 4, 5]");
  EXPECT_KILN_ERROR(native::interpolate(native::zeros({1, 1, 0, 5}), kBilinear, s33), "input (H: 0, W: 5)");
  EXPECT_KILN_ERROR(native::interpolate(native::zeros({1, 1, 4, 5}, TensorOptions().dtype(kInt64)), kNearest, s33),
                    "expected a floating-point input, got int64");
  EXPECT_KILN_ERROR(native::upsample2d(x, kNearest, {3}), "output_size must hold 2 values");
  EXPECT_KILN_ERROR(native::upsample2d_backward(native::zeros({1, 2, 3, 3}), {1, 1, 4, 5}, kNearest),
                    "does not match input shape [1, 1, 4, 5]");
}
