#include "kiln/nn/modules/linear.h"

#include <cmath>

#include "kiln/nn/init.h"
#include "kiln/nn/repr.h"

namespace kiln::nn {

LinearImpl::LinearImpl(const LinearOptions& options_) : options(options_) {
  KILN_CHECK(options.in_features() >= 0 && options.out_features() >= 0,
             "Linear: in_features and out_features must be non-negative, got ", options.in_features(), " and ",
             options.out_features());
  weight = register_parameter("weight", kiln::empty({options.out_features(), options.in_features()}));
  bias = register_parameter("bias", options.bias() ? kiln::empty({options.out_features()}) : Tensor());
  reset_parameters();
}

void LinearImpl::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    auto [fan_in, fan_out] = init::calculate_fan_in_and_fan_out(weight);
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor LinearImpl::forward(const Tensor& input) { return kiln::linear(input, weight, bias); }

std::string LinearImpl::extra_repr() const {
  return "in_features=" + repr::number(options.in_features()) + ", out_features=" +
         repr::number(options.out_features()) + ", bias=" + repr::boolean(options.bias());
}

}  // namespace kiln::nn
