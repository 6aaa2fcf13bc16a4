#pragma once
// Shared by the image tests: the golden files of tools/fixtures/image_processors.py,
// its pattern images and checksum (mirrored here exactly), and the photo folder.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "golden.h"
#include "kiln/data/image.h"

namespace kiln::testing {

inline std::string image_fixture(const std::string& relative) { return fixture_path("image_processors/" + relative); }

// <repo>/../shared/data/images, from KILN_FIXTURES_DIR = <repo>/tests/fixtures.
inline std::filesystem::path photo_dir() {
  return std::filesystem::path(KILN_FIXTURES_DIR).parent_path().parent_path().parent_path() / "shared" / "data" /
         "images";
}

#define KILN_SKIP_WITHOUT_PHOTOS()                                                                         \
  do {                                                                                                     \
    if (!std::filesystem::is_directory(::kiln::testing::photo_dir()))                                      \
      GTEST_SKIP() << "../shared/data/images not found: the photo tests need the workplace's shared data " \
                      "folder (looked in "                                                                 \
                   << ::kiln::testing::photo_dir() << ")";                                                 \
  } while (0)

// pattern() of image_processors.py: uint8 [h, w, c], row-major.
inline std::vector<uint8_t> pattern(const std::string& kind, int64_t w, int64_t h, int64_t c) {
  std::vector<uint8_t> out(static_cast<size_t>(w * h * c));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t ch = 0; ch < c; ++ch) {
        uint32_t noise = static_cast<uint32_t>(x) * 73856093u ^ static_cast<uint32_t>(y) * 19349663u ^
                         static_cast<uint32_t>(ch) * 83492791u;
        noise = (noise * 2654435761u) >> 24;
        uint32_t v;
        if (kind == "noise") {
          v = noise;
        } else if (kind == "ramp") {
          v = static_cast<uint32_t>((y * w + x + ch * 85) % 256);
        } else {
          const int64_t k = ch;
          if (k == 0)
            v = static_cast<uint32_t>(x * 255 / std::max<int64_t>(w - 1, 1));
          else if (k == 1)
            v = ((x / 3 + y / 3) % 2 == 1) ? 255 : 0;
          else if (k == 2)
            v = noise;
          else
            v = static_cast<uint32_t>(y * 255 / std::max<int64_t>(h - 1, 1));
        }
        out[static_cast<size_t>((y * w + x) * c + ch)] = static_cast<uint8_t>(v);
      }
  return out;
}

inline data::Image pattern_image(const std::string& kind, int64_t w, int64_t h) {
  data::Image im;
  im.width = w, im.height = h;
  im.pixels = pattern(kind, w, h, 3);
  return im;
}

// checksum() of image_processors.py, as a decimal string.
inline std::string checksum_u8(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<uint64_t>(p[i]) * (2 * static_cast<uint64_t>(i) + 1);
  return std::to_string(sum);
}
inline std::string checksum_f32(const float* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, p + i, 4);
    sum += static_cast<uint64_t>(bits) * (2 * static_cast<uint64_t>(i) + 1);
  }
  return std::to_string(sum);
}

// A uint8 fixture tensor's bytes.
inline std::vector<uint8_t> bytes_of(const Tensor& t) {
  EXPECT_EQ(t.dtype(), kUInt8);
  const uint8_t* p = t.data_ptr<uint8_t>();
  return {p, p + t.numel()};
}

// Strided sample [::s, ::s] of an interleaved h x w x c uint8 image.
inline std::vector<uint8_t> sample_hwc(const std::vector<uint8_t>& img, int64_t w, int64_t h, int64_t c, int64_t s) {
  std::vector<uint8_t> out;
  for (int64_t y = 0; y < h; y += s)
    for (int64_t x = 0; x < w; x += s)
      for (int64_t k = 0; k < c; ++k) out.push_back(img[static_cast<size_t>((y * w + x) * c + k)]);
  return out;
}

// Largest |a - b| over two equal-length byte vectors (-1 when the lengths differ).
inline int max_byte_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return -1;
  int worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(int(a[i]) - int(b[i])));
  return worst;
}

}  // namespace kiln::testing
