#include "kiln/nn/modules/batchnorm.h"

#include "kiln/autograd/grad_mode.h"
#include "kiln/nn/init.h"
#include "kiln/nn/repr.h"

namespace kiln::nn {

BatchNormImplBase::BatchNormImplBase(const BatchNormOptions& options_) : options(options_) {
  const int64_t c = options.num_features();
  KILN_CHECK(c > 0, "BatchNorm: num_features must be positive, got ", c);
  const bool affine = options.affine();
  weight = register_parameter("weight", affine ? kiln::empty({c}) : Tensor());
  bias = register_parameter("bias", affine && options.bias() ? kiln::empty({c}) : Tensor());
  const bool track = options.track_running_stats();
  running_mean = register_buffer("running_mean", track ? kiln::zeros({c}) : Tensor());
  running_var = register_buffer("running_var", track ? kiln::ones({c}) : Tensor());
  num_batches_tracked = register_buffer("num_batches_tracked", track ? kiln::zeros({}, kInt64) : Tensor());
  reset_parameters();
}

void BatchNormImplBase::reset_running_stats() {
  if (!options.track_running_stats()) return;
  init::zeros_(running_mean);
  init::ones_(running_var);
  init::zeros_(num_batches_tracked);
}

void BatchNormImplBase::reset_parameters() {
  reset_running_stats();
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Tensor BatchNormImplBase::forward(const Tensor& input) {
  check_input_dim(input);
  double factor = options.momentum().value_or(0.0);
  if (is_training() && options.track_running_stats()) {
    NoGradGuard no_grad;
    num_batches_tracked.add_(1);
    if (!options.momentum()) factor = 1.0 / num_batches_tracked.item<double>();
  }
  // Training always normalises with the batch's statistics; eval does too
  // when there are no running statistics to use.
  const bool use_batch_stats = is_training() || !running_mean.defined();
  const bool pass_running = !is_training() || options.track_running_stats();
  return functional::batch_norm(input, pass_running ? running_mean : Tensor(), pass_running ? running_var : Tensor(),
                                weight, bias, use_batch_stats, factor, options.eps());
}

std::string BatchNormImplBase::extra_repr() const {
  const auto& o = options;
  return repr::number(o.num_features()) + ", eps=" + repr::number(o.eps()) +
         ", momentum=" + (o.momentum() ? repr::number(*o.momentum()) : std::string("None")) +
         ", affine=" + repr::boolean(o.affine()) + ", bias=" + repr::boolean(bias.defined()) +
         ", track_running_stats=" + repr::boolean(o.track_running_stats());
}

void BatchNorm1dImpl::check_input_dim(const Tensor& input) const {
  KILN_CHECK(input.dim() == 2 || input.dim() == 3, "BatchNorm1d: expected 2D or 3D input (got ", input.dim(),
             "D input of shape ", input.sizes(), ")");
}

void BatchNorm2dImpl::check_input_dim(const Tensor& input) const {
  KILN_CHECK(input.dim() == 4, "BatchNorm2d: expected 4D input (got ", input.dim(), "D input of shape ",
             input.sizes(), ")");
}

}  // namespace kiln::nn
