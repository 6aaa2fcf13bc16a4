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

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // HWC RGB uint8, row-major: pixels[(y * width + x) * 3 + c]

  Image() = default;
  Image(int64_t w, int64_t h) : width(w), height(h), pixels(static_cast<size_t>(w * h * 3)) {}
  bool empty() const { return width == 0 || height == 0; }
  uint8_t* row(int64_t y) { return pixels.data() + y * width * 3; }
  const uint8_t* row(int64_t y) const { return pixels.data() + y * width * 3; }
};

enum class ImageFormat { Unknown, Jpeg, Png };

// The format named by the first bytes (JPEG: FF D8 FF; PNG: its 8-byte signature).
ImageFormat sniff_image_format(std::span<const uint8_t> bytes);

Image decode_image(const std::filesystem::path& path);
// name_for_errors: what error messages call the data (usually its path).
Image decode_image(std::span<const uint8_t> bytes, const std::string& name_for_errors);

// Lossless 8-bit RGB PNG (no interlace, default zlib level): for tests and dumps.
std::vector<uint8_t> encode_png(const Image& image);
void write_png(const std::filesystem::path& path, const Image& image);

// The whole file as bytes; kiln::Error naming the path when it cannot be read.
std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path);

}  // namespace kiln::data
