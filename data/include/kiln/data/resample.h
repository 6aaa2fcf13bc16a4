#pragma once
// Pillow's Image.resize on 8-bit images, reimplemented to give the same bytes.
//
// Every filter but Nearest is Pillow's separable convolution: per output
// pixel a window of input pixels weighted by the filter, its support widened
// by the downscale factor (so downscaling antialiases), the weights
// normalised to sum 1 and then turned into 22-bit fixed-point integers;
// the horizontal pass runs first (only over the rows the vertical pass will
// read), then the vertical one, each rounding and clipping to uint8.
// Nearest is Pillow's affine nearest-neighbour scaling.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kiln/data/image.h"

namespace kiln::data {

// Pillow's numbering (PIL.Image.Resampling), which HF configs store as "resample".
enum class Resample : int { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };

// From Pillow's integer code; kiln::Error for anything else.
Resample resample_from_pil(int64_t code);
const char* resample_name(Resample r);  // "bicubic", ...

// The image resized to width x height (both > 0). Same size: a copy.
Image resize(const Image& image, int64_t width, int64_t height, Resample resample);

// The same on any interleaved 8-bit layout with 1 to 4 channels (a label map
// has 1): src holds height rows of width * channels bytes.
std::vector<uint8_t> resize_interleaved(std::span<const uint8_t> src, int64_t width, int64_t height, int channels,
                                        int64_t out_width, int64_t out_height, Resample resample);

}  // namespace kiln::data
