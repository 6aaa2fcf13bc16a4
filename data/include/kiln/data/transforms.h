#pragma once
// Training-time image transforms, torchvision's names and semantics, run by
// the loader's workers: pixel ops on the uint8 image first, then to_tensor
// (or processor) once, then normalize on the float CHW tensor.
//
//   random_resized_crop  torchvision RandomResizedCrop: 10 tries of area in
//                        scale * image area and log-uniform aspect ratio in
//                        ratio, else the centre crop clamped to ratio; then a
//                        resize to size (Pillow-exact resampling)
//   random_crop          torchvision RandomCrop with zero padding first
//   horizontal_flip      with probability p
//   resize               size as shortest edge (one value, aspect kept as
//                        torchvision: the long edge is int(size * long / short))
//                        or exact (height, width)
//   center_crop          torchvision CenterCrop (zero padding when larger)
//   to_tensor            uint8 HWC -> float32 CHW in [0, 1]
//   normalize            (x - mean[c]) / std[c]; one value broadcasts
//   processor            a Hugging Face BiT/BEiT image processor config
//                        (resize, crop, rescale, normalize as HF): the eval
//                        transform for from_pretrained models
// Randomness comes only from the SampleRng handed in, so a transform list
// applied to (seed, epoch, index) gives the same tensor everywhere.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/data/image.h"
#include "kiln/data/image_processor.h"
#include "kiln/data/resample.h"
#include "kiln/data/sample_rng.h"

namespace kiln::data {

struct RandomResizedCropSpec {
  int64_t height = 224, width = 224;
  double scale_min = 0.08, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  Resample interpolation = Resample::Bilinear;
};
struct RandomCropSpec {
  int64_t height = 0, width = 0;
  int64_t padding = 0;  // zeros on every side before cropping
};
struct HorizontalFlipSpec {
  double p = 0.5;
};
struct ResizeSpec {
  // shortest_edge > 0: resize the short side to it; else exactly height x width.
  int64_t shortest_edge = 0;
  int64_t height = 0, width = 0;
  Resample interpolation = Resample::Bilinear;
};
struct CenterCropSpec {
  int64_t height = 0, width = 0;
};
struct ToTensorSpec {};
struct NormalizeSpec {
  std::vector<double> mean, std;
};
struct ProcessorSpec {
  ImageProcessorConfig config;
};

using TransformSpec = std::variant<RandomResizedCropSpec, RandomCropSpec, HorizontalFlipSpec, ResizeSpec,
                                   CenterCropSpec, ToTensorSpec, NormalizeSpec, ProcessorSpec>;

// The name a spec has in configs ("random_resized_crop", ...).
const char* transform_name(const TransformSpec& spec);

// ---- the steps, for the transforms below and for tests ----

// A crop window in the image's coordinates; it may reach outside the image
// (top or left negative, or past the far edge), where crop() fills zeros.
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropBox&) const = default;
};

// Python's round() for the sizes torchvision computes: half to even.
int64_t round_half_even(double x);

// torchvision RandomResizedCrop.get_params on a height x width image: up to
// 10 draws of (area fraction, log aspect ratio); the first window that fits
// takes top = randint(0, H - h), left = randint(0, W - w); else the centre
// crop with the aspect ratio clamped into [ratio_min, ratio_max].
CropBox random_resized_crop_params(int64_t height, int64_t width, const RandomResizedCropSpec& spec, SampleRng& rng);
// torchvision RandomCrop.get_params on the image zero-padded by
// spec.padding, returned in the unpadded image's coordinates. No draws when
// the padded image is exactly the crop size; kiln::Error when it is smaller.
CropBox random_crop_params(int64_t height, int64_t width, const RandomCropSpec& spec, SampleRng& rng);
// torchvision CenterCrop's window: zero padding (left/top get the floor of
// half the excess) where the crop is larger, else top = round((H - h) / 2)
// half to even, likewise left.
CropBox center_crop_box(int64_t height, int64_t width, int64_t crop_height, int64_t crop_width);
// torchvision Resize's output (height, width).
std::pair<int64_t, int64_t> resize_output_size(int64_t height, int64_t width, const ResizeSpec& spec);

// The pixels under `box` (zeros outside the image), any channel count.
Image crop(const Image& image, const CropBox& box);
// Mirror left-right in place.
void hflip_inplace(Image& image);

class Transforms {
 public:
  // Validated here: exactly one to_tensor or processor, pixel transforms
  // before it, normalize after it, positive sizes, 0 <= p <= 1, scale and
  // ratio ranges ordered and positive, std nonzero. kiln::Error names the
  // transform and its position.
  explicit Transforms(std::vector<TransformSpec> specs);
  Transforms() : Transforms(std::vector<TransformSpec>{ToTensorSpec{}}) {}

  // float32 (C, H, W). normalize's mean/std length must be 1 or C.
  Tensor apply(const Image& image, SampleRng& rng) const;
  // The same, written into `out` (C*H*W floats); returns the (C, H, W)
  // shape. For the loader, which writes straight into the batch.
  std::vector<int64_t> apply_into(const Image& image, SampleRng& rng, std::vector<float>& out) const;
  // The same into caller memory with room for `capacity` floats; kiln::Error
  // (before writing) when the result does not fit.
  std::vector<int64_t> apply_into(const Image& image, SampleRng& rng, float* out, int64_t capacity) const;
  // The (C, H, W) an image of this size comes out as (random crops have a
  // fixed size, so this draws nothing). kiln::Error when the transforms
  // cannot take such an image (a crop larger than a padded image, a
  // processor given greyscale, a normalize with the wrong channel count).
  std::vector<int64_t> output_shape(int channels, int64_t height, int64_t width) const;

  const std::vector<TransformSpec>& specs() const { return specs_; }
  // True when any transform draws random numbers.
  bool random() const;

 private:
  // The uint8 stage: every spec before the tensor step. Returns `image`
  // itself when no step changed it, else `scratch`, which holds the result.
  const Image& apply_pixels(const Image& image, SampleRng& rng, Image& scratch) const;
  const std::vector<float>& table_for(int channels) const;

  std::vector<TransformSpec> specs_;
  size_t tensor_step_ = 0;  // index of the to_tensor or processor spec
  // Everything from the tensor step on maps one byte of one channel to one
  // float, so it is a table: tables_[C] holds C * 256 floats, empty when the
  // normalize lengths rule out C channels (and for a processor unless C = 3).
  std::vector<std::vector<float>> tables_;
};

}  // namespace kiln::data
