// ResNetV2 pieces as transformers 4.37's modeling_bit.py builds them. Where
// HF does something surprising we do the same, so its checkpoints give its
// numbers; each such place is marked "HF quirk".
#include "kiln/models/bit/bit_layers.h"

#include <cmath>
#include <sstream>

#include "kiln/core/error.h"
#include "kiln/nn/functional/conv.h"
#include "kiln/nn/functional/dropout.h"
#include "kiln/nn/functional/normalization.h"
#include "kiln/nn/functional/padding.h"
#include "kiln/nn/functional/pooling.h"
#include "kiln/nn/init.h"

namespace kiln::models {

namespace F = nn::functional;

int64_t bit_make_div(double value, int64_t divisor) {
  int64_t rounded = static_cast<int64_t>(value + divisor / 2.0) / divisor * divisor;
  int64_t result = std::max(divisor, rounded);
  if (static_cast<double>(result) < 0.9 * value) result += divisor;
  return result;
}

// ---- DynamicPad2d ----

DynamicPad2dImpl::DynamicPad2dImpl(int64_t kernel_size, int64_t stride, int64_t dilation, double value)
    : kernel_size(kernel_size), stride(stride), dilation(dilation), value(value) {}

namespace {
// Total padding so that ceil(size / stride) windows fit (TF "SAME").
int64_t same_padding(int64_t size, int64_t k, int64_t s, int64_t d) {
  int64_t out = (size + s - 1) / s;
  return std::max<int64_t>((out - 1) * s + (k - 1) * d + 1 - size, 0);
}
}  // namespace

Tensor DynamicPad2dImpl::forward(const Tensor& input) {
  KILN_CHECK(input.dim() >= 2, "DynamicPad2d: input must have at least 2 dims, got ", input.sizes());
  const int64_t ph = same_padding(input.size(-2), kernel_size, stride, dilation);
  const int64_t pw = same_padding(input.size(-1), kernel_size, stride, dilation);
  if (ph == 0 && pw == 0) return input;
  // The odd pixel goes right and bottom.
  return F::pad(input, {pw / 2, pw - pw / 2, ph / 2, ph - ph / 2}, value);
}

std::string DynamicPad2dImpl::extra_repr() const {
  std::ostringstream os;
  os << "kernel_size=" << kernel_size << ", stride=" << stride << ", dilation=" << dilation << ", value=" << value;
  return os.str();
}

// ---- WeightStandardizedConv2d ----

WeightStandardizedConv2dImpl::WeightStandardizedConv2dImpl(int64_t in_channels, int64_t out_channels,
                                                           int64_t kernel_size, int64_t stride,
                                                           const std::optional<std::string>& padding,
                                                           int64_t dilation, int64_t groups, bool bias, double eps)
    : in_channels(in_channels),
      out_channels(out_channels),
      kernel_size(kernel_size),
      stride(stride),
      static_padding(0),
      dilation(dilation),
      groups(groups),
      eps(eps) {
  KILN_CHECK(in_channels > 0 && out_channels > 0 && kernel_size > 0 && stride > 0 && dilation > 0 && groups > 0,
             "WeightStandardizedConv2d: sizes must be positive (in ", in_channels, ", out ", out_channels,
             ", kernel ", kernel_size, ", stride ", stride, ", dilation ", dilation, ", groups ", groups, ")");
  KILN_CHECK(in_channels % groups == 0 && out_channels % groups == 0, "WeightStandardizedConv2d: in_channels ",
             in_channels, " and out_channels ", out_channels, " must be divisible by groups ", groups);
  // HF's get_padding_value: symmetric PyTorch-style padding when unset; for
  // "SAME", static when stride 1 and the window is odd-sized, else worked
  // out per input (DynamicPad2d); "VALID" pads nothing.
  const int64_t symmetric = ((stride - 1) + dilation * (kernel_size - 1)) / 2;
  if (!padding) {
    static_padding = symmetric;
  } else if (*padding == "SAME" || *padding == "same") {
    if (stride == 1 && (dilation * (kernel_size - 1)) % 2 == 0) {
      static_padding = symmetric;
    } else {
      pad = register_module("pad", DynamicPad2d(kernel_size, stride, dilation));
    }
  } else if (*padding == "VALID" || *padding == "valid") {
    static_padding = 0;
  } else {
    static_padding = symmetric;
  }
  weight = register_parameter("weight", empty({out_channels, in_channels / groups, kernel_size, kernel_size}));
  if (bias) this->bias = register_parameter("bias", empty({out_channels}));
  // PyTorch's Conv2d default initialisation (the model re-initialises).
  nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias) {
    auto [fan_in, fan_out] = nn::init::calculate_fan_in_and_fan_out(weight);
    double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    nn::init::uniform_(this->bias, -bound, bound);
  }
}

Tensor WeightStandardizedConv2dImpl::standardized_weight() const {
  // Per output channel over (in/groups, kH, kW): batch_norm in training mode on
  // [1, out, fan_in] is exactly HF's formula (biased variance, eps inside the sqrt).
  Tensor flat = reshape(weight, {1, out_channels, -1});
  return reshape(F::batch_norm(flat, Tensor(), Tensor(), Tensor(), Tensor(), /*training=*/true, 0.0, eps),
                 weight.sizes());
}

Tensor WeightStandardizedConv2dImpl::forward(const Tensor& input) {
  Tensor x = pad ? pad->forward(input) : input;
  return F::conv2d(x, standardized_weight(),
                   F::Conv2dFuncOptions().bias(bias).stride(stride).padding(static_padding).dilation(dilation).groups(
                       groups));
}

std::string WeightStandardizedConv2dImpl::extra_repr() const {
  std::ostringstream os;
  os << in_channels << ", " << out_channels << ", kernel_size=(" << kernel_size << ", " << kernel_size
     << "), stride=(" << stride << ", " << stride << ")";
  if (static_padding) os << ", padding=(" << static_padding << ", " << static_padding << ")";
  if (dilation != 1) os << ", dilation=(" << dilation << ", " << dilation << ")";
  if (groups != 1) os << ", groups=" << groups;
  if (!bias.defined()) os << ", bias=False";
  os << ", eps=" << eps;
  return os.str();
}

// ---- BitGroupNormActivation ----

BitGroupNormActivationImpl::BitGroupNormActivationImpl(const BitConfig& config, int64_t num_channels, double eps,
                                                       bool affine, bool apply_activation)
    : num_groups(config.num_groups), num_channels(num_channels), eps(eps) {
  KILN_CHECK(num_groups > 0 && num_channels % num_groups == 0, "BitGroupNormActivation: num_channels ", num_channels,
             " must be divisible by num_groups ", num_groups);
  if (affine) {
    weight = register_parameter("weight", ones({num_channels}));
    bias = register_parameter("bias", zeros({num_channels}));
  }
  if (apply_activation) {
    activation = get_activation(config.hidden_act);
    activation_name = config.hidden_act;
  }
}

Tensor BitGroupNormActivationImpl::forward(const Tensor& input) {
  Tensor x = F::group_norm(input, num_groups, weight, bias, eps);
  return activation ? activation(x) : x;
}

std::string BitGroupNormActivationImpl::extra_repr() const {
  std::ostringstream os;
  os << num_groups << ", " << num_channels << ", eps=" << eps << ", affine=" << (weight.defined() ? "True" : "False");
  if (activation) os << ", activation=" << activation_name;
  return os.str();
}

// ---- BitMaxPool2d ----

BitMaxPool2dImpl::BitMaxPool2dImpl(int64_t kernel_size, int64_t stride, bool use_dynamic_padding)
    : kernel_size(kernel_size), stride(stride) {
  // HF quirk: the TF-style padding of the stem's max-pool pads with zeros,
  // not -inf, so a negative border (pre-activation stems have no ReLU
  // before the pool) is clipped at 0 there.
  if (use_dynamic_padding) pad = register_module("pad", DynamicPad2d(kernel_size, stride, 1, 0.0));
}

Tensor BitMaxPool2dImpl::forward(const Tensor& input) {
  Tensor x = pad ? pad->forward(input) : input;
  return F::max_pool2d(x, F::MaxPool2dFuncOptions(kernel_size).stride(stride));
}

std::string BitMaxPool2dImpl::extra_repr() const {
  std::ostringstream os;
  os << "kernel_size=" << kernel_size << ", stride=" << stride << ", dynamic_padding=" << (pad ? "True" : "False");
  return os.str();
}

// ---- BitEmbeddings ----

BitEmbeddingsImpl::BitEmbeddingsImpl(const BitConfig& config) : num_channels(config.num_channels) {
  convolution = register_module("convolution", WeightStandardizedConv2d(config.num_channels, config.embedding_size,
                                                                        7, 2, config.global_padding, 1, 1, false,
                                                                        1e-8));
  pooler = register_module("pooler", BitMaxPool2d(3, 2, config.embedding_dynamic_padding));
  pad_before_pool = !(config.global_padding && *config.global_padding == "SAME");
  if (config.layer_type != "preactivation") {
    norm = register_module("norm", BitGroupNormActivation(config, config.embedding_size));
  }
}

Tensor BitEmbeddingsImpl::forward(const Tensor& pixel_values) {
  KILN_CHECK(pixel_values.dim() == 4 && pixel_values.size(1) == num_channels,
             "BiT: pixel_values must be [batch, ", num_channels, ", height, width] (the config's num_channels), got ",
             pixel_values.sizes());
  Tensor x = convolution->forward(pixel_values);
  // HF quirk: every padding but SAME adds a 1-pixel zero border here, and
  // the bottleneck stem normalises after it, so the border's zeros enter
  // the GroupNorm statistics.
  if (pad_before_pool) x = F::pad(x, {1, 1, 1, 1}, 0.0);
  if (norm) x = norm->forward(x);
  return pooler->forward(x);
}

// ---- BitDownsampleConv ----

BitDownsampleConvImpl::BitDownsampleConvImpl(const BitConfig& config, int64_t in_channels, int64_t out_channels,
                                             int64_t stride, bool preact) {
  conv = register_module("conv", WeightStandardizedConv2d(in_channels, out_channels, 1, stride, config.global_padding,
                                                          1, 1, false, 1e-8));
  if (!preact) {
    norm = register_module("norm", BitGroupNormActivation(config, out_channels, 1e-5, true, false));
  }
}

Tensor BitDownsampleConvImpl::forward(const Tensor& input) {
  Tensor x = conv->forward(input);
  return norm ? norm->forward(x) : x;
}

// ---- the two blocks ----

namespace {
Tensor maybe_drop_path(const Tensor& x, double rate, bool training) {
  return rate > 0.0 ? F::drop_path(x, rate, training) : x;
}
}  // namespace

BitPreActivationBottleneckLayerImpl::BitPreActivationBottleneckLayerImpl(const BitConfig& config,
                                                                         const BitLayerOptions& o)
    : drop_path_rate(o.drop_path_rate) {
  const int64_t out_channels = o.out_channels ? o.out_channels : o.in_channels;
  const int64_t mid = bit_make_div(static_cast<double>(out_channels) * o.bottle_ratio);
  if (o.is_first_layer) {
    downsample = register_module("downsample",
                                 BitDownsampleConv(config, o.in_channels, out_channels, o.stride, /*preact=*/true));
  }
  const auto& padding = config.global_padding;
  norm1 = register_module("norm1", BitGroupNormActivation(config, o.in_channels));
  conv1 = register_module("conv1", WeightStandardizedConv2d(o.in_channels, mid, 1, 1, padding, 1, 1, false, 1e-8));
  norm2 = register_module("norm2", BitGroupNormActivation(config, mid));
  // HF quirk: the pre-activation block never dilates its 3x3 conv, whatever
  // output_stride asks for (dilation and first_dilation are accepted and
  // ignored), so output_stride < 32 only removes strides here.
  conv2 = register_module("conv2",
                          WeightStandardizedConv2d(mid, mid, 3, o.stride, padding, 1, o.groups, false, 1e-8));
  norm3 = register_module("norm3", BitGroupNormActivation(config, mid));
  conv3 = register_module("conv3", WeightStandardizedConv2d(mid, out_channels, 1, 1, padding, 1, 1, false, 1e-8));
}

Tensor BitPreActivationBottleneckLayerImpl::forward(const Tensor& hidden_states) {
  Tensor preact = norm1->forward(hidden_states);
  // The projection reads the normalised input; the identity shortcut the raw one.
  Tensor shortcut = downsample ? downsample->forward(preact) : hidden_states;
  Tensor x = conv1->forward(preact);
  x = conv2->forward(norm2->forward(x));
  x = conv3->forward(norm3->forward(x));
  x = maybe_drop_path(x, drop_path_rate, is_training());
  return add(x, shortcut);
}

BitBottleneckLayerImpl::BitBottleneckLayerImpl(const BitConfig& config, const BitLayerOptions& o)
    : drop_path_rate(o.drop_path_rate), activation(get_activation(config.hidden_act)) {
  const int64_t out_channels = o.out_channels ? o.out_channels : o.in_channels;
  const int64_t mid = bit_make_div(static_cast<double>(out_channels) * o.bottle_ratio);
  if (o.is_first_layer) {
    downsample = register_module("downsample",
                                 BitDownsampleConv(config, o.in_channels, out_channels, o.stride, /*preact=*/false));
  }
  const auto& padding = config.global_padding;
  conv1 = register_module("conv1", WeightStandardizedConv2d(o.in_channels, mid, 1, 1, padding, 1, 1, false, 1e-8));
  norm1 = register_module("norm1", BitGroupNormActivation(config, mid));
  // HF quirk: the 3x3 conv dilates by first_dilation (the stage's entry
  // dilation for every block of a stage after its first, see BitStage).
  conv2 = register_module("conv2", WeightStandardizedConv2d(mid, mid, 3, o.stride, padding, o.first_dilation,
                                                            o.groups, false, 1e-8));
  norm2 = register_module("norm2", BitGroupNormActivation(config, mid));
  conv3 = register_module("conv3", WeightStandardizedConv2d(mid, out_channels, 1, 1, padding, 1, 1, false, 1e-8));
  norm3 = register_module("norm3", BitGroupNormActivation(config, out_channels, 1e-5, true, false));
}

Tensor BitBottleneckLayerImpl::forward(const Tensor& hidden_states) {
  Tensor shortcut = downsample ? downsample->forward(hidden_states) : hidden_states;
  Tensor x = norm1->forward(conv1->forward(hidden_states));
  x = norm2->forward(conv2->forward(x));
  x = norm3->forward(conv3->forward(x));
  x = maybe_drop_path(x, drop_path_rate, is_training());
  return activation(add(x, shortcut));
}

// ---- stage and encoder ----

BitStageImpl::BitStageImpl(const BitConfig& config, int64_t in_channels, int64_t out_channels, int64_t stride,
                           int64_t dilation, int64_t depth, const std::vector<double>& drop_path_rates,
                           double bottle_ratio) {
  layers = register_module("layers", nn::Sequential());
  // The first block enters at dilation 1 unless the stage dilates by more
  // than 2; the later blocks use the stage's dilation.
  int64_t first_dilation = (dilation == 1 || dilation == 2) ? 1 : 2;
  int64_t prev = in_channels;
  for (int64_t i = 0; i < depth; ++i) {
    BitLayerOptions o;
    o.in_channels = prev;
    o.out_channels = out_channels;
    o.bottle_ratio = bottle_ratio;
    o.stride = i == 0 ? stride : 1;
    o.dilation = dilation;
    o.first_dilation = first_dilation;
    o.drop_path_rate = i < static_cast<int64_t>(drop_path_rates.size()) ? drop_path_rates[i] : 0.0;
    o.is_first_layer = i == 0;
    if (config.layer_type == "bottleneck") {
      layers->push_back(std::to_string(i), BitBottleneckLayer(config, o));
    } else {
      layers->push_back(std::to_string(i), BitPreActivationBottleneckLayer(config, o));
    }
    prev = out_channels;
    first_dilation = dilation;
  }
}

Tensor BitStageImpl::forward(const Tensor& input) { return layers->forward(input); }

BitEncoderImpl::BitEncoderImpl(const BitConfig& config) {
  stages = register_module("stages", nn::ModuleList());
  int64_t total = 0;
  for (int64_t d : config.depths) total += d;
  // np.linspace(0, rate, total), then through a float32 tensor as HF does.
  std::vector<double> rates(total, 0.0);
  for (int64_t i = 0; i < total; ++i) {
    double r = total > 1 ? config.drop_path_rate / static_cast<double>(total - 1) * static_cast<double>(i) : 0.0;
    if (total > 1 && i == total - 1) r = config.drop_path_rate;
    rates[i] = static_cast<double>(static_cast<float>(r));
  }
  int64_t prev = config.embedding_size;
  int64_t current_stride = 4;  // after the stem: conv /2, pool /2
  int64_t dilation = 1;
  int64_t offset = 0;
  for (size_t s = 0; s < config.depths.size(); ++s) {
    const int64_t out = bit_make_div(static_cast<double>(config.hidden_sizes[s] * config.width_factor));
    int64_t stride = s == 0 ? 1 : 2;
    // Past the requested output stride, stages dilate instead of striding.
    if (current_stride >= config.output_stride) {
      dilation *= stride;
      stride = 1;
    }
    std::vector<double> stage_rates(rates.begin() + offset, rates.begin() + offset + config.depths[s]);
    offset += config.depths[s];
    stages->push_back(BitStage(config, prev, out, stride, dilation, config.depths[s], stage_rates));
    prev = out;
    current_stride *= stride;
  }
}

Tensor BitEncoderImpl::forward(const Tensor& input, std::vector<Tensor>* hidden_states) {
  Tensor x = input;
  for (size_t i = 0; i < stages->size(); ++i) {
    if (hidden_states) hidden_states->push_back(x);
    x = stages->at<BitStageImpl>(i).forward(x);
  }
  if (hidden_states) hidden_states->push_back(x);
  return x;
}

}  // namespace kiln::models
