#include "kiln/nn/modules/pooling.h"

#include "kiln/nn/repr.h"

namespace kiln::nn {

namespace {
void check_positive(const char* op, const char* what, const ExpandingArray<2>& v) {
  KILN_CHECK(v[0] > 0 && v[1] > 0, op, ": ", what, " must be positive, got ", v.ref());
}
}  // namespace

MaxPool2dImpl::MaxPool2dImpl(const MaxPool2dOptions& options_) : options(options_) {
  check_positive("MaxPool2d", "kernel_size", options.kernel_size());
  check_positive("MaxPool2d", "stride", options.stride());
  check_positive("MaxPool2d", "dilation", options.dilation());
}

Tensor MaxPool2dImpl::forward(const Tensor& input) { return functional::max_pool2d(input, options); }

std::string MaxPool2dImpl::extra_repr() const {
  return "kernel_size=" + repr::int_or_tuple(options.kernel_size()) + ", stride=" + repr::int_or_tuple(options.stride()) +
         ", padding=" + repr::int_or_tuple(options.padding()) + ", dilation=" + repr::int_or_tuple(options.dilation()) +
         ", ceil_mode=" + repr::boolean(options.ceil_mode());
}

AvgPool2dImpl::AvgPool2dImpl(const AvgPool2dOptions& options_) : options(options_) {
  check_positive("AvgPool2d", "kernel_size", options.kernel_size());
  check_positive("AvgPool2d", "stride", options.stride());
}

Tensor AvgPool2dImpl::forward(const Tensor& input) { return functional::avg_pool2d(input, options); }

std::string AvgPool2dImpl::extra_repr() const {
  return "kernel_size=" + repr::int_or_tuple(options.kernel_size()) + ", stride=" + repr::int_or_tuple(options.stride()) +
         ", padding=" + repr::int_or_tuple(options.padding());
}

AdaptiveAvgPool2dImpl::AdaptiveAvgPool2dImpl(const AdaptiveAvgPool2dOptions& options_) : options(options_) {
  check_positive("AdaptiveAvgPool2d", "output_size", options.output_size());
}

Tensor AdaptiveAvgPool2dImpl::forward(const Tensor& input) {
  return functional::adaptive_avg_pool2d(input, options.output_size());
}

std::string AdaptiveAvgPool2dImpl::extra_repr() const {
  return "output_size=" + repr::int_or_tuple(options.output_size());
}

}  // namespace kiln::nn
