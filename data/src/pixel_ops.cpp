// The uint8 steps of the training transforms with torchvision's arithmetic:
// its window sizes come from Python floats and round(), so the same
// formulas are kept here in double with round-half-to-even.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kiln/core/error.h"
#include "kiln/data/transforms.h"

namespace kiln::data {
namespace {

int64_t floor_div2(int64_t a) { return a >= 0 ? a / 2 : -((-a + 1) / 2); }  // Python's a // 2

}  // namespace

int64_t round_half_even(double x) {
  const double r = std::round(x);  // half away from zero
  if (std::fabs(x - std::trunc(x)) == 0.5) return static_cast<int64_t>(2.0 * std::round(x / 2.0));
  return static_cast<int64_t>(r);
}

CropBox random_resized_crop_params(int64_t height, int64_t width, const RandomResizedCropSpec& spec, SampleRng& rng) {
  KILN_CHECK(height > 0 && width > 0, "random_resized_crop: empty image (", width, "x", height, ")");
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_lo = std::log(spec.ratio_min), log_hi = std::log(spec.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(spec.scale_min, spec.scale_max);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int64_t w = round_half_even(std::sqrt(target_area * aspect));
    const int64_t h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int64_t top = rng.randint(0, height - h);
      const int64_t left = rng.randint(0, width - w);
      return {top, left, h, w};
    }
  }
  // No window fitted: the largest centred one whose ratio is in range.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < spec.ratio_min) {
    h = round_half_even(static_cast<double>(w) / spec.ratio_min);
  } else if (in_ratio > spec.ratio_max) {
    w = round_half_even(static_cast<double>(h) * spec.ratio_max);
  }
  return {floor_div2(height - h), floor_div2(width - w), h, w};
}

CropBox random_crop_params(int64_t height, int64_t width, const RandomCropSpec& spec, SampleRng& rng) {
  const int64_t ph = height + 2 * spec.padding, pw = width + 2 * spec.padding;
  KILN_CHECK(ph >= spec.height && pw >= spec.width, "random_crop: crop size ", spec.height, "x", spec.width,
             " is larger than the ", spec.padding > 0 ? "padded " : "", "image (", ph, "x", pw, ")");
  if (ph == spec.height && pw == spec.width) return {-spec.padding, -spec.padding, spec.height, spec.width};
  const int64_t top = rng.randint(0, ph - spec.height);
  const int64_t left = rng.randint(0, pw - spec.width);
  return {top - spec.padding, left - spec.padding, spec.height, spec.width};
}

CropBox center_crop_box(int64_t height, int64_t width, int64_t crop_height, int64_t crop_width) {
  KILN_CHECK(crop_height > 0 && crop_width > 0, "center_crop: crop size must be positive, got ", crop_height, "x",
             crop_width);
  // torchvision pads (excess // 2 before, the rest after) only the
  // dimensions the crop exceeds, then crops the padded image.
  int64_t pad_top = 0, pad_left = 0, h = height, w = width;
  if (crop_height > height || crop_width > width) {
    if (crop_height > height) pad_top = (crop_height - height) / 2, h = crop_height;
    if (crop_width > width) pad_left = (crop_width - width) / 2, w = crop_width;
  }
  const int64_t top = round_half_even(static_cast<double>(h - crop_height) / 2.0);
  const int64_t left = round_half_even(static_cast<double>(w - crop_width) / 2.0);
  return {top - pad_top, left - pad_left, crop_height, crop_width};
}

std::pair<int64_t, int64_t> resize_output_size(int64_t height, int64_t width, const ResizeSpec& spec) {
  KILN_CHECK(height > 0 && width > 0, "resize: empty image (", width, "x", height, ")");
  if (spec.shortest_edge <= 0) return {spec.height, spec.width};
  // torchvision: the short side becomes the size, the long one
  // int(size * long / short) (product exact, division correctly rounded).
  const bool portrait = width <= height;
  const int64_t short_side = portrait ? width : height, long_side = portrait ? height : width;
  const int64_t new_long =
      static_cast<int64_t>(static_cast<double>(spec.shortest_edge * long_side) / static_cast<double>(short_side));
  return portrait ? std::pair{new_long, spec.shortest_edge} : std::pair{spec.shortest_edge, new_long};
}

Image crop(const Image& image, const CropBox& box) {
  KILN_CHECK(box.height > 0 && box.width > 0, "crop: window size must be positive, got ", box.height, "x", box.width);
  KILN_CHECK(image.consistent(), "crop: a ", image.width, "x", image.height, "x", image.channels, " image needs ",
             image.width * image.height * image.channels, " bytes, got ", image.pixels.size());
  const int64_t ch = image.channels;
  Image out(box.width, box.height, image.channels);  // zeros where the window leaves the image
  // Columns and rows of the window that lie inside the image.
  const int64_t x0 = std::max<int64_t>(box.left, 0), x1 = std::min(box.left + box.width, image.width);
  const int64_t y0 = std::max<int64_t>(box.top, 0), y1 = std::min(box.top + box.height, image.height);
  if (x0 >= x1) return out;
  const size_t bytes = static_cast<size_t>((x1 - x0) * ch);
  for (int64_t y = y0; y < y1; ++y)
    std::memcpy(out.row(y - box.top) + (x0 - box.left) * ch, image.row(y) + x0 * ch, bytes);
  return out;
}

void hflip_inplace(Image& image) {
  const int64_t ch = image.channels, w = image.width;
  for (int64_t y = 0; y < image.height; ++y) {
    uint8_t* row = image.row(y);
    if (ch == 1) {
      std::reverse(row, row + w);
      continue;
    }
    for (int64_t a = 0, b = w - 1; a < b; ++a, --b) std::swap_ranges(row + a * ch, row + (a + 1) * ch, row + b * ch);
  }
}

}  // namespace kiln::data
