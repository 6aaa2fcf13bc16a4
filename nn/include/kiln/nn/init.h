#pragma once
// kiln::nn::init: in-place initialisers with torch.nn.init's formulas and
// libtorch's names. Each fills `tensor` without recording gradients (so it
// works on parameters that require grad), draws from `gen` (Kiln's default
// generator when null) and returns the tensor:
//
//   namespace init = kiln::nn::init;
//   init::trunc_normal_(fc->weight, 0.0, 0.02);
//   init::kaiming_normal_(conv->weight, 0.0, init::kFanOut, init::kReLU);
#include <cstdint>
#include <optional>
#include <tuple>

#include "kiln/autograd/functions.h"

namespace kiln::nn::init {

enum class Nonlinearity {
  Linear,
  Conv1D,
  Conv2D,
  Conv3D,
  ConvTranspose1D,
  ConvTranspose2D,
  ConvTranspose3D,
  Sigmoid,
  Tanh,
  ReLU,
  LeakyReLU,
  SELU,
};
enum class FanMode { FanIn, FanOut };

inline constexpr Nonlinearity kLinear = Nonlinearity::Linear;
inline constexpr Nonlinearity kConv1D = Nonlinearity::Conv1D;
inline constexpr Nonlinearity kConv2D = Nonlinearity::Conv2D;
inline constexpr Nonlinearity kConv3D = Nonlinearity::Conv3D;
inline constexpr Nonlinearity kConvTranspose1D = Nonlinearity::ConvTranspose1D;
inline constexpr Nonlinearity kConvTranspose2D = Nonlinearity::ConvTranspose2D;
inline constexpr Nonlinearity kConvTranspose3D = Nonlinearity::ConvTranspose3D;
inline constexpr Nonlinearity kSigmoid = Nonlinearity::Sigmoid;
inline constexpr Nonlinearity kTanh = Nonlinearity::Tanh;
inline constexpr Nonlinearity kReLU = Nonlinearity::ReLU;
inline constexpr Nonlinearity kLeakyReLU = Nonlinearity::LeakyReLU;
inline constexpr Nonlinearity kSELU = Nonlinearity::SELU;
inline constexpr FanMode kFanIn = FanMode::FanIn;
inline constexpr FanMode kFanOut = FanMode::FanOut;

// torch.nn.init.calculate_gain: 1 for linear/conv/sigmoid, 5/3 for tanh,
// sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky relu (param = the
// negative slope, 0.01 when not given), 3/4 for selu.
double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param = std::nullopt);

// (fan_in, fan_out) of a weight [out, in, *receptive field]: in * prod(rf)
// and out * prod(rf). Needs at least 2 dims.
std::tuple<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor);
inline std::tuple<int64_t, int64_t> _calculate_fan_in_and_fan_out(const Tensor& tensor) {
  return calculate_fan_in_and_fan_out(tensor);
}

// U(low, high); low <= high.
Tensor uniform_(Tensor tensor, double low = 0.0, double high = 1.0, Generator* gen = nullptr);
// N(mean, std^2); std >= 0.
Tensor normal_(Tensor tensor, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
// N(mean, std^2) truncated to [a, b] (absolute bounds, as torch and timm:
// a = -2, b = 2 are two units, not two std), by inverse-CDF sampling then a
// clamp to [a, b]. The inverse error function runs on the host (the values
// are copied back to the tensor's device and dtype).
Tensor trunc_normal_(Tensor tensor, double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0,
                     Generator* gen = nullptr);
Tensor constant_(Tensor tensor, const Scalar& value);
Tensor zeros_(Tensor tensor);
Tensor ones_(Tensor tensor);

// U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out)).
Tensor xavier_uniform_(Tensor tensor, double gain = 1.0, Generator* gen = nullptr);
// N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal_(Tensor tensor, double gain = 1.0, Generator* gen = nullptr);
// U(-bound, bound), bound = sqrt(3) * gain / sqrt(fan), gain =
// calculate_gain(nonlinearity, a), fan by mode. A zero-element tensor is
// returned untouched (torch warns).
Tensor kaiming_uniform_(Tensor tensor, double a = 0.0, FanMode mode = kFanIn, Nonlinearity nonlinearity = kLeakyReLU,
                        Generator* gen = nullptr);
// N(0, std^2), std = gain / sqrt(fan).
Tensor kaiming_normal_(Tensor tensor, double a = 0.0, FanMode mode = kFanIn, Nonlinearity nonlinearity = kLeakyReLU,
                       Generator* gen = nullptr);

}  // namespace kiln::nn::init
