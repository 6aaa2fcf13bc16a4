#include "kiln/nn/modules/normalization.h"

#include "kiln/nn/init.h"
#include "kiln/nn/repr.h"

namespace kiln::nn {

LayerNormImpl::LayerNormImpl(LayerNormOptions options_) : options(std::move(options_)) {
  for (int64_t s : options.normalized_shape()) {
    KILN_CHECK(s >= 0, "LayerNorm: normalized_shape must be non-negative, got ",
               IntArrayRef(options.normalized_shape()));
  }
  const bool affine = options.elementwise_affine();
  weight = register_parameter("weight", affine ? kiln::empty(options.normalized_shape()) : Tensor());
  bias = register_parameter("bias", affine && options.bias() ? kiln::empty(options.normalized_shape()) : Tensor());
  reset_parameters();
}

void LayerNormImpl::reset_parameters() {
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Tensor LayerNormImpl::forward(const Tensor& input) {
  return functional::layer_norm(input, options.normalized_shape(), weight, bias, options.eps());
}

std::string LayerNormImpl::extra_repr() const {
  return repr::tuple(options.normalized_shape()) + ", eps=" + repr::number(options.eps()) +
         ", elementwise_affine=" + repr::boolean(options.elementwise_affine()) + ", bias=" + repr::boolean(bias.defined());
}

GroupNormImpl::GroupNormImpl(const GroupNormOptions& options_) : options(options_) {
  KILN_CHECK(options.num_groups() > 0, "GroupNorm: num_groups must be positive, got ", options.num_groups());
  KILN_CHECK(options.num_channels() % options.num_groups() == 0, "GroupNorm: num_channels (", options.num_channels(),
             ") must be divisible by num_groups (", options.num_groups(), ")");
  const bool affine = options.affine();
  weight = register_parameter("weight", affine ? kiln::empty({options.num_channels()}) : Tensor());
  bias = register_parameter("bias", affine && options.bias() ? kiln::empty({options.num_channels()}) : Tensor());
  reset_parameters();
}

void GroupNormImpl::reset_parameters() {
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Tensor GroupNormImpl::forward(const Tensor& input) {
  return functional::group_norm(input, options.num_groups(), weight, bias, options.eps());
}

std::string GroupNormImpl::extra_repr() const {
  return repr::number(options.num_groups()) + ", " + repr::number(options.num_channels()) +
         ", eps=" + repr::number(options.eps()) + ", affine=" + repr::boolean(options.affine()) +
         ", bias=" + repr::boolean(bias.defined());
}

}  // namespace kiln::nn
