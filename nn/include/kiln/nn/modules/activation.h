#pragma once
// Activation layers: stateless wrappers over the differentiable ops, so they
// can sit in a Sequential and print as PyTorch's.
#include <cstdint>
#include <optional>
#include <string>

#include "kiln/nn/functional/activation.h"
#include "kiln/nn/functional/options.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

class ReLUImpl : public Module {
 public:
  Tensor forward(const Tensor& input) { return kiln::relu(input); }
};
KILN_MODULE(ReLU);

struct GELUOptions {
  GELUOptions(std::string approximate = "none") : approximate_(std::move(approximate)) {}  // NOLINT
  KILN_FUNC_ARG(std::string, approximate, "none");  // "none" (erf) or "tanh"
};

class GELUImpl : public Module {
 public:
  explicit GELUImpl(const GELUOptions& options = {});
  explicit GELUImpl(const std::string& approximate) : GELUImpl(GELUOptions(approximate)) {}
  explicit GELUImpl(const char* approximate) : GELUImpl(GELUOptions(approximate)) {}

  Tensor forward(const Tensor& input) { return kiln::gelu(input, options.approximate()); }
  std::string extra_repr() const override { return "approximate='" + options.approximate() + "'"; }

  GELUOptions options;
};
KILN_MODULE(GELU);

class SiLUImpl : public Module {
 public:
  Tensor forward(const Tensor& input) { return kiln::silu(input); }
};
KILN_MODULE(SiLU);

class TanhImpl : public Module {
 public:
  Tensor forward(const Tensor& input) { return kiln::tanh(input); }
};
KILN_MODULE(Tanh);

class SigmoidImpl : public Module {
 public:
  Tensor forward(const Tensor& input) { return kiln::sigmoid(input); }
};
KILN_MODULE(Sigmoid);

struct SoftmaxOptions {
  SoftmaxOptions(int64_t dim) : dim_(dim) {}  // NOLINT
  KILN_FUNC_ARG(int64_t, dim, -1);
};

class SoftmaxImpl : public Module {
 public:
  explicit SoftmaxImpl(const SoftmaxOptions& o) : options(o) {}
  explicit SoftmaxImpl(int64_t dim) : options(dim) {}

  Tensor forward(const Tensor& input, std::optional<DType> dtype = std::nullopt) {
    return kiln::softmax(input, options.dim(), dtype);
  }
  std::string extra_repr() const override { return "dim=" + std::to_string(options.dim()); }

  SoftmaxOptions options;
};
KILN_MODULE(Softmax);

using LogSoftmaxOptions = SoftmaxOptions;

class LogSoftmaxImpl : public Module {
 public:
  explicit LogSoftmaxImpl(const LogSoftmaxOptions& o) : options(o) {}
  explicit LogSoftmaxImpl(int64_t dim) : options(dim) {}

  Tensor forward(const Tensor& input, std::optional<DType> dtype = std::nullopt) {
    return kiln::log_softmax(input, options.dim(), dtype);
  }
  std::string extra_repr() const override { return "dim=" + std::to_string(options.dim()); }

  LogSoftmaxOptions options;
};
KILN_MODULE(LogSoftmax);

}  // namespace kiln::nn
