#pragma once
// Reads IDX files, the format MNIST and Fashion-MNIST ship in, gzip'd or
// plain. A stop-gap for the example: the data layer gets its own dataset
// readers later.
//
// IDX layout: two zero bytes, an element-type byte (0x08 = unsigned byte),
// a rank byte, one big-endian uint32 per dimension, then the elements
// row-major.
#include <string>

#include "kiln/core/tensor.h"

namespace kiln::examples {

// A uint8 tensor with the file's shape. Throws kiln::Error naming `path` when
// the file is missing, is not IDX, holds another element type, or is
// truncated or has trailing bytes.
Tensor read_idx(const std::string& path);

}  // namespace kiln::examples
