// HF's ACT2FN table, on Kiln's differentiable ops.
#include "kiln/models/activation.h"

#include <cmath>
#include <map>

#include "kiln/core/error.h"

namespace kiln::models {

namespace {

Tensor quick_gelu(const Tensor& x) { return mul(x, sigmoid(mul(x, 1.702))); }

// torch's softplus with its default threshold: linear above 20.
Tensor softplus(const Tensor& x) { return where(gt(x, 20.0), x, log1p(exp(x))); }

const std::map<std::string, Activation>& table() {
  static const std::map<std::string, Activation> activations = {
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"relu2", [](const Tensor& x) { return square(relu(x)); }},
      {"relu6", [](const Tensor& x) { return clamp(x, Scalar(0.0), Scalar(6.0)); }},
      {"leaky_relu", [](const Tensor& x) { return where(gt(x, 0.0), x, mul(x, 0.01)); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_python", [](const Tensor& x) { return gelu(x); }},
      {"gelu_10", [](const Tensor& x) { return clamp(gelu(x), Scalar(-10.0), Scalar(10.0)); }},
      // The tanh approximations HF spells three ways; one formula.
      {"gelu_new", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"gelu_fast", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"gelu_pytorch_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"gelu_accurate", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"quick_gelu", quick_gelu},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"swish", [](const Tensor& x) { return silu(x); }},
      {"mish", [](const Tensor& x) { return mul(x, tanh(softplus(x))); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"linear", [](const Tensor& x) { return x; }},
  };
  return activations;
}

}  // namespace

Activation get_activation(const std::string& name) {
  const auto& activations = table();
  auto it = activations.find(name);
  if (it == activations.end()) {
    std::string known;
    for (const auto& [key, fn] : activations) known += (known.empty() ? "" : ", ") + key;
    KILN_ERROR("unknown activation \"", name, "\"; known: ", known);
  }
  return it->second;
}

}  // namespace kiln::models
