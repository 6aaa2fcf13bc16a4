// The transform list: validation, the uint8 stage (one spec after another on
// an Image), and the float stage, which is a per-channel byte -> float table
// because to_tensor, the processor's rescale/normalise and normalize each
// map one byte of one channel to one float. The tables are built from the
// same float32 operations torchvision (and HF, for the processor) perform,
// so table lookups give their values exactly.
#include "kiln/data/transforms.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "kiln/core/error.h"
#include "kiln/core/native/factory.h"

namespace kiln::data {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

bool is_tensor_step(const TransformSpec& spec) {
  return std::holds_alternative<ToTensorSpec>(spec) || std::holds_alternative<ProcessorSpec>(spec);
}

std::string where(const TransformSpec& spec, size_t position) {
  return detail::str(transform_name(spec), " (transform ", position, ")");
}

void validate(const TransformSpec& spec, size_t position) {
  const std::string at = where(spec, position);
  std::visit(Overloaded{
                 [&](const RandomResizedCropSpec& s) {
                   KILN_CHECK(s.height > 0 && s.width > 0, at, ": size must be positive, got ", s.height, "x", s.width);
                   KILN_CHECK(s.scale_min > 0 && s.scale_min <= s.scale_max, at,
                              ": scale must be an ordered positive range, got [", s.scale_min, ", ", s.scale_max, "]");
                   KILN_CHECK(s.ratio_min > 0 && s.ratio_min <= s.ratio_max, at,
                              ": ratio must be an ordered positive range, got [", s.ratio_min, ", ", s.ratio_max, "]");
                 },
                 [&](const RandomCropSpec& s) {
                   KILN_CHECK(s.height > 0 && s.width > 0, at, ": size must be positive, got ", s.height, "x", s.width);
                   KILN_CHECK(s.padding >= 0, at, ": padding must be >= 0, got ", s.padding);
                 },
                 [&](const HorizontalFlipSpec& s) {
                   KILN_CHECK(s.p >= 0 && s.p <= 1, at, ": p must be in [0, 1], got ", s.p);
                 },
                 [&](const ResizeSpec& s) {
                   KILN_CHECK(s.shortest_edge > 0 || (s.height > 0 && s.width > 0), at,
                              ": give a positive shortest_edge or a positive height and width, got shortest_edge ",
                              s.shortest_edge, ", size ", s.height, "x", s.width);
                 },
                 [&](const CenterCropSpec& s) {
                   KILN_CHECK(s.height > 0 && s.width > 0, at, ": size must be positive, got ", s.height, "x", s.width);
                 },
                 [&](const ToTensorSpec&) {},
                 [&](const NormalizeSpec& s) {
                   KILN_CHECK(!s.mean.empty() && !s.std.empty(), at, ": mean and std must not be empty");
                   for (double v : s.std)
                     KILN_CHECK(v != 0 && std::isfinite(v), at, ": std has a zero or non-finite value ", v);
                   for (double v : s.mean) KILN_CHECK(std::isfinite(v), at, ": mean has a non-finite value ", v);
                 },
                 [&](const ProcessorSpec& s) { s.config.validate(at); },
             },
             spec);
}

// float32 values of a channel's 256 bytes after to_tensor or the processor.
std::vector<float> base_table(const TransformSpec& step, int channels) {
  std::vector<float> table(static_cast<size_t>(channels) * 256);
  if (const auto* p = std::get_if<ProcessorSpec>(&step)) {
    // The processor's own conversion on a 256-pixel image holding every byte.
    Image lut(256, 1, 3);
    for (int v = 0; v < 256; ++v)
      for (int c = 0; c < 3; ++c) lut.pixels[static_cast<size_t>(v * 3 + c)] = static_cast<uint8_t>(v);
    to_float_normalized(lut, p->config, table.data());
    return table;
  }
  // torchvision to_tensor: uint8 -> float32, then .div(255) in float32.
  for (int c = 0; c < channels; ++c)
    for (int v = 0; v < 256; ++v) table[static_cast<size_t>(c * 256 + v)] = static_cast<float>(v) / 255.0f;
  return table;
}

}  // namespace

const char* transform_name(const TransformSpec& spec) {
  return std::visit(Overloaded{
                        [](const RandomResizedCropSpec&) { return "random_resized_crop"; },
                        [](const RandomCropSpec&) { return "random_crop"; },
                        [](const HorizontalFlipSpec&) { return "horizontal_flip"; },
                        [](const ResizeSpec&) { return "resize"; },
                        [](const CenterCropSpec&) { return "center_crop"; },
                        [](const ToTensorSpec&) { return "to_tensor"; },
                        [](const NormalizeSpec&) { return "normalize"; },
                        [](const ProcessorSpec&) { return "processor"; },
                    },
                    spec);
}

Transforms::Transforms(std::vector<TransformSpec> specs) : specs_(std::move(specs)) {
  size_t steps = 0;
  for (size_t i = 0; i < specs_.size(); ++i) {
    validate(specs_[i], i);
    if (is_tensor_step(specs_[i])) {
      KILN_CHECK(steps == 0, "Transforms: ", where(specs_[i], i), " comes after ",
                 where(specs_[tensor_step_], tensor_step_), "; give exactly one to_tensor or processor");
      tensor_step_ = i, ++steps;
    } else if (std::holds_alternative<NormalizeSpec>(specs_[i])) {
      KILN_CHECK(steps == 1, "Transforms: ", where(specs_[i], i),
                 " must come after to_tensor or processor (it works on float tensors)");
    } else {
      KILN_CHECK(steps == 0, "Transforms: ", where(specs_[i], i), " works on uint8 images and must come before ",
                 where(specs_[tensor_step_], tensor_step_));
    }
  }
  KILN_CHECK(steps == 1,
             "Transforms: the list needs one to_tensor or processor (the step from uint8 image to float "
             "tensor); got none");

  // One table per channel count the float stage can take.
  tables_.resize(5);
  const bool processor = std::holds_alternative<ProcessorSpec>(specs_[tensor_step_]);
  for (int c = 1; c <= 4; ++c) {
    if (processor && c != 3) continue;
    bool fits = true;
    for (size_t i = tensor_step_ + 1; i < specs_.size(); ++i) {
      const auto& n = std::get<NormalizeSpec>(specs_[i]);
      fits = fits && (n.mean.size() == 1 || n.mean.size() == static_cast<size_t>(c)) &&
             (n.std.size() == 1 || n.std.size() == static_cast<size_t>(c));
    }
    if (!fits) continue;
    std::vector<float> table = base_table(specs_[tensor_step_], c);
    for (size_t i = tensor_step_ + 1; i < specs_.size(); ++i) {
      const auto& n = std::get<NormalizeSpec>(specs_[i]);
      for (int ch = 0; ch < c; ++ch) {
        // torchvision: mean and std become float32 tensors; sub_ then div_ in float32.
        const float mean = static_cast<float>(n.mean.size() == 1 ? n.mean[0] : n.mean[ch]);
        const float std = static_cast<float>(n.std.size() == 1 ? n.std[0] : n.std[ch]);
        for (int v = 0; v < 256; ++v) {
          float& x = table[static_cast<size_t>(ch * 256 + v)];
          x = (x - mean) / std;
        }
      }
    }
    tables_[c] = std::move(table);
  }
}

bool Transforms::random() const {
  for (const auto& spec : specs_)
    if (std::holds_alternative<RandomResizedCropSpec>(spec) || std::holds_alternative<RandomCropSpec>(spec) ||
        std::holds_alternative<HorizontalFlipSpec>(spec))
      return true;
  return false;
}

const std::vector<float>& Transforms::table_for(int channels) const {
  if (channels >= 1 && channels <= 4 && !tables_[channels].empty()) return tables_[channels];
  const TransformSpec& step = specs_[tensor_step_];
  KILN_CHECK(!std::holds_alternative<ProcessorSpec>(step) || channels == 3, "Transforms: ", where(step, tensor_step_),
             ": Hugging Face image processors need RGB images (3 channels), got ", channels, " channel(s)");
  KILN_CHECK(channels >= 1 && channels <= 4, "Transforms: images have 1 to 4 channels, got ", channels);
  for (size_t i = tensor_step_ + 1; i < specs_.size(); ++i) {
    const auto& n = std::get<NormalizeSpec>(specs_[i]);
    KILN_CHECK((n.mean.size() == 1 || n.mean.size() == static_cast<size_t>(channels)) &&
                   (n.std.size() == 1 || n.std.size() == static_cast<size_t>(channels)),
               "Transforms: ", where(specs_[i], i), ": mean has ", n.mean.size(), " and std ", n.std.size(),
               " values but the image has ", channels, " channel(s); give 1 or ", channels);
  }
  KILN_ERROR("Transforms: no float conversion for ", channels, " channels");
}

std::vector<int64_t> Transforms::output_shape(int channels, int64_t height, int64_t width) const {
  KILN_CHECK(height > 0 && width > 0, "Transforms: empty image (", width, "x", height, ")");
  for (size_t i = 0; i < tensor_step_; ++i) {
    std::visit(Overloaded{
                   [&](const RandomResizedCropSpec& s) { height = s.height, width = s.width; },
                   [&](const RandomCropSpec& s) {
                     const int64_t ph = height + 2 * s.padding, pw = width + 2 * s.padding;
                     KILN_CHECK(ph >= s.height && pw >= s.width, "Transforms: ", where(specs_[i], i), ": crop size ",
                                s.height, "x", s.width, " is larger than the padded image (", ph, "x", pw, ")");
                     height = s.height, width = s.width;
                   },
                   [&](const HorizontalFlipSpec&) {},
                   [&](const ResizeSpec& s) { std::tie(height, width) = resize_output_size(height, width, s); },
                   [&](const CenterCropSpec& s) { height = s.height, width = s.width; },
                   [&](const auto&) {},
               },
               specs_[i]);
  }
  if (const auto* p = std::get_if<ProcessorSpec>(&specs_[tensor_step_]))
    std::tie(height, width) = ImageProcessor(p->config).output_size(height, width);
  table_for(channels);  // the float stage must take this channel count
  return {channels, height, width};
}

const Image& Transforms::apply_pixels(const Image& image, SampleRng& rng, Image& current) const {
  KILN_CHECK(image.width > 0 && image.height > 0, "Transforms: empty image (", image.width, "x", image.height, ")");
  KILN_CHECK(image.consistent(), "Transforms: a ", image.width, "x", image.height, "x", image.channels, " image needs ",
             image.width * image.height * image.channels, " bytes, got ", image.pixels.size());
  const Image* in = &image;  // the input is copied only when a step changes pixels in place
  auto replace = [&](Image next) {
    current = std::move(next);
    in = &current;
  };
  for (size_t i = 0; i < tensor_step_; ++i) {
    std::visit(
        Overloaded{
            [&](const RandomResizedCropSpec& s) {
              const CropBox box = random_resized_crop_params(in->height, in->width, s, rng);
              replace(resize(crop(*in, box), s.width, s.height, s.interpolation));
            },
            [&](const RandomCropSpec& s) { replace(crop(*in, random_crop_params(in->height, in->width, s, rng))); },
            [&](const HorizontalFlipSpec& s) {
              if (rng.uniform() < s.p) {
                if (in != &current) replace(*in);
                hflip_inplace(current);
              }
            },
            [&](const ResizeSpec& s) {
              auto [h, w] = resize_output_size(in->height, in->width, s);
              replace(resize(*in, w, h, s.interpolation));
            },
            [&](const CenterCropSpec& s) {
              replace(crop(*in, center_crop_box(in->height, in->width, s.height, s.width)));
            },
            [&](const auto&) {},
        },
        specs_[i]);
  }
  if (const auto* p = std::get_if<ProcessorSpec>(&specs_[tensor_step_])) {
    KILN_CHECK(in->channels == 3, "Transforms: ", where(specs_[tensor_step_], tensor_step_),
               ": Hugging Face image processors need RGB images (3 channels), got ", in->channels, " channel(s)");
    replace(ImageProcessor(p->config).resize_and_crop(*in));
  }
  return *in;
}

std::vector<int64_t> Transforms::apply_into(const Image& image, SampleRng& rng, float* out, int64_t capacity) const {
  Image scratch;
  const Image& ready = apply_pixels(image, rng, scratch);
  const std::vector<float>& table = table_for(ready.channels);
  const int64_t c = ready.channels, plane = ready.width * ready.height;
  KILN_CHECK(c * plane <= capacity, "Transforms: the result (", c, "x", ready.height, "x", ready.width, " = ",
             c * plane, " floats) does not fit in the ", capacity, " floats given");
  // HWC bytes -> CHW floats through the table.
  const uint8_t* src = ready.pixels.data();
  if (c == 1) {
    for (int64_t i = 0; i < plane; ++i) out[i] = table[src[i]];
  } else if (c == 3) {
    const float* t0 = table.data();
    const float* t1 = t0 + 256;
    const float* t2 = t0 + 512;
    float* o0 = out;
    float* o1 = out + plane;
    float* o2 = out + 2 * plane;
    for (int64_t i = 0; i < plane; ++i, src += 3) {
      o0[i] = t0[src[0]];
      o1[i] = t1[src[1]];
      o2[i] = t2[src[2]];
    }
  } else {
    for (int64_t i = 0; i < plane; ++i)
      for (int64_t ch = 0; ch < c; ++ch) out[ch * plane + i] = table[static_cast<size_t>(ch * 256 + src[i * c + ch])];
  }
  return {c, ready.height, ready.width};
}

std::vector<int64_t> Transforms::apply_into(const Image& image, SampleRng& rng, std::vector<float>& out) const {
  std::vector<int64_t> shape = output_shape(image.channels, image.height, image.width);
  out.resize(static_cast<size_t>(shape[0] * shape[1] * shape[2]));
  return apply_into(image, rng, out.data(), static_cast<int64_t>(out.size()));
}

Tensor Transforms::apply(const Image& image, SampleRng& rng) const {
  std::vector<int64_t> shape = output_shape(image.channels, image.height, image.width);
  Tensor t = native::empty(shape, kiln::dtype(kFloat32));
  apply_into(image, rng, t.data_ptr<float>(), t.numel());
  return t;
}

}  // namespace kiln::data
