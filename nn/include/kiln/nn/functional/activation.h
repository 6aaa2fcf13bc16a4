#pragma once
// Activations as thin forwards to the differentiable kiln:: ops, so model code
// can spell everything through kiln::nn::functional as libtorch code does.
#include <optional>
#include <string>

#include "kiln/autograd/functions.h"

namespace kiln::nn::functional {

// approximate: "none" (erf form) or "tanh", as torch.nn.functional.gelu.
inline Tensor gelu(const Tensor& input, const std::string& approximate = "none") {
  return kiln::gelu(input, approximate);
}
inline Tensor relu(const Tensor& input) { return kiln::relu(input); }
inline Tensor silu(const Tensor& input) { return kiln::silu(input); }
inline Tensor tanh(const Tensor& input) { return kiln::tanh(input); }
inline Tensor softmax(const Tensor& input, int64_t dim, std::optional<DType> dtype = std::nullopt) {
  return kiln::softmax(input, dim, dtype);
}
inline Tensor log_softmax(const Tensor& input, int64_t dim, std::optional<DType> dtype = std::nullopt) {
  return kiln::log_softmax(input, dim, dtype);
}

}  // namespace kiln::nn::functional
