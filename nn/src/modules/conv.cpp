#include "kiln/nn/modules/conv.h"

#include <cmath>

#include "kiln/nn/init.h"
#include "kiln/nn/repr.h"

namespace kiln::nn {

Conv2dImpl::Conv2dImpl(const Conv2dOptions& options_) : options(options_) {
  const auto& o = options;
  KILN_CHECK(o.in_channels() > 0 && o.out_channels() > 0, "Conv2d: in_channels and out_channels must be positive, got ",
             o.in_channels(), " and ", o.out_channels());
  KILN_CHECK(o.groups() > 0, "Conv2d: groups must be a positive integer, got ", o.groups());
  KILN_CHECK(o.in_channels() % o.groups() == 0, "Conv2d: in_channels (", o.in_channels(),
             ") must be divisible by groups (", o.groups(), ")");
  KILN_CHECK(o.out_channels() % o.groups() == 0, "Conv2d: out_channels (", o.out_channels(),
             ") must be divisible by groups (", o.groups(), ")");
  for (size_t i = 0; i < 2; ++i) {
    KILN_CHECK(o.kernel_size()[i] > 0 && o.stride()[i] > 0 && o.dilation()[i] > 0 && o.padding()[i] >= 0,
               "Conv2d: kernel_size, stride and dilation must be positive and padding non-negative, got kernel_size=",
               o.kernel_size().ref(), " stride=", o.stride().ref(), " dilation=", o.dilation().ref(),
               " padding=", o.padding().ref());
  }
  weight = register_parameter(
      "weight", kiln::empty({o.out_channels(), o.in_channels() / o.groups(), o.kernel_size()[0], o.kernel_size()[1]}));
  bias = register_parameter("bias", o.bias() ? kiln::empty({o.out_channels()}) : Tensor());
  reset_parameters();
}

void Conv2dImpl::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    auto [fan_in, fan_out] = init::calculate_fan_in_and_fan_out(weight);
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Conv2dImpl::forward(const Tensor& input) {
  return functional::conv2d(input, weight, bias, options.stride(), options.padding(), options.dilation(),
                            options.groups());
}

std::string Conv2dImpl::extra_repr() const {
  const auto& o = options;
  std::string s = repr::number(o.in_channels()) + ", " + repr::number(o.out_channels()) +
                  ", kernel_size=" + repr::tuple(o.kernel_size()) + ", stride=" + repr::tuple(o.stride());
  if (!(o.padding() == ExpandingArray<2>(0))) s += ", padding=" + repr::tuple(o.padding());
  if (!(o.dilation() == ExpandingArray<2>(1))) s += ", dilation=" + repr::tuple(o.dilation());
  if (o.groups() != 1) s += ", groups=" + repr::number(o.groups());
  if (!o.bias()) s += ", bias=false";
  return s;
}

}  // namespace kiln::nn
