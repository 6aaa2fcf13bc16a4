// Training transforms against references written here: closed-form window
// positions, naive padding/cropping/flipping loops, torchvision's formulas
// for to_tensor and normalize in float32, data::resize for the resampling,
// ImageProcessor for the processor step, and a re-statement of
// RandomResizedCrop.get_params driving its own copy of the random stream.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "kiln/core/native.h"
#include "kiln/data/transforms.h"
#include "test_util.h"

namespace {

using namespace kiln;
using namespace kiln::data;

Image pattern_image(int64_t w, int64_t h, int c = 3) {
  Image im(w, h, c);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int ch = 0; ch < c; ++ch) im.row(y)[x * c + ch] = static_cast<uint8_t>((x * 7 + y * 13 + ch * 50) % 256);
  return im;
}

// Pixel (y, x, c) of `im`, or 0 outside it.
int pixel_or_zero(const Image& im, int64_t y, int64_t x, int c) {
  if (y < 0 || x < 0 || y >= im.height || x >= im.width) return 0;
  return im.row(y)[x * im.channels + c];
}

// torchvision's ToTensor then Normalize, in float32, element by element.
std::vector<float> to_tensor_reference(const Image& im, const std::vector<double>& mean = {},
                                       const std::vector<double>& std = {}) {
  std::vector<float> out(static_cast<size_t>(im.channels * im.height * im.width));
  for (int c = 0; c < im.channels; ++c)
    for (int64_t y = 0; y < im.height; ++y)
      for (int64_t x = 0; x < im.width; ++x) {
        float v = static_cast<float>(im.row(y)[x * im.channels + c]) / 255.0f;
        if (!mean.empty()) {
          const float m = static_cast<float>(mean.size() == 1 ? mean[0] : mean[c]);
          const float s = static_cast<float>(std.size() == 1 ? std[0] : std[c]);
          v = (v - m) / s;
        }
        out[static_cast<size_t>((c * im.height + y) * im.width + x)] = v;
      }
  return out;
}

std::vector<float> floats(const Tensor& t) {
  const float* p = t.data_ptr<float>();
  return std::vector<float>(p, p + t.numel());
}

std::vector<int64_t> shape_of(const Tensor& t) { return std::vector<int64_t>(t.sizes().begin(), t.sizes().end()); }

Tensor run(const std::vector<TransformSpec>& specs, const Image& im, uint64_t seed = 0, int64_t index = 0) {
  SampleRng rng(seed, 0, index);
  return Transforms(specs).apply(im, rng);
}

TEST(Transforms, RoundHalfEven) {
  EXPECT_EQ(round_half_even(0.5), 0);
  EXPECT_EQ(round_half_even(1.5), 2);
  EXPECT_EQ(round_half_even(2.5), 2);
  EXPECT_EQ(round_half_even(3.5), 4);
  EXPECT_EQ(round_half_even(-0.5), 0);
  EXPECT_EQ(round_half_even(-1.5), -2);
  EXPECT_EQ(round_half_even(2.4999), 2);
  EXPECT_EQ(round_half_even(2.5001), 3);
}

TEST(Transforms, ToTensorAndNormalizeValues) {
  for (int c : {1, 3, 4}) {
    SCOPED_TRACE(c);
    Image im = pattern_image(5, 4, c);
    Tensor t = run({ToTensorSpec{}}, im);
    EXPECT_EQ(t.dtype(), kFloat32);
    EXPECT_EQ(shape_of(t), (std::vector<int64_t>{c, 4, 5}));
    EXPECT_EQ(floats(t), to_tensor_reference(im));
  }
  Image rgb = pattern_image(6, 3);
  const std::vector<double> mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225};
  EXPECT_EQ(floats(run({ToTensorSpec{}, NormalizeSpec{mean, std}}, rgb)), to_tensor_reference(rgb, mean, std));
  // One value broadcasts over the channels.
  EXPECT_EQ(floats(run({ToTensorSpec{}, NormalizeSpec{{0.5}, {0.25}}}, rgb)), to_tensor_reference(rgb, {0.5}, {0.25}));
  Image grey = pattern_image(6, 3, 1);
  EXPECT_EQ(floats(run({ToTensorSpec{}, NormalizeSpec{{0.2860}, {0.3530}}}, grey)),
            to_tensor_reference(grey, {0.2860}, {0.3530}));
  // Two normalizes apply one after the other, each in float32.
  std::vector<float> twice = to_tensor_reference(rgb, {0.5}, {0.5});
  for (float& v : twice) v = (v - 0.25f) / 2.0f;
  EXPECT_EQ(floats(run({ToTensorSpec{}, NormalizeSpec{{0.5}, {0.5}}, NormalizeSpec{{0.25}, {2.0}}}, rgb)), twice);
  // A mean per channel on a greyscale image is an error naming the transform.
  EXPECT_KILN_ERROR(run({ToTensorSpec{}, NormalizeSpec{mean, std}}, grey), "normalize (transform 1)");
  EXPECT_KILN_ERROR(run({ToTensorSpec{}, NormalizeSpec{mean, std}}, grey), "the image has 1 channel");
}

TEST(Transforms, HorizontalFlip) {
  for (int c : {1, 3}) {
    Image im = pattern_image(7, 3, c);
    Image flipped(7, 3, c);
    for (int64_t y = 0; y < 3; ++y)
      for (int64_t x = 0; x < 7; ++x)
        for (int ch = 0; ch < c; ++ch) flipped.row(y)[x * c + ch] = im.row(y)[(6 - x) * c + ch];
    EXPECT_EQ(floats(run({HorizontalFlipSpec{1.0}, ToTensorSpec{}}, im)), to_tensor_reference(flipped));
    EXPECT_EQ(floats(run({HorizontalFlipSpec{0.0}, ToTensorSpec{}}, im)), to_tensor_reference(im));
    // p = 0.5: flipped exactly when the example's first uniform draw is < 0.5.
    int flips = 0;
    for (int64_t index = 0; index < 200; ++index) {
      const bool expect_flip = SampleRng(3, 0, index).uniform() < 0.5;
      flips += expect_flip;
      EXPECT_EQ(floats(run({HorizontalFlipSpec{0.5}, ToTensorSpec{}}, im, 3, index)),
                to_tensor_reference(expect_flip ? flipped : im));
    }
    EXPECT_GT(flips, 60);
    EXPECT_LT(flips, 140);
  }
  // The input image is never modified.
  Image im = pattern_image(4, 4);
  Image copy = im;
  run({HorizontalFlipSpec{1.0}, ToTensorSpec{}}, im);
  EXPECT_EQ(im.pixels, copy.pixels);
}

TEST(Transforms, RandomCropWithPadding) {
  const RandomCropSpec spec{28, 28, 2};
  Image im = pattern_image(28, 28, 1);
  std::set<int64_t> tops, lefts;
  for (int64_t index = 0; index < 400; ++index) {
    SampleRng a(5, 1, index), b(5, 1, index);
    const CropBox box = random_crop_params(28, 28, spec, a);
    EXPECT_EQ(box, random_crop_params(28, 28, spec, b));  // same stream, same window
    // torchvision: top = randint(0, 32 - 28) on the padded image, in padded coordinates.
    SampleRng c(5, 1, index);
    const int64_t i = c.randint(0, 4), j = c.randint(0, 4);
    EXPECT_EQ(box, (CropBox{i - 2, j - 2, 28, 28}));
    tops.insert(box.top), lefts.insert(box.left);
    if (index < 20) {
      // The transform's pixels: the zero-padded image cropped, built naively.
      Image want(28, 28, 1);
      for (int64_t y = 0; y < 28; ++y)
        for (int64_t x = 0; x < 28; ++x)
          want.row(y)[x] = static_cast<uint8_t>(pixel_or_zero(im, y + i - 2, x + j - 2, 0));
      SampleRng d(5, 1, index);
      EXPECT_EQ(floats(Transforms({spec, ToTensorSpec{}}).apply(im, d)), to_tensor_reference(want));
    }
  }
  EXPECT_EQ(tops, (std::set<int64_t>{-2, -1, 0, 1, 2}));
  EXPECT_EQ(lefts, (std::set<int64_t>{-2, -1, 0, 1, 2}));
  // Exactly the padded size: no draws, the whole padded image.
  SampleRng r(1, 1, 1), untouched(1, 1, 1);
  EXPECT_EQ(random_crop_params(24, 20, RandomCropSpec{28, 24, 2}, r), (CropBox{-2, -2, 28, 24}));
  EXPECT_EQ(r.next_u32(), untouched.next_u32());
  EXPECT_KILN_ERROR(random_crop_params(20, 20, RandomCropSpec{25, 20, 2}, r), "larger than the padded image");
  EXPECT_KILN_ERROR(run({RandomCropSpec{40, 40, 0}, ToTensorSpec{}}, im), "random_crop (transform 0)");
}

TEST(Transforms, CenterCropAsTorchvision) {
  // Crop inside: top = round((H - h) / 2), half to even.
  EXPECT_EQ(center_crop_box(5, 7, 2, 2), (CropBox{2, 2, 2, 2}));    // 1.5 -> 2, 2.5 -> 2
  EXPECT_EQ(center_crop_box(6, 8, 3, 3), (CropBox{2, 2, 3, 3}));    // 1.5 -> 2, 2.5 -> 2
  EXPECT_EQ(center_crop_box(10, 10, 5, 3), (CropBox{2, 4, 5, 3}));  // 2.5 -> 2, 3.5 -> 4
  EXPECT_EQ(center_crop_box(9, 9, 4, 4), (CropBox{2, 2, 4, 4}));    // 2.5 -> 2
  EXPECT_EQ(center_crop_box(4, 4, 4, 4), (CropBox{0, 0, 4, 4}));
  // Larger: zero padding of excess // 2 before (the rest after).
  EXPECT_EQ(center_crop_box(3, 4, 6, 7), (CropBox{-1, -1, 6, 7}));
  EXPECT_EQ(center_crop_box(3, 4, 8, 4), (CropBox{-2, 0, 8, 4}));
  // One dimension larger: that one padded, the other cropped by the rule above.
  EXPECT_EQ(center_crop_box(10, 3, 5, 6), (CropBox{2, -1, 5, 6}));

  Image im = pattern_image(4, 3);
  Image want(7, 6);  // box (-1, -1): image at rows 1..3, cols 1..4
  for (int64_t y = 0; y < 6; ++y)
    for (int64_t x = 0; x < 7; ++x)
      for (int c = 0; c < 3; ++c) want.row(y)[x * 3 + c] = static_cast<uint8_t>(pixel_or_zero(im, y - 1, x - 1, c));
  EXPECT_EQ(floats(run({CenterCropSpec{6, 7}, ToTensorSpec{}}, im)), to_tensor_reference(want));
}

TEST(Transforms, ResizeAgainstDataResize) {
  // Shortest edge: (w 30, h 20) -> edge 10 on the height, width int(10 * 30 / 20) = 15.
  EXPECT_EQ(resize_output_size(20, 30, ResizeSpec{10}), (std::pair<int64_t, int64_t>{10, 15}));
  // Portrait (w 20, h 33): width 8, height int(8 * 33 / 20) = int(13.2) = 13.
  EXPECT_EQ(resize_output_size(33, 20, ResizeSpec{8}), (std::pair<int64_t, int64_t>{13, 8}));
  // Square goes to edge x edge; fixed sizes are taken as given.
  EXPECT_EQ(resize_output_size(17, 17, ResizeSpec{9}), (std::pair<int64_t, int64_t>{9, 9}));
  EXPECT_EQ(resize_output_size(17, 30, ResizeSpec{0, 5, 6}), (std::pair<int64_t, int64_t>{5, 6}));

  for (int c : {1, 3}) {
    Image im = pattern_image(30, 20, c);
    for (Resample r : {Resample::Bilinear, Resample::Bicubic, Resample::Nearest}) {
      SCOPED_TRACE(resample_name(r));
      Tensor t = run({ResizeSpec{10, 0, 0, r}, ToTensorSpec{}}, im);
      EXPECT_EQ(shape_of(t), (std::vector<int64_t>{c, 10, 15}));
      EXPECT_EQ(floats(t), to_tensor_reference(resize(im, 15, 10, r)));
      Tensor fixed = run({ResizeSpec{0, 7, 9, r}, ToTensorSpec{}}, im);
      EXPECT_EQ(floats(fixed), to_tensor_reference(resize(im, 9, 7, r)));
    }
  }
}

// torchvision's RandomResizedCrop.get_params restated on the same draws.
CropBox get_params_reference(int64_t height, int64_t width, const RandomResizedCropSpec& s, SampleRng& rng) {
  const double area = double(height) * double(width);
  for (int k = 0; k < 10; ++k) {
    const double target_area = area * rng.uniform(s.scale_min, s.scale_max);
    const double aspect = std::exp(rng.uniform(std::log(s.ratio_min), std::log(s.ratio_max)));
    const double wf = std::sqrt(target_area * aspect), hf = std::sqrt(target_area / aspect);
    const int64_t w = static_cast<int64_t>(std::nearbyint(wf)), h = static_cast<int64_t>(std::nearbyint(hf));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int64_t i = rng.randint(0, height - h);
      const int64_t j = rng.randint(0, width - w);
      return {i, j, h, w};
    }
  }
  const double in_ratio = double(width) / double(height);
  int64_t w = width, h = height;
  if (in_ratio < s.ratio_min) h = static_cast<int64_t>(std::nearbyint(w / s.ratio_min));
  if (in_ratio > s.ratio_max) w = static_cast<int64_t>(std::nearbyint(h * s.ratio_max));
  return {(height - h) / 2, (width - w) / 2, h, w};
}

TEST(Transforms, RandomResizedCropParams) {
  const RandomResizedCropSpec spec{32, 32};  // scale (0.08, 1), ratio (3/4, 4/3)
  // A square image rejects tall and wide windows alike, so the accepted
  // ratios stay symmetric (on 4:3, tall ones would be rejected more often).
  const int64_t H = 500, W = 500;
  double log_ratio_sum = 0, area_sum = 0;
  const int n = 4000;
  for (int64_t index = 0; index < n; ++index) {
    SampleRng a(11, 2, index), b(11, 2, index), c(11, 2, index);
    const CropBox box = random_resized_crop_params(H, W, spec, a);
    EXPECT_EQ(box, random_resized_crop_params(H, W, spec, b));
    EXPECT_EQ(box, get_params_reference(H, W, spec, c));
    ASSERT_GE(box.top, 0);
    ASSERT_GE(box.left, 0);
    ASSERT_LE(box.top + box.height, H);
    ASSERT_LE(box.left + box.width, W);
    // Within the scale and ratio bounds up to the rounding of w and h.
    const double frac = double(box.height * box.width) / double(H * W);
    const double ratio = double(box.width) / double(box.height);
    EXPECT_GE(frac, 0.08 * (1 - 2.0 / 30));
    EXPECT_LE(frac, 1.0);
    EXPECT_GE(ratio, 0.75 * (1 - 1.0 / 30));
    EXPECT_LE(ratio, 4.0 / 3.0 * (1 + 1.0 / 30));
    log_ratio_sum += std::log(ratio);
    area_sum += frac;
  }
  // Log-uniform ratio symmetric around 1: mean log ratio near 0 (sd of one
  // draw ~ 0.166). Area uniform in [0.08, 1] apart from rejected tries
  // (large windows far from square do not fit): mean a little under 0.54.
  EXPECT_NEAR(log_ratio_sum / n, 0.0, 6 * 0.166 / std::sqrt(n) + 0.01);
  EXPECT_GT(area_sum / n, 0.40);
  EXPECT_LT(area_sum / n, 0.56);

  // No window fits a 1000x10 strip with scale >= 0.9: the fallback is the
  // centre crop with the ratio clamped to 4/3: h = 10, w = round(13.33) = 13.
  SampleRng r(1, 1, 1);
  RandomResizedCropSpec strip{8, 8, 0.9, 1.0};
  EXPECT_EQ(random_resized_crop_params(10, 1000, strip, r), (CropBox{0, 493, 10, 13}));
  // Tall: w = 10, h = round(10 / 0.75) = 13, top = (1000 - 13) // 2.
  EXPECT_EQ(random_resized_crop_params(1000, 10, strip, r), (CropBox{493, 0, 13, 10}));
  // Ratio inside the range (a scale over 1 never fits): the whole image.
  EXPECT_EQ(random_resized_crop_params(10, 10, {8, 8, 2.0, 3.0}, r), (CropBox{0, 0, 10, 10}));
}

TEST(Transforms, RandomResizedCropPixelsAgainstDataResize) {
  for (int c : {1, 3}) {
    Image im = pattern_image(64, 48, c);
    const RandomResizedCropSpec spec{32, 24, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0, Resample::Bilinear};
    for (int64_t index = 0; index < 20; ++index) {
      SampleRng a(2, 0, index), b(2, 0, index);
      const CropBox box = random_resized_crop_params(48, 64, spec, a);
      Image cropped(box.width, box.height, c);
      for (int64_t y = 0; y < box.height; ++y)
        for (int64_t x = 0; x < box.width; ++x)
          for (int ch = 0; ch < c; ++ch)
            cropped.row(y)[x * c + ch] = static_cast<uint8_t>(pixel_or_zero(im, box.top + y, box.left + x, ch));
      Tensor t = Transforms({spec, ToTensorSpec{}}).apply(im, b);
      EXPECT_EQ(shape_of(t), (std::vector<int64_t>{c, 32, 24}));
      EXPECT_EQ(floats(t), to_tensor_reference(resize(cropped, 24, 32, Resample::Bilinear)));
    }
  }
}

TEST(Transforms, ProcessorMatchesImageProcessor) {
  Image im = pattern_image(50, 37);
  const ImageProcessorConfig bit = ImageProcessorConfig::bit();
  Tensor want = ImageProcessor(bit)(im);  // [1, 3, 224, 224]
  SampleRng rng(0, 0, 0);
  Tensor got = Transforms({ProcessorSpec{bit}}).apply(im, rng);
  EXPECT_EQ(shape_of(got), (std::vector<int64_t>{3, 224, 224}));
  EXPECT_EQ(floats(got), floats(want));
  // Pixel transforms before it and a normalize after it compose.
  Image flipped = im;
  hflip_inplace(flipped);
  std::vector<float> expected = floats(ImageProcessor(bit)(flipped));
  for (float& v : expected) v = (v - 0.5f) / 2.0f;
  EXPECT_EQ(floats(run({HorizontalFlipSpec{1.0}, ProcessorSpec{bit}, NormalizeSpec{{0.5}, {2.0}}}, im)), expected);
  // HF's processors take RGB only.
  EXPECT_KILN_ERROR(run({ProcessorSpec{bit}}, pattern_image(8, 8, 1)), "need RGB images (3 channels), got 1");
}

TEST(Transforms, OutputShapeApplyIntoAndRandomFlag) {
  Transforms t({ResizeSpec{16}, CenterCropSpec{12, 10}, HorizontalFlipSpec{}, ToTensorSpec{}});
  EXPECT_EQ(t.output_shape(3, 40, 50), (std::vector<int64_t>{3, 12, 10}));
  EXPECT_TRUE(t.random());
  EXPECT_FALSE(Transforms({ResizeSpec{16}, ToTensorSpec{}}).random());
  EXPECT_TRUE(Transforms({RandomCropSpec{4, 4}, ToTensorSpec{}}).random());
  EXPECT_TRUE(Transforms({RandomResizedCropSpec{}, ToTensorSpec{}}).random());
  EXPECT_EQ(Transforms({ResizeSpec{16}, ToTensorSpec{}}).output_shape(1, 40, 20), (std::vector<int64_t>{1, 32, 16}));
  EXPECT_EQ(Transforms().output_shape(4, 3, 2), (std::vector<int64_t>{4, 3, 2}));

  Image im = pattern_image(50, 40);
  SampleRng a(1, 2, 3), b(1, 2, 3), c(1, 2, 3);
  std::vector<float> v;
  EXPECT_EQ(t.apply_into(im, a, v), (std::vector<int64_t>{3, 12, 10}));
  EXPECT_EQ(v.size(), 360u);
  EXPECT_EQ(v, floats(t.apply(im, b)));
  std::vector<float> small(359);
  EXPECT_KILN_ERROR(t.apply_into(im, c, small.data(), 359), "does not fit");
}

TEST(Transforms, Validation) {
  EXPECT_KILN_ERROR(Transforms({HorizontalFlipSpec{}}), "needs one to_tensor or processor");
  EXPECT_KILN_ERROR(Transforms({ToTensorSpec{}, ToTensorSpec{}}),
                    "to_tensor (transform 1) comes after to_tensor (transform 0)");
  EXPECT_KILN_ERROR(Transforms({ToTensorSpec{}, HorizontalFlipSpec{}}),
                    "horizontal_flip (transform 1) works on uint8 images");
  EXPECT_KILN_ERROR(Transforms({NormalizeSpec{{0.5}, {0.5}}, ToTensorSpec{}}),
                    "normalize (transform 0) must come after");
  EXPECT_KILN_ERROR(Transforms({HorizontalFlipSpec{1.5}, ToTensorSpec{}}),
                    "horizontal_flip (transform 0): p must be in [0, 1]");
  EXPECT_KILN_ERROR(Transforms({RandomResizedCropSpec{0, 4}, ToTensorSpec{}}),
                    "random_resized_crop (transform 0): size");
  EXPECT_KILN_ERROR(Transforms({RandomResizedCropSpec{4, 4, 0.5, 0.2}, ToTensorSpec{}}),
                    "scale must be an ordered positive range");
  EXPECT_KILN_ERROR(Transforms({RandomResizedCropSpec{4, 4, 0.1, 1.0, 0.0, 1.0}, ToTensorSpec{}}), "ratio must be");
  EXPECT_KILN_ERROR(Transforms({RandomCropSpec{4, 4, -1}, ToTensorSpec{}}), "padding must be >= 0");
  EXPECT_KILN_ERROR(Transforms({ResizeSpec{}, ToTensorSpec{}}), "resize (transform 0)");
  EXPECT_KILN_ERROR(Transforms({CenterCropSpec{3, 0}, ToTensorSpec{}}), "center_crop (transform 0)");
  EXPECT_KILN_ERROR(Transforms({ToTensorSpec{}, NormalizeSpec{{0.5}, {0.0}}}),
                    "normalize (transform 1): std has a zero");
  EXPECT_KILN_ERROR(Transforms({ToTensorSpec{}, NormalizeSpec{{}, {1.0}}}), "must not be empty");
  ImageProcessorConfig bad = ImageProcessorConfig::bit();
  bad.crop_height = 0;
  EXPECT_KILN_ERROR(Transforms({ProcessorSpec{bad}}), "processor (transform 0)");
  EXPECT_STREQ(transform_name(RandomResizedCropSpec{}), "random_resized_crop");
  EXPECT_STREQ(transform_name(ProcessorSpec{}), "processor");
}

TEST(Transforms, GreyscaleResizeIsAChannelOfRgb) {
  // Channels are filtered independently: a greyscale image resizes to the
  // red channel of the same image as R = G = B.
  Image grey = pattern_image(23, 17, 1);
  Image rgb(23, 17, 3);
  for (size_t i = 0; i < grey.pixels.size(); ++i)
    for (int c = 0; c < 3; ++c) rgb.pixels[i * 3 + c] = grey.pixels[i];
  for (Resample r : {Resample::Bilinear, Resample::Bicubic, Resample::Lanczos, Resample::Nearest}) {
    Image a = resize(grey, 9, 30, r), b = resize(rgb, 9, 30, r);
    ASSERT_EQ(a.channels, 1);
    ASSERT_EQ(b.channels, 3);
    for (size_t i = 0; i < a.pixels.size(); ++i)
      ASSERT_EQ(a.pixels[i], b.pixels[i * 3]) << resample_name(r) << " " << i;
  }
  // A greyscale PNG written and read back comes out RGB (as convert("RGB")).
  const std::vector<uint8_t> png = encode_png(grey);
  Image back = decode_image(png, "grey.png");
  ASSERT_EQ(back.channels, 3);
  for (size_t i = 0; i < grey.pixels.size(); ++i) ASSERT_EQ(back.pixels[i * 3 + 1], grey.pixels[i]);
  EXPECT_KILN_ERROR(encode_png(Image(2, 2, 2)), "only greyscale (1 channel) or RGB (3 channels)");
}

TEST(Transforms, CropAndFlipHelpers) {
  Image im = pattern_image(5, 4, 3);
  Image out = crop(im, {-1, 2, 3, 4});
  ASSERT_EQ(out.width, 4);
  ASSERT_EQ(out.height, 3);
  ASSERT_EQ(out.channels, 3);
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(out.row(y)[x * 3 + c], pixel_or_zero(im, y - 1, x + 2, c));
  Image outside = crop(im, {10, 10, 2, 2});
  EXPECT_EQ(outside.pixels, std::vector<uint8_t>(12, 0));
  Image twice = im;
  hflip_inplace(twice);
  EXPECT_NE(twice.pixels, im.pixels);
  hflip_inplace(twice);
  EXPECT_EQ(twice.pixels, im.pixels);
}

}  // namespace
