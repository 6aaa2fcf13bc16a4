// Pillow's resampling (libImaging/Resample.c and the nearest-neighbour path
// of Geometry.c) for 8-bit interleaved images, rewritten for byte-exact
// results: the same filter functions and double-precision weights, the same
// window bounds (rounded by truncation), the same normalisation and 22-bit
// fixed-point conversion, the same +0.5 rounding bias and clipping, and the
// same pass order (Pillow 13: horizontal first, over only the rows the
// vertical pass reads, unless the height shrinks much more than the width).
// Any change to an expression here can change output bytes; the
// golden tests compare against Pillow byte for byte.
#include "kiln/data/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "kiln/core/error.h"

namespace kiln::data {
namespace {

// ---- filters (arguments in units of input pixels, already scaled) ----

double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

double bilinear_filter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_filter(double x) {
  x = std::fabs(x);
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x *= std::numbers::pi;
  // Pillow writes these constants as floats (0.54f, 0.46f): keep their float values.
  return std::sin(x) / x * (static_cast<double>(0.54f) + static_cast<double>(0.46f) * std::cos(x));
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;  // Keys' cubic convolution, as Pillow
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= std::numbers::pi;
  return std::sin(x) / x;
}

double lanczos_filter(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

struct Filter {
  double (*fn)(double);
  double support;
};

Filter filter_for(Resample r) {
  switch (r) {
    case Resample::Box:
      return {box_filter, 0.5};
    case Resample::Bilinear:
      return {bilinear_filter, 1.0};
    case Resample::Hamming:
      return {hamming_filter, 1.0};
    case Resample::Bicubic:
      return {bicubic_filter, 2.0};
    case Resample::Lanczos:
      return {lanczos_filter, 3.0};
    case Resample::Nearest:
      break;
  }
  KILN_ERROR("resize: no convolution filter for ", resample_name(r));
}

constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

inline uint8_t clip8(int32_t acc) {
  int32_t v = acc >> kPrecisionBits;  // arithmetic shift: floor, as Pillow's lookup index
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Per output position along one axis: the first input index, the number of
// inputs, and ksize fixed-point weights (zero past the count).
struct Coefficients {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

Coefficients precompute(int in_size, int out_size, const Filter& filter) {
  // Pillow takes the source box as floats; with the whole image that is [0, in_size].
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter.support * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // truncation, as Pillow's (int) cast
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      double w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    int32_t* out = &c.weights[static_cast<size_t>(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      double w = ww != 0.0 ? k[x] / ww : k[x];
      // Round half away from zero into 22-bit fixed point.
      out[x] = w < 0 ? static_cast<int32_t>(-0.5 + w * (1 << kPrecisionBits))
                     : static_cast<int32_t>(0.5 + w * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

// Rows [row0, row0 + rows) of src (in_w pixels wide) filtered horizontally
// into dst (out_w wide, `rows` rows): one output pixel at a time.
template <int C>
void horizontal_rows(const uint8_t* src, int in_w, int row0, int rows, uint8_t* dst, int out_w,
                     const Coefficients& co) {
  const int ks = co.ksize;
  for (int y = 0; y < rows; ++y) {
    const uint8_t* in = src + static_cast<size_t>(row0 + y) * in_w * C;
    uint8_t* out = dst + static_cast<size_t>(y) * out_w * C;
    for (int xx = 0; xx < out_w; ++xx) {
      const int n = co.count[xx];
      const int32_t* k = &co.weights[static_cast<size_t>(xx) * ks];
      const uint8_t* p = in + static_cast<size_t>(co.first[xx]) * C;
      int32_t s[C];
      for (int c = 0; c < C; ++c) s[c] = kHalf;
      for (int x = 0; x < n; ++x) {
        const int32_t w = k[x];
        for (int c = 0; c < C; ++c) s[c] += static_cast<int32_t>(p[x * C + c]) * w;
      }
      for (int c = 0; c < C; ++c) out[xx * C + c] = clip8(s[c]);
    }
  }
}

// The same for a strip of R rows at once, vectorised across the strip: the
// strip is transposed so that column x is R * C contiguous bytes, then each
// output column accumulates whole columns times one weight, in R * C integer
// lanes the compiler keeps in vector registers. Integer sums do not depend
// on their order, so the bytes are those of horizontal_rows.
template <int C, int R>
void horizontal_strip(const uint8_t* src, int in_w, int row0, uint8_t* dst, int out_w, const Coefficients& co,
                      uint8_t* columns /* in_w * R * C */) {
  constexpr int L = R * C;
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = src + static_cast<size_t>(row0 + r) * in_w * C;
  for (int x = 0; x < in_w; ++x) {
    uint8_t* col = columns + static_cast<size_t>(x) * L;
    for (int r = 0; r < R; ++r) std::memcpy(col + r * C, rows[r] + static_cast<size_t>(x) * C, C);
  }
  const int ks = co.ksize;
  for (int xx = 0; xx < out_w; ++xx) {
    const int n = co.count[xx];
    const int32_t* k = &co.weights[static_cast<size_t>(xx) * ks];
    const uint8_t* col = columns + static_cast<size_t>(co.first[xx]) * L;
    int32_t acc[L];
    for (int i = 0; i < L; ++i) acc[i] = kHalf;
    for (int x = 0; x < n; ++x, col += L) {
      const int32_t w = k[x];
      for (int i = 0; i < L; ++i) acc[i] += static_cast<int32_t>(col[i]) * w;
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) dst[(static_cast<size_t>(r) * out_w + xx) * C + c] = clip8(acc[r * C + c]);
  }
}

template <int C>
void horizontal_pass(const uint8_t* src, int in_w, int row0, int rows, uint8_t* dst, int out_w,
                     const Coefficients& co) {
  constexpr int R = 16;
  const int strips = rows / R;
  if (strips > 0) {
    std::vector<uint8_t> columns(static_cast<size_t>(in_w) * R * C);
    for (int s = 0; s < strips; ++s)
      horizontal_strip<C, R>(src, in_w, row0 + s * R, dst + static_cast<size_t>(s) * R * out_w * C, out_w, co,
                             columns.data());
  }
  const int done = strips * R;
  horizontal_rows<C>(src, in_w, row0 + done, rows - done, dst + static_cast<size_t>(done) * out_w * C, out_w, co);
}

// Vertical filtering of rows of row_len bytes (any channel count: each byte
// is filtered on its own), a block of kBlock bytes at a time so the
// accumulators stay in registers across the taps.
void vertical_pass(const uint8_t* src, size_t row_len, uint8_t* dst, int out_h, const Coefficients& co) {
  constexpr size_t kBlock = 64;
  const int ks = co.ksize;
  for (int yy = 0; yy < out_h; ++yy) {
    const int n = co.count[yy];
    const int32_t* k = &co.weights[static_cast<size_t>(yy) * ks];
    const uint8_t* base = src + static_cast<size_t>(co.first[yy]) * row_len;
    uint8_t* out = dst + static_cast<size_t>(yy) * row_len;
    size_t i0 = 0;
    for (; i0 + kBlock <= row_len; i0 += kBlock) {
      int32_t acc[kBlock];
      for (size_t i = 0; i < kBlock; ++i) acc[i] = kHalf;
      for (int y = 0; y < n; ++y) {
        const uint8_t* in = base + static_cast<size_t>(y) * row_len + i0;
        const int32_t w = k[y];
        for (size_t i = 0; i < kBlock; ++i) acc[i] += static_cast<int32_t>(in[i]) * w;
      }
      for (size_t i = 0; i < kBlock; ++i) out[i0 + i] = clip8(acc[i]);
    }
    for (size_t i = i0; i < row_len; ++i) {
      int32_t acc = kHalf;
      for (int y = 0; y < n; ++y) acc += static_cast<int32_t>(base[static_cast<size_t>(y) * row_len + i]) * k[y];
      out[i] = clip8(acc);
    }
  }
}

void horizontal_dispatch(int channels, const uint8_t* src, int in_w, int row0, int rows, uint8_t* dst, int out_w,
                         const Coefficients& co) {
  switch (channels) {
    case 1:
      return horizontal_pass<1>(src, in_w, row0, rows, dst, out_w, co);
    case 2:
      return horizontal_pass<2>(src, in_w, row0, rows, dst, out_w, co);
    case 3:
      return horizontal_pass<3>(src, in_w, row0, rows, dst, out_w, co);
    default:
      return horizontal_pass<4>(src, in_w, row0, rows, dst, out_w, co);
  }
}

// Pillow's nearest neighbour: an affine scaling whose source coordinate is
// accumulated by repeated addition of the step (and so carries its rounding).
void resize_nearest(const uint8_t* src, int in_w, int in_h, int channels, uint8_t* dst, int out_w, int out_h) {
  const double ax = static_cast<double>(static_cast<float>(in_w) - 0.0f) / out_w;
  const double ay = static_cast<double>(static_cast<float>(in_h) - 0.0f) / out_h;
  auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int>(v); };
  std::vector<int> xin(out_w);
  double xo = 0.0 + ax * 0.5;
  for (int x = 0; x < out_w; ++x) {
    xin[x] = std::clamp(coord(xo), 0, in_w - 1);  // always in range for a whole-image box
    xo += ax;
  }
  double yo = 0.0 + ay * 0.5;
  for (int y = 0; y < out_h; ++y) {
    const int yi = std::clamp(coord(yo), 0, in_h - 1);
    yo += ay;
    const uint8_t* in = src + static_cast<size_t>(yi) * in_w * channels;
    uint8_t* out = dst + static_cast<size_t>(y) * out_w * channels;
    for (int x = 0; x < out_w; ++x)
      std::memcpy(out + static_cast<size_t>(x) * channels, in + static_cast<size_t>(xin[x]) * channels, channels);
  }
}

}  // namespace

Resample resample_from_pil(int64_t code) {
  KILN_CHECK(code >= 0 && code <= 5, "resample: unknown PIL resampling filter ", code,
             " (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)");
  return static_cast<Resample>(code);
}

const char* resample_name(Resample r) {
  switch (r) {
    case Resample::Nearest:
      return "nearest";
    case Resample::Lanczos:
      return "lanczos";
    case Resample::Bilinear:
      return "bilinear";
    case Resample::Bicubic:
      return "bicubic";
    case Resample::Box:
      return "box";
    case Resample::Hamming:
      return "hamming";
  }
  return "unknown";
}

std::vector<uint8_t> resize_interleaved(std::span<const uint8_t> src, int64_t width, int64_t height, int channels,
                                        int64_t out_width, int64_t out_height, Resample resample) {
  KILN_CHECK(channels >= 1 && channels <= 4, "resize: channels must be 1 to 4, got ", channels);
  KILN_CHECK(width > 0 && height > 0, "resize: the input image is empty (", width, "x", height, ")");
  KILN_CHECK(out_width > 0 && out_height > 0, "resize: output size must be positive, got ", out_width, "x", out_height);
  constexpr int64_t kMax = 1 << 24;  // Pillow's float source box is exact below 2^24
  KILN_CHECK(width < kMax && height < kMax && out_width < kMax && out_height < kMax, "resize: size too large (", width,
             "x", height, " -> ", out_width, "x", out_height, ")");
  KILN_CHECK(src.size() == static_cast<size_t>(width * height * channels), "resize: a ", width, "x", height, "x",
             channels, " image needs ", width * height * channels, " bytes, got ", src.size());
  const int in_w = static_cast<int>(width), in_h = static_cast<int>(height);
  const int out_w = static_cast<int>(out_width), out_h = static_cast<int>(out_height);
  if (in_w == out_w && in_h == out_h) return {src.begin(), src.end()};

  std::vector<uint8_t> out(static_cast<size_t>(out_width * out_height * channels));
  if (resample == Resample::Nearest) {
    resize_nearest(src.data(), in_w, in_h, channels, out.data(), out_w, out_h);
    return out;
  }
  const Filter filter = filter_for(resample);
  const bool need_horizontal = out_w != in_w;
  const bool need_vertical = out_h != in_h;
  Coefficients vert = precompute(in_h, out_h, filter);
  if (!need_horizontal) {
    vertical_pass(src.data(), static_cast<size_t>(in_w) * channels, out.data(), out_h, vert);
    return out;
  }
  Coefficients horiz = precompute(in_w, out_w, filter);
  if (!need_vertical) {
    horizontal_dispatch(channels, src.data(), in_w, 0, in_h, out.data(), out_w, horiz);
    return out;
  }
  // Pillow 13 runs the vertical pass first when the height shrinks by more
  // than twice as many pixels as the width does (the cheaper order for tall
  // reductions). The two orders round differently, so follow it exactly.
  if (out_h < in_h && (in_h - out_h) > 2 * (in_w - out_w)) {
    std::vector<uint8_t> temp(static_cast<size_t>(out_h) * in_w * channels);
    vertical_pass(src.data(), static_cast<size_t>(in_w) * channels, temp.data(), out_h, vert);
    horizontal_dispatch(channels, temp.data(), in_w, 0, out_h, out.data(), out_w, horiz);
    return out;
  }
  // Horizontal first. Only rows [first, last) of the input feed the vertical pass.
  const int first = vert.first[0];
  const int last = vert.first[out_h - 1] + vert.count[out_h - 1];
  for (int& f : vert.first) f -= first;
  std::vector<uint8_t> temp(static_cast<size_t>(last - first) * out_w * channels);
  horizontal_dispatch(channels, src.data(), in_w, first, last - first, temp.data(), out_w, horiz);
  vertical_pass(temp.data(), static_cast<size_t>(out_w) * channels, out.data(), out_h, vert);
  return out;
}

Image resize(const Image& image, int64_t width, int64_t height, Resample resample) {
  KILN_CHECK(image.consistent(), "resize: a ", image.width, "x", image.height, "x", image.channels, " image needs ",
             image.width * image.height * image.channels, " bytes, got ", image.pixels.size());
  Image out;
  out.pixels = resize_interleaved(image.pixels, image.width, image.height, image.channels, width, height, resample);
  out.width = width;
  out.height = height;
  out.channels = image.channels;
  return out;
}

}  // namespace kiln::data
