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

  const std::vector<TransformSpec>& specs() const { return specs_; }
  // True when any transform draws random numbers.
  bool random() const;

 private:
  std::vector<TransformSpec> specs_;
};

}  // namespace kiln::data
