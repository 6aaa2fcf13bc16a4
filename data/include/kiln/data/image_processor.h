#pragma once
// Hugging Face's BitImageProcessor and BeitImageProcessor (transformers
// 4.37.2), step for step, so the pixel values match theirs:
//   (decode + convert("RGB"))  -> resize through Pillow's resampling
//   -> center crop (zero padding when the image is smaller)
//   -> rescale: float32(double(u8) * rescale_factor)
//   -> normalise: (x - float32(mean)) / float32(std), in float32
//   -> NCHW float32.
// BiT resizes the shortest edge (the long one truncated: int(s * long / short))
// or to a fixed height/width; BEiT resizes to a fixed height/width.
#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/data/image.h"
#include "kiln/data/resample.h"

namespace kiln::data {

enum class ImageProcessorType { Bit, Beit };

// HF's `size` dict: either {"shortest_edge": n} or {"height": h, "width": w}.
struct ResizeTarget {
  int64_t shortest_edge = 0;  // > 0: resize the shortest edge to this
  int64_t height = 0, width = 0;
  bool is_shortest_edge() const { return shortest_edge > 0; }
  static ResizeTarget shortest(int64_t edge) { return {edge, 0, 0}; }
  static ResizeTarget fixed(int64_t height, int64_t width) { return {0, height, width}; }
};

struct ImageProcessorConfig {
  ImageProcessorType type = ImageProcessorType::Bit;
  bool do_resize = true;
  ResizeTarget size = ResizeTarget::shortest(224);
  Resample resample = Resample::Bicubic;
  bool do_center_crop = true;
  int64_t crop_height = 224, crop_width = 224;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::array<double, 3> image_mean{0.48145466, 0.4578275, 0.40821073};  // OPENAI_CLIP_MEAN
  std::array<double, 3> image_std{0.26862954, 0.26130258, 0.27577711};  // OPENAI_CLIP_STD
  // Decoded images are always RGB already (decode_image converts like
  // Pillow's convert("RGB")), so this only records the config's value.
  bool do_convert_rgb = true;
  // BEiT: for segmentation maps only (see reduce_labels); images are unaffected.
  bool do_reduce_labels = false;

  static ImageProcessorConfig bit();   // BitImageProcessor() defaults
  static ImageProcessorConfig beit();  // BeitImageProcessor() defaults

  // Throws kiln::Error when the values cannot work (a BEiT shortest_edge,
  // sizes <= 0, zero std, ...); `where` prefixes the message.
  void validate(const std::string& where = "ImageProcessorConfig") const;
};

// Parses an HF preprocessor_config.json. Known keys: image_processor_type
// (or the older feature_extractor_type), do_resize, size, resample,
// do_center_crop, crop_size, do_rescale, rescale_factor, do_normalize,
// image_mean, image_std, do_convert_rgb, do_reduce_labels (or the deprecated
// reduce_labels), processor_class (ignored). Missing keys take the type's
// defaults. An unknown or ill-typed key throws kiln::Error naming the key and
// `name` (the file).
ImageProcessorConfig parse_image_processor_config(const std::string& json_text, const std::string& name);

// ---- the steps, reusable by the loader ----

// get_resize_output_image_size(default_to_square=False): (height, width)
// with the short side = edge and the long side int(edge * long / short).
std::pair<int64_t, int64_t> shortest_edge_size(int64_t height, int64_t width, int64_t edge);
Image resize_shortest_edge(const Image& image, int64_t edge, Resample resample);
// The processor's resize step (shortest edge or fixed size).
Image resize_to(const Image& image, const ResizeTarget& target, Resample resample);

// HF's center_crop: the crop window centred with floor division; where the
// image is smaller it is first zero-padded to the crop size. Quirk kept for
// equality: when the crop exceeds the image by an odd number of pixels in
// a dimension, HF's result is one pixel short of the crop in that dimension.
Image center_crop(const Image& image, int64_t crop_height, int64_t crop_width);

// Rescale and normalise as the config says (either may be off), writing
// planar CHW float32 into out (3 * height * width floats).
void to_float_normalized(const Image& image, const ImageProcessorConfig& config, float* out);
// The same into a new [3, H, W] float32 tensor.
Tensor to_float_normalized(const Image& image, const ImageProcessorConfig& config);

// BEiT's reduce_label on a segmentation map: 0 (background) -> 255
// (ignore), every other label l -> l - 1, and 255 stays 255.
void reduce_labels(std::span<uint8_t> labels);

class ImageProcessor {
 public:
  explicit ImageProcessor(ImageProcessorConfig config);
  static ImageProcessor bit() { return ImageProcessor(ImageProcessorConfig::bit()); }
  static ImageProcessor beit() { return ImageProcessor(ImageProcessorConfig::beit()); }
  static ImageProcessor from_json_file(const std::filesystem::path& path);

  const ImageProcessorConfig& config() const { return config_; }

  // Resize and crop: the uint8 image the float conversion starts from.
  Image resize_and_crop(const Image& image) const;
  // (height, width) of the output for an input of the given size.
  std::pair<int64_t, int64_t> output_size(int64_t height, int64_t width) const;

  // [N, 3, H, W] float32; every image must come out the same size.
  Tensor operator()(const std::vector<Image>& images) const;
  // [1, 3, H, W] float32.
  Tensor operator()(const Image& image) const;

 private:
  ImageProcessorConfig config_;
};

}  // namespace kiln::data
