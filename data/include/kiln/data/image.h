#pragma once
// Decoded images and the JPEG/PNG codecs.
//
// Every decoded image is 8-bit RGB, converted the way Pillow's
// Image.open(f).convert("RGB") does, so the pixels fed to the image
// processors are the ones Hugging Face's processors see:
//   greyscale (1/2/4/8-bit)       -> replicated to R=G=B
//   greyscale 16-bit              -> clipped to 255, replicated (Pillow's I;16 -> RGB)
//   RGB/RGBA/grey+alpha 16-bit    -> the high byte of each sample
//   RGBA, grey+alpha              -> alpha dropped, no compositing
//   palette (with or without tRNS)-> palette colours, transparency dropped
//   CMYK/YCCK JPEG                -> Adobe-inverted CMYK to RGB as Pillow's cmyk2rgb
// The format comes from the file's magic bytes, never its extension.
// Unreadable, unsupported, truncated or corrupt input throws kiln::Error
// naming the file.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace kiln::data {

// 8-bit interleaved pixels. Decoded files are always RGB (channels 3);
// greyscale data sets (IDX) give channels 1, and the transforms keep
// whatever channel count they are given.
struct Image {
  int64_t width = 0, height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;  // HWC uint8, row-major: pixels[(y * width + x) * channels + c]

  Image() = default;
  Image(int64_t w, int64_t h, int c = 3)
      : width(w), height(h), channels(c), pixels(static_cast<size_t>(w * h * c)) {}
  bool empty() const { return width == 0 || height == 0; }
  int64_t row_bytes() const { return width * channels; }
  // Whether pixels holds exactly width * height * channels bytes.
  bool consistent() const {
    return width >= 0 && height >= 0 && channels >= 1 &&
           pixels.size() == static_cast<size_t>(width * height * channels);
  }
  uint8_t* row(int64_t y) { return pixels.data() + y * width * channels; }
  const uint8_t* row(int64_t y) const { return pixels.data() + y * width * channels; }
};

enum class ImageFormat { Unknown, Jpeg, Png };

// The format named by the first bytes (JPEG: FF D8 FF; PNG: its 8-byte signature).
ImageFormat sniff_image_format(std::span<const uint8_t> bytes);

Image decode_image(const std::filesystem::path& path);
// name_for_errors: what error messages call the data (usually its path).
Image decode_image(std::span<const uint8_t> bytes, const std::string& name_for_errors);

// Lossless 8-bit PNG (no interlace, default zlib level), RGB for 3 channels
// and greyscale for 1: for tests and dumps.
std::vector<uint8_t> encode_png(const Image& image);
void write_png(const std::filesystem::path& path, const Image& image);

// The whole file as bytes; kiln::Error naming the path when it cannot be read.
std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path);

}  // namespace kiln::data
