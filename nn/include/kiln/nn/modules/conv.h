#pragma once
// Conv2d: 2-D cross-correlation over [N, C, H, W] (or unbatched [C, H, W]),
// as torch.nn.Conv2d with zero padding.
#include <cstdint>

#include "kiln/nn/functional/conv.h"
#include "kiln/nn/functional/options.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, ExpandingArray<2> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  KILN_FUNC_ARG(int64_t, in_channels, 0);
  KILN_FUNC_ARG(int64_t, out_channels, 0);
  KILN_FUNC_ARG(ExpandingArray<2>, kernel_size, 1);
  KILN_FUNC_ARG(ExpandingArray<2>, stride, 1);
  KILN_FUNC_ARG(ExpandingArray<2>, padding, 0);
  KILN_FUNC_ARG(ExpandingArray<2>, dilation, 1);
  KILN_FUNC_ARG(int64_t, groups, 1);
  KILN_FUNC_ARG(bool, bias, true);
};

class Conv2dImpl : public Module {
 public:
  Conv2dImpl(int64_t in_channels, int64_t out_channels, ExpandingArray<2> kernel_size)
      : Conv2dImpl(Conv2dOptions(in_channels, out_channels, kernel_size)) {}
  explicit Conv2dImpl(const Conv2dOptions& options);

  Tensor forward(const Tensor& input);
  // PyTorch's defaults: weight ~ kaiming_uniform_(a = sqrt(5)) and bias ~
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels / groups * kH * kW.
  void reset_parameters();
  std::string extra_repr() const override;

  Conv2dOptions options;
  Tensor weight;  // [out_channels, in_channels / groups, kH, kW]
  Tensor bias;    // [out_channels], undefined without bias
};
KILN_MODULE(Conv2d);

}  // namespace kiln::nn
