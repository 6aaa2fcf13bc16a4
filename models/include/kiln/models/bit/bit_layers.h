#pragma once
// The pieces of a ResNetV2 as transformers' modeling_bit.py builds them, under
// the same names. Each keeps HF's behaviour, quirks included (noted where they
// are implemented, in bit_layers.cpp).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "kiln/models/activation.h"
#include "kiln/models/bit/bit_config.h"
#include "kiln/nn/modules/container.h"
#include "kiln/nn/module.h"
#include "kiln/nn/modules/module_list.h"
#include "kiln/nn/modules/sequential.h"

namespace kiln::models {

// TensorFlow's "SAME" padding worked out from the input's size at run time:
// pads (right/bottom getting the odd pixel) so that a k/s/d window covers
// ceil(size / stride) outputs. Pads with `value` (BiT uses 0, even before a
// max-pool).
class DynamicPad2dImpl : public nn::Module {
 public:
  DynamicPad2dImpl(int64_t kernel_size, int64_t stride, int64_t dilation, double value = 0.0);
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;

  int64_t kernel_size, stride, dilation;
  double value;
};
KILN_MODULE(DynamicPad2d);

// Conv2d whose weight is standardised per output channel (zero mean, unit
// biased variance over in_channels x kH x kW, plus eps) on every forward.
// `padding`: "SAME" / "VALID" / unset, as BitConfig.global_padding.
class WeightStandardizedConv2dImpl : public nn::Module {
 public:
  WeightStandardizedConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
                               const std::optional<std::string>& padding = "SAME", int64_t dilation = 1,
                               int64_t groups = 1, bool bias = false, double eps = 1e-6);
  Tensor forward(const Tensor& input);
  // The standardised weight the convolution uses.
  Tensor standardized_weight() const;
  std::string extra_repr() const override;

  int64_t in_channels, out_channels, kernel_size, stride, static_padding, dilation, groups;
  double eps;
  Tensor weight;  // [out, in / groups, k, k]
  Tensor bias;    // undefined unless bias
  DynamicPad2d pad{nullptr};  // set only for dynamic SAME padding (no parameters, so no state-dict names)
};
KILN_MODULE(WeightStandardizedConv2d);

// GroupNorm (config.num_groups, affine) followed by config.hidden_act, or by
// nothing when apply_activation is false.
class BitGroupNormActivationImpl : public nn::Module {
 public:
  BitGroupNormActivationImpl(const BitConfig& config, int64_t num_channels, double eps = 1e-5, bool affine = true,
                             bool apply_activation = true);
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;

  int64_t num_groups, num_channels;
  double eps;
  Tensor weight, bias;
  Activation activation;  // empty: identity
  std::string activation_name;
};
KILN_MODULE(BitGroupNormActivation);

// Max-pool with optional TF "SAME" dynamic padding (with zeros, not -inf).
class BitMaxPool2dImpl : public nn::Module {
 public:
  BitMaxPool2dImpl(int64_t kernel_size, int64_t stride, bool use_dynamic_padding);
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;

  int64_t kernel_size, stride;
  DynamicPad2d pad{nullptr};
};
KILN_MODULE(BitMaxPool2d);

// The stem: 7x7/2 weight-standardised conv, padding, (GroupNorm+act for the
// bottleneck variant), 3x3/2 max-pool.
class BitEmbeddingsImpl : public nn::Module {
 public:
  explicit BitEmbeddingsImpl(const BitConfig& config);
  Tensor forward(const Tensor& pixel_values);

  int64_t num_channels;
  bool pad_before_pool;  // 1-pixel zero pad (every padding but SAME)
  WeightStandardizedConv2d convolution{nullptr};
  BitGroupNormActivation norm{nullptr};  // bottleneck variant only
  BitMaxPool2d pooler{nullptr};
};
KILN_MODULE(BitEmbeddings);

// 1x1 (strided) projection of the shortcut; GroupNorm without activation
// after it unless the block is pre-activation.
class BitDownsampleConvImpl : public nn::Module {
 public:
  BitDownsampleConvImpl(const BitConfig& config, int64_t in_channels, int64_t out_channels, int64_t stride,
                        bool preact);
  Tensor forward(const Tensor& input);

  WeightStandardizedConv2d conv{nullptr};
  BitGroupNormActivation norm{nullptr};  // only when !preact
};
KILN_MODULE(BitDownsampleConv);

struct BitLayerOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  double bottle_ratio = 0.25;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t first_dilation = 1;
  int64_t groups = 1;
  double drop_path_rate = 0.0;
  bool is_first_layer = false;
};

// ResNet v2 block: norm-act before each conv, identity (or projected) shortcut.
class BitPreActivationBottleneckLayerImpl : public nn::Module {
 public:
  BitPreActivationBottleneckLayerImpl(const BitConfig& config, const BitLayerOptions& options);
  Tensor forward(const Tensor& hidden_states);

  BitDownsampleConv downsample{nullptr};
  BitGroupNormActivation norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  WeightStandardizedConv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  double drop_path_rate;
};
KILN_MODULE(BitPreActivationBottleneckLayer);

// ResNet v1.5 block: conv-norm(-act) thrice, activation after the sum.
class BitBottleneckLayerImpl : public nn::Module {
 public:
  BitBottleneckLayerImpl(const BitConfig& config, const BitLayerOptions& options);
  Tensor forward(const Tensor& hidden_states);

  BitDownsampleConv downsample{nullptr};
  WeightStandardizedConv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  BitGroupNormActivation norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  double drop_path_rate;
  Activation activation;
};
KILN_MODULE(BitBottleneckLayer);

// `depth` blocks; the first one strides and projects.
class BitStageImpl : public nn::Module {
 public:
  BitStageImpl(const BitConfig& config, int64_t in_channels, int64_t out_channels, int64_t stride, int64_t dilation,
               int64_t depth, const std::vector<double>& drop_path_rates, double bottle_ratio = 0.25);
  Tensor forward(const Tensor& input);

  nn::Sequential layers{nullptr};
};
KILN_MODULE(BitStage);

// The stages, with HF's stride/dilation schedule for output_stride, widths
// scaled by width_factor, and drop-path rates rising linearly over all blocks.
class BitEncoderImpl : public nn::Module {
 public:
  explicit BitEncoderImpl(const BitConfig& config);
  // hidden_states (when asked): the input and each stage's output.
  Tensor forward(const Tensor& input, std::vector<Tensor>* hidden_states = nullptr);

  nn::ModuleList stages{nullptr};
};
KILN_MODULE(BitEncoder);

// HF's make_div: channels rounded to a multiple of 8, never below 90%.
int64_t bit_make_div(double value, int64_t divisor = 8);

}  // namespace kiln::models
