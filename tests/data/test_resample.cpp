// Pillow-compatible resampling: byte-exact against Pillow's Image.resize
// (tools/fixtures/image_processors.py), plus closed-form properties.
#include <gtest/gtest.h>

#include "image_fixtures.h"
#include "kiln/data/resample.h"

using namespace kiln;
using namespace kiln::data;
using namespace kiln::testing;

namespace {

const GoldenFile& golden() {
  static GoldenFile file("image_processors/resample.safetensors");
  return file;
}

}  // namespace

TEST(Resample, MatchesPillowByteForByte) {
  const auto& g = golden();
  int compared = 0;
  for (const auto& [name, c] : g.cases.items()) {
    SCOPED_TRACE(name);
    const int64_t w = c["width"], h = c["height"], ch = c["channels"];
    const int64_t ow = c["out_width"], oh = c["out_height"], stride = c["sample_stride"];
    const Resample filter = resample_from_pil(c["pil_filter"].get<int64_t>());
    EXPECT_EQ(resample_name(filter), c["filter"].get<std::string>());
    std::vector<uint8_t> src = pattern(c["pattern"], w, h, ch);
    std::vector<uint8_t> out = resize_interleaved(src, w, h, static_cast<int>(ch), ow, oh, filter);
    ASSERT_EQ(out.size(), static_cast<size_t>(ow * oh * ch));
    std::vector<uint8_t> expected = bytes_of(g.get(name + ".output"));
    std::vector<uint8_t> got = stride == 1 ? out : sample_hwc(out, ow, oh, ch, stride);
    EXPECT_EQ(max_byte_diff(got, expected), 0);
    EXPECT_EQ(got, expected);
    // The checksum covers every byte, including those the stored sample skips.
    EXPECT_EQ(checksum_u8(out.data(), out.size()), c["checksum"].get<std::string>());
    ++compared;
  }
  EXPECT_GT(compared, 80);
}

TEST(Resample, SameSizeIsACopy) {
  Image im = pattern_image("noise", 13, 7);
  for (int f = 0; f <= 5; ++f) {
    Image out = resize(im, 13, 7, resample_from_pil(f));
    EXPECT_EQ(out.width, 13);
    EXPECT_EQ(out.height, 7);
    EXPECT_EQ(out.pixels, im.pixels);
  }
}

TEST(Resample, ConstantImageStaysConstant) {
  // The fixed-point weights of every window sum to 1 within rounding, which
  // cannot move a constant by a whole step, however strong the scaling.
  for (int value : {0, 1, 128, 254, 255}) {
    Image im(37, 23);
    std::fill(im.pixels.begin(), im.pixels.end(), static_cast<uint8_t>(value));
    for (int f = 0; f <= 5; ++f)
      for (auto [w, h] : {std::pair{5, 3}, {80, 61}, {1, 1}, {37, 50}, {12, 23}}) {
        Image out = resize(im, w, h, resample_from_pil(f));
        for (uint8_t v : out.pixels) ASSERT_EQ(v, value) << resample_name(resample_from_pil(f)) << " " << w << "x" << h;
      }
  }
}

TEST(Resample, BoxHalvingIsPairAveragesRoundedUp) {
  // Box filter, exact factor 2: each pass averages two samples with weights
  // 1/2 (exactly 2^21 in fixed point), adding the 1/2 rounding bias:
  // (a + b + 1) / 2, horizontally first, then vertically.
  Image im = pattern_image("noise", 10, 6);
  Image out = resize(im, 5, 3, Resample::Box);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) {
        auto px = [&](int yy, int xx) { return int(im.pixels[(yy * 10 + xx) * 3 + c]); };
        int top = (px(2 * y, 2 * x) + px(2 * y, 2 * x + 1) + 1) / 2;
        int bottom = (px(2 * y + 1, 2 * x) + px(2 * y + 1, 2 * x + 1) + 1) / 2;
        EXPECT_EQ(int(out.pixels[(y * 5 + x) * 3 + c]), (top + bottom + 1) / 2) << x << "," << y << "," << c;
      }
}

TEST(Resample, NearestPicksCentres) {
  // Upscaling by 3 with nearest repeats each pixel 3 times; downscaling by 2
  // takes the pixel under each output centre (input 2x+1, from (x+0.5)*2).
  Image im = pattern_image("noise", 4, 3);
  Image up = resize(im, 12, 9, Resample::Nearest);
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 12; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(up.pixels[(y * 12 + x) * 3 + c], im.pixels[((y / 3) * 4 + x / 3) * 3 + c]);
  Image big = pattern_image("noise", 8, 6);
  Image down = resize(big, 4, 3, Resample::Nearest);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(down.pixels[(y * 4 + x) * 3 + c], big.pixels[((2 * y + 1) * 8 + 2 * x + 1) * 3 + c]);
}

TEST(Resample, ChannelsAreIndependent) {
  // A 3-channel resize equals three 1-channel resizes of its planes.
  const int64_t w = 31, h = 17, ow = 12, oh = 40;
  std::vector<uint8_t> rgb = pattern("mixed", w, h, 3);
  for (int f = 0; f <= 5; ++f) {
    Resample r = resample_from_pil(f);
    std::vector<uint8_t> out = resize_interleaved(rgb, w, h, 3, ow, oh, r);
    for (int c = 0; c < 3; ++c) {
      std::vector<uint8_t> plane(static_cast<size_t>(w * h));
      for (int64_t i = 0; i < w * h; ++i) plane[i] = rgb[i * 3 + c];
      std::vector<uint8_t> one = resize_interleaved(plane, w, h, 1, ow, oh, r);
      for (int64_t i = 0; i < ow * oh; ++i) ASSERT_EQ(one[i], out[i * 3 + c]) << resample_name(r);
    }
  }
}

TEST(Resample, Errors) {
  Image im = pattern_image("noise", 4, 3);
  EXPECT_KILN_ERROR(resize(im, 0, 3, Resample::Bicubic), "output size must be positive");
  EXPECT_KILN_ERROR(resize(im, 3, -1, Resample::Bilinear), "output size must be positive");
  EXPECT_KILN_ERROR(resize(Image(), 3, 3, Resample::Bilinear), "empty");
  Image bad = im;
  bad.pixels.pop_back();
  EXPECT_KILN_ERROR(resize(bad, 3, 3, Resample::Bilinear), "needs 36 bytes");
  std::vector<uint8_t> five(4 * 3 * 5);
  EXPECT_KILN_ERROR(resize_interleaved(five, 4, 3, 5, 2, 2, Resample::Box), "channels must be 1 to 4");
  EXPECT_KILN_ERROR(resample_from_pil(6), "unknown PIL resampling filter 6");
  EXPECT_KILN_ERROR(resample_from_pil(-1), "unknown PIL resampling filter");
}
