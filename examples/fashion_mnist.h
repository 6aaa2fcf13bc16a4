#pragma once
// Fashion-MNIST for the examples: the four IDX files of a split as
// normalised float images and int64 labels, and a reproducible shuffle.
#include <cstdint>
#include <random>
#include <string>

#include "kiln/core/tensor.h"

namespace kiln::examples {

// Where Debian's dataset-fashion-mnist package puts the files.
inline const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Images as float32 [N, 1, 28, 28], normalised with the training set's pixel
// mean and std (0.2860, 0.3530); labels as int64 [N]. prefix: "train" or
// "t10k"; limit > 0 keeps only the first `limit` images. Errors name the file.
struct FashionMnistSplit {
  Tensor images, labels;
};
FashionMnistSplit load_fashion_mnist(const std::string& dir, const std::string& prefix, int64_t limit = 0);

// A shuffled 0..n-1 from a fixed-algorithm generator (std::shuffle's output
// is library-specific; this is the same everywhere).
Tensor permutation(int64_t n, std::mt19937_64& rng);

}  // namespace kiln::examples
