#pragma once
// Flatten: merges dims start_dim..end_dim, as torch.nn.Flatten (whose
// start_dim defaults to 1, keeping the batch dim).
#include <cstdint>
#include <string>

#include "kiln/nn/functional/options.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

struct FlattenOptions {
  KILN_FUNC_ARG(int64_t, start_dim, 1);
  KILN_FUNC_ARG(int64_t, end_dim, -1);
};

class FlattenImpl : public Module {
 public:
  explicit FlattenImpl(const FlattenOptions& o = {}) : options(o) {}

  Tensor forward(const Tensor& input) { return kiln::flatten(input, options.start_dim(), options.end_dim()); }
  std::string extra_repr() const override {
    return "start_dim=" + std::to_string(options.start_dim()) + ", end_dim=" + std::to_string(options.end_dim());
  }

  FlattenOptions options;
};
KILN_MODULE(Flatten);

}  // namespace kiln::nn
