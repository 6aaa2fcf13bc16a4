#pragma once
// The per-format decoders behind decode_image (private to the data library).
// Each one throws kiln::Error "decode_image: '<name>': ..." on bad input.
#include <cstdint>
#include <span>
#include <string>

#include "kiln/data/image.h"

namespace kiln::data::detail {

// Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS * 2, where it
// raises instead of warning): larger images are refused before allocating.
inline constexpr uint64_t kMaxImagePixels = 2ull * 89478485ull;

Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& name);
Image decode_png(std::span<const uint8_t> bytes, const std::string& name);

}  // namespace kiln::data::detail
