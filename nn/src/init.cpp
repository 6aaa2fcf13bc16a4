// torch.nn.init's formulas on Kiln's generator. Fills go through
// kiln::native::random_ (which takes a generator and bumps the version
// counter); everything runs under NoGradGuard so parameters that require
// grad can be filled in place.
#include "kiln/nn/init.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/autograd/grad_mode.h"
#include "kiln/core/error.h"
#include "kiln/core/native.h"

namespace kiln::nn::init {
namespace {

void check_floating(const Tensor& t, const char* op) {
  KILN_CHECK(t.defined(), op, ": the tensor is undefined");
  KILN_CHECK(t.is_floating_point(), op, ": expected a floating-point tensor, got dtype ", dtype_name(t.dtype()),
             " (shape ", t.sizes(), ")");
}

void fill(const Tensor& t, RandomKind kind, double a, double b, Generator* gen) {
  native::random_(t, RandomSpec{kind, a, b, {}}, gen);
}

double norm_cdf(double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); }

int64_t correct_fan(const Tensor& tensor, FanMode mode) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  return mode == FanMode::FanIn ? fan_in : fan_out;
}

// Rounds a bound to the tensor's dtype, so comparisons agree with the values
// the tensor can hold.
double in_dtype(double v, DType dtype) { return native::scalar_tensor(v, dtype).item<double>(); }

}  // namespace

double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param) {
  switch (nonlinearity) {
    case Nonlinearity::Linear:
    case Nonlinearity::Conv1D:
    case Nonlinearity::Conv2D:
    case Nonlinearity::Conv3D:
    case Nonlinearity::ConvTranspose1D:
    case Nonlinearity::ConvTranspose2D:
    case Nonlinearity::ConvTranspose3D:
    case Nonlinearity::Sigmoid:
      return 1.0;
    case Nonlinearity::Tanh:
      return 5.0 / 3.0;
    case Nonlinearity::ReLU:
      return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: {
      const double slope = param.value_or(0.01);
      return std::sqrt(2.0 / (1.0 + slope * slope));
    }
    case Nonlinearity::SELU:
      return 3.0 / 4.0;
  }
  KILN_ERROR("calculate_gain: unknown nonlinearity");
}

std::tuple<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor) {
  KILN_CHECK(tensor.defined(), "calculate_fan_in_and_fan_out: the tensor is undefined");
  KILN_CHECK(tensor.dim() >= 2,
             "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions (got shape ",
             tensor.sizes(), ")");
  int64_t receptive_field = 1;
  for (int64_t d = 2; d < tensor.dim(); ++d) receptive_field *= tensor.size(d);
  return {tensor.size(1) * receptive_field, tensor.size(0) * receptive_field};
}

Tensor uniform_(Tensor tensor, double low, double high, Generator* gen) {
  check_floating(tensor, "uniform_");
  KILN_CHECK(low <= high, "uniform_: expects low <= high, got low=", low, " high=", high);
  NoGradGuard no_grad;
  fill(tensor, RandomKind::Uniform, low, high, gen);
  return tensor;
}

Tensor normal_(Tensor tensor, double mean, double std, Generator* gen) {
  check_floating(tensor, "normal_");
  KILN_CHECK(std >= 0.0, "normal_: expects std >= 0.0, got std=", std);
  NoGradGuard no_grad;
  fill(tensor, RandomKind::Normal, mean, std, gen);
  return tensor;
}

// Positions i (into `among`, or 0..n-1 when empty) where mask[i] is true;
// the mask is read on the host.
std::vector<int64_t> true_positions(const Tensor& mask, const std::vector<int64_t>& among) {
  Tensor host = native::contiguous(native::to(mask, Device(kCPU)));
  const bool* m = host.data_ptr<bool>();
  std::vector<int64_t> out;
  for (int64_t i = 0; i < host.numel(); ++i)
    if (m[i]) out.push_back(among.empty() ? i : among[static_cast<size_t>(i)]);
  return out;
}

// Exact truncated-normal samples by rejection, as current torch: when the
// interval holds much of the mass, redraw normals that fall outside it;
// otherwise draw uniformly on [a, b] and accept with probability
// pdf(x) / pdf(mode). Unlike torch, each round draws only for the elements
// still rejected, so a low acceptance rate costs rounds on a shrinking set
// rather than full-size draws.
Tensor trunc_normal_(Tensor tensor, double mean, double std, double a, double b, Generator* gen) {
  check_floating(tensor, "trunc_normal_");
  KILN_CHECK(std >= 0.0, "trunc_normal_: expects std >= 0.0, got std=", std);
  KILN_CHECK(a <= b, "trunc_normal_: expects a <= b, got a=", a, " b=", b);
  NoGradGuard no_grad;
  if (tensor.numel() == 0) return tensor;
  if (std == 0.0) {
    native::fill_(tensor, std::clamp(mean, a, b));
    return tensor;
  }
  const double mass = norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std);
  const bool redraw_normals = mass > 0.3;
  KILN_CHECK(redraw_normals || (std::isfinite(a) && std::isfinite(b)), "trunc_normal_: [a, b] = [", a, ", ", b,
             "] holds under 30% of N(", mean, ", ", std, "^2) and is unbounded; give finite bounds");
  const DType dtype = tensor.dtype();
  const TensorOptions options = tensor.options();
  // Bounds as the tensor's dtype holds them, so the test agrees with the
  // values stored.
  const double lo = in_dtype(a, dtype), hi = in_dtype(b, dtype);
  const double mode = std::clamp(mean, a, b);
  const double log_peak = -0.5 * ((mode - mean) / std) * ((mode - mean) / std);
  auto propose = [&](int64_t n) {
    Tensor t = native::empty({n}, options);
    if (redraw_normals) {
      fill(t, RandomKind::Normal, mean, std, gen);
    } else {
      fill(t, RandomKind::Uniform, a, b, gen);
    }
    return t;
  };
  auto rejected = [&](const Tensor& x) {
    if (redraw_normals) return kiln::logical_or(kiln::lt(x, lo), kiln::gt(x, hi));
    // log U > log(pdf(x) / pdf(mode)).
    Tensor z = kiln::div(kiln::sub(x, mean), std);
    Tensor log_ratio = kiln::sub(kiln::mul(kiln::square(z), -0.5), log_peak);
    Tensor u = native::empty({x.numel()}, options);
    fill(u, RandomKind::Uniform, 0.0, 1.0, gen);
    return kiln::gt(kiln::log(u), log_ratio);
  };
  Tensor result = propose(tensor.numel());
  std::vector<int64_t> pending = true_positions(rejected(result), {});
  while (!pending.empty()) {
    const auto n = static_cast<int64_t>(pending.size());
    Tensor candidates = propose(n);
    Tensor index = native::to(native::tensor(pending), tensor.device());
    result = native::scatter(result, 0, index, candidates);
    pending = true_positions(rejected(candidates), pending);
  }
  native::copy_(tensor, native::reshape(result, tensor.sizes()));
  return tensor;
}

Tensor constant_(Tensor tensor, const Scalar& value) {
  KILN_CHECK(tensor.defined(), "constant_: the tensor is undefined");
  NoGradGuard no_grad;
  native::fill_(tensor, value);
  return tensor;
}

Tensor zeros_(Tensor tensor) { return constant_(std::move(tensor), 0); }
Tensor ones_(Tensor tensor) { return constant_(std::move(tensor), 1); }

Tensor xavier_uniform_(Tensor tensor, double gain, Generator* gen) {
  check_floating(tensor, "xavier_uniform_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  const double bound = std::sqrt(3.0) * std;
  return uniform_(std::move(tensor), -bound, bound, gen);
}

Tensor xavier_normal_(Tensor tensor, double gain, Generator* gen) {
  check_floating(tensor, "xavier_normal_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  return normal_(std::move(tensor), 0.0, std, gen);
}

Tensor kaiming_uniform_(Tensor tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator* gen) {
  check_floating(tensor, "kaiming_uniform_");
  if (tensor.numel() == 0) return tensor;
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(correct_fan(tensor, mode)));
  const double bound = std::sqrt(3.0) * std;
  return uniform_(std::move(tensor), -bound, bound, gen);
}

Tensor kaiming_normal_(Tensor tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator* gen) {
  check_floating(tensor, "kaiming_normal_");
  if (tensor.numel() == 0) return tensor;
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(correct_fan(tensor, mode)));
  return normal_(std::move(tensor), 0.0, std, gen);
}

}  // namespace kiln::nn::init
