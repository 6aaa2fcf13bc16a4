#include "fashion_mnist.h"

#include <kiln/kiln.h>

#include <utility>

namespace kiln::examples {

FashionMnistSplit load_fashion_mnist(const std::string& dir, const std::string& prefix, int64_t limit) {
  Tensor images = data::read_idx(dir + "/" + prefix + "-images-idx3-ubyte.gz");
  Tensor labels = data::read_idx(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  KILN_CHECK(images.dim() == 3 && labels.dim() == 1 && images.size(0) == labels.size(0), "Fashion-MNIST ", prefix,
             " images ", images.sizes(), " and labels ", labels.sizes(), " in ", dir, " do not match");
  if (limit > 0 && limit < images.size(0)) {
    images = images.narrow(0, 0, limit);
    labels = labels.narrow(0, 0, limit);
  }
  NoGradGuard no_grad;
  Tensor x = images.to(kFloat32).unsqueeze(1).div(255.0).sub(0.2860).div(0.3530);
  return {x.contiguous(), labels.to(kInt64)};
}

Tensor permutation(int64_t n, std::mt19937_64& rng) {
  Tensor perm = arange(n);
  int64_t* p = perm.data_ptr<int64_t>();
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1))]);
  return perm;
}

}  // namespace kiln::examples
