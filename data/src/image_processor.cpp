// The processing steps of HF's BiT/BEiT image processors and the processor
// that chains them. The arithmetic mirrors theirs operation for operation
// (see image_processor.h); the float conversion is a 256-entry table per
// channel, exact because each output depends only on one byte and a channel.
#include "kiln/data/image_processor.h"

#include <algorithm>
#include <cstring>
#include <tuple>

#include "kiln/core/error.h"
#include "kiln/core/native/factory.h"

namespace kiln::data {
namespace {

int64_t floor_div(int64_t a, int64_t b) {  // Python's //, b > 0
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// The resize and crop steps work on any channel count; the float
// conversion (rgb = true) has three channel means and stds, so it needs RGB.
void check_image(const Image& image, const char* op, bool rgb = false) {
  KILN_CHECK(image.width > 0 && image.height > 0, op, ": empty image (", image.width, "x", image.height, ")");
  KILN_CHECK(image.channels >= 1 && image.channels <= 4, op, ": images have 1 to 4 channels, got ", image.channels);
  KILN_CHECK(!rgb || image.channels == 3, op, ": needs an RGB image (3 channels), got ", image.channels,
             " channel(s); Hugging Face's image processors convert to RGB first");
  KILN_CHECK(image.consistent(), op, ": a ", image.width, "x", image.height, "x", image.channels, " image needs ",
             image.width * image.height * image.channels, " bytes, got ", image.pixels.size());
}

}  // namespace

std::pair<int64_t, int64_t> shortest_edge_size(int64_t height, int64_t width, int64_t edge) {
  KILN_CHECK(height > 0 && width > 0 && edge > 0, "resize_shortest_edge: sizes must be positive, got image ", width,
             "x", height, " and edge ", edge);
  const bool portrait = width <= height;
  const int64_t short_side = portrait ? width : height, long_side = portrait ? height : width;
  // Python: int(edge * long / short): exact integer product, correctly rounded
  // true division, truncation. Doubles do the same while the product < 2^53.
  const int64_t new_long =
      static_cast<int64_t>(static_cast<double>(edge * long_side) / static_cast<double>(short_side));
  return portrait ? std::pair{new_long, edge} : std::pair{edge, new_long};
}

Image resize_shortest_edge(const Image& image, int64_t edge, Resample resample) {
  check_image(image, "resize_shortest_edge");
  auto [h, w] = shortest_edge_size(image.height, image.width, edge);
  return resize(image, w, h, resample);
}

Image resize_to(const Image& image, const ResizeTarget& target, Resample resample) {
  if (target.is_shortest_edge()) return resize_shortest_edge(image, target.shortest_edge, resample);
  check_image(image, "resize");
  return resize(image, target.width, target.height, resample);
}

Image center_crop(const Image& image, int64_t crop_height, int64_t crop_width) {
  check_image(image, "center_crop");
  KILN_CHECK(crop_height > 0 && crop_width > 0, "center_crop: crop size must be positive, got ", crop_height, "x",
             crop_width);
  const int64_t oh = image.height, ow = image.width;
  int64_t top = floor_div(oh - crop_height, 2), left = floor_div(ow - crop_width, 2);
  int64_t bottom = top + crop_height, right = left + crop_width;
  // Window of the (possibly zero-padded) canvas to copy, and where the image sits on it.
  int64_t canvas_h = oh, canvas_w = ow, pad_top = 0, pad_left = 0;
  if (!(top >= 0 && bottom <= oh && left >= 0 && right <= ow)) {
    canvas_h = std::max(crop_height, oh);
    canvas_w = std::max(crop_width, ow);
    pad_top = (canvas_h - oh) / 2;
    pad_left = (canvas_w - ow) / 2;
    top += pad_top, bottom += pad_top, left += pad_left, right += pad_left;
    top = std::max<int64_t>(0, top), left = std::max<int64_t>(0, left);
    bottom = std::min(canvas_h, bottom), right = std::min(canvas_w, right);
  }
  const int64_t ch = image.channels;
  Image out(right - left, bottom - top, image.channels);  // zero-filled
  for (int64_t y = top; y < bottom; ++y) {
    const int64_t sy = y - pad_top;
    if (sy < 0 || sy >= oh) continue;
    // Columns of this canvas row covered by the image.
    const int64_t x0 = std::max(left, pad_left), x1 = std::min(right, pad_left + ow);
    if (x0 >= x1) continue;
    std::memcpy(out.row(y - top) + (x0 - left) * ch, image.row(sy) + (x0 - pad_left) * ch,
                static_cast<size_t>(x1 - x0) * ch);
  }
  return out;
}

void to_float_normalized(const Image& image, const ImageProcessorConfig& config, float* out) {
  check_image(image, "to_float_normalized", /*rgb=*/true);
  float table[3][256];
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(config.image_mean[c]);  // np.array(mean, dtype=float32)
    const float std = static_cast<float>(config.image_std[c]);
    for (int v = 0; v < 256; ++v) {
      // rescale: uint8 * Python float is float64, then .astype(float32).
      float x = config.do_rescale ? static_cast<float>(static_cast<double>(v) * config.rescale_factor)
                                  : static_cast<float>(v);
      if (config.do_normalize) x = (x - mean) / std;  // float32 arithmetic, as numpy on float32 arrays
      table[c][v] = x;
    }
  }
  const size_t plane = static_cast<size_t>(image.width * image.height);
  const uint8_t* p = image.pixels.data();
  float* r = out;
  float* g = out + plane;
  float* b = out + 2 * plane;
  for (size_t i = 0; i < plane; ++i, p += 3) {
    r[i] = table[0][p[0]];
    g[i] = table[1][p[1]];
    b[i] = table[2][p[2]];
  }
}

Tensor to_float_normalized(const Image& image, const ImageProcessorConfig& config) {
  Tensor t = native::empty({3, image.height, image.width}, kiln::dtype(kFloat32));
  to_float_normalized(image, config, t.data_ptr<float>());
  return t;
}

void reduce_labels(std::span<uint8_t> labels) {
  // HF: label[label == 0] = 255; label -= 1 (uint8); label[label == 254] = 255.
  for (uint8_t& l : labels) l = (l == 0 || l == 255) ? 255 : static_cast<uint8_t>(l - 1);
}

ImageProcessor::ImageProcessor(ImageProcessorConfig config) : config_(std::move(config)) {
  config_.validate(config_.type == ImageProcessorType::Bit ? "BitImageProcessor" : "BeitImageProcessor");
}

Image ImageProcessor::resize_and_crop(const Image& image) const {
  check_image(image, "ImageProcessor", /*rgb=*/true);
  const Image* current = &image;
  Image resized, cropped;
  if (config_.do_resize) {
    resized = resize_to(*current, config_.size, config_.resample);
    current = &resized;
  }
  if (config_.do_center_crop) {
    cropped = center_crop(*current, config_.crop_height, config_.crop_width);
    current = &cropped;
  }
  if (current == &image) return image;
  return current == &cropped ? std::move(cropped) : std::move(resized);
}

std::pair<int64_t, int64_t> ImageProcessor::output_size(int64_t height, int64_t width) const {
  if (config_.do_resize) {
    if (config_.size.is_shortest_edge()) {
      std::tie(height, width) = shortest_edge_size(height, width, config_.size.shortest_edge);
    } else {
      height = config_.size.height, width = config_.size.width;
    }
  }
  if (config_.do_center_crop) {
    // The quirk of center_crop: an odd excess of crop over image loses a pixel.
    auto crop_extent = [](int64_t image, int64_t crop) {
      return (crop > image && (crop - image) % 2 == 1) ? crop - 1 : crop;
    };
    height = crop_extent(height, config_.crop_height);
    width = crop_extent(width, config_.crop_width);
  }
  return {height, width};
}

Tensor ImageProcessor::operator()(const std::vector<Image>& images) const {
  KILN_CHECK(!images.empty(), "ImageProcessor: no images");
  std::vector<Image> ready;
  ready.reserve(images.size());
  for (const Image& image : images) ready.push_back(resize_and_crop(image));
  const int64_t h = ready[0].height, w = ready[0].width;
  for (size_t i = 1; i < ready.size(); ++i)
    KILN_CHECK(ready[i].height == h && ready[i].width == w, "ImageProcessor: image ", i, " (", images[i].width, "x",
               images[i].height, ") comes out ", ready[i].width, "x", ready[i].height, " but image 0 (",
               images[0].width, "x", images[0].height, ") comes out ", w, "x", h,
               "; a batch needs equal sizes (use a center crop or a fixed resize)");
  Tensor out = native::empty({static_cast<int64_t>(ready.size()), 3, h, w}, kiln::dtype(kFloat32));
  float* dst = out.data_ptr<float>();
  for (size_t i = 0; i < ready.size(); ++i) to_float_normalized(ready[i], config_, dst + i * 3 * h * w);
  return out;
}

Tensor ImageProcessor::operator()(const Image& image) const {
  Image ready = resize_and_crop(image);
  Tensor out = native::empty({1, 3, ready.height, ready.width}, kiln::dtype(kFloat32));
  to_float_normalized(ready, config_, out.data_ptr<float>());
  return out;
}

}  // namespace kiln::data
