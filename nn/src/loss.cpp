// Loss functions composed from differentiable kiln:: ops. Formulas follow
// torch.nn.functional exactly, including how the mean is normalised (by the
// summed class weights of non-ignored targets for nll/cross_entropy, by
// N*d1*... for probability targets). Cross entropy with class indices runs
// the fused per-row kernel (kiln::cross_entropy_loss) unless the class
// weights need a gradient, which only the composed formula gives.
#include "kiln/nn/functional/loss.h"

#include <cstdint>
#include <vector>

#include "kiln/autograd/autocast.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/core/error.h"
#include "kiln/core/native.h"

namespace kiln::nn::functional {
namespace {

Tensor reduce(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::None:
      return loss;
    case Reduction::Sum:
      return kiln::sum(loss);
    case Reduction::Mean:
      break;
  }
  return kiln::mean(loss);
}

// The class dim of an [N, C, d...] input, or 0 for an unbatched [C] input.
int64_t class_dim(const Tensor& input) { return input.dim() == 1 ? 0 : 1; }

// weight [C] reshaped to [1, C, 1, ...] so it broadcasts along input's class dim.
Tensor class_view(const Tensor& weight, const Tensor& input) {
  if (input.dim() == 1) return weight;
  std::vector<int64_t> shape(static_cast<size_t>(input.dim()), 1);
  shape[1] = weight.size(0);
  return kiln::view(weight, shape);
}

void check_weight(const char* op, const Tensor& weight, const Tensor& input) {
  if (!weight.defined()) return;
  int64_t c = input.size(class_dim(input));
  KILN_CHECK(weight.dim() == 1 && weight.size(0) == c, op, ": weight must be a 1-D tensor of ", c,
             " elements (one per class), got shape ", weight.sizes(), " for input shape ", input.sizes());
}

// Checks a class-index target's dtype and shape against input ([N, C, d...]
// vs [N, d...], or [C] vs 0-dim).
void check_class_target(const char* op, const Tensor& input, const Tensor& target) {
  KILN_CHECK(input.dim() >= 1, op, ": input must have at least 1 dimension (classes), got shape ", input.sizes());
  KILN_CHECK(target.dtype() == kInt64, op, ": expected int64 class-index target, got ", target.dtype(),
             " (target shape ", target.sizes(), ", input shape ", input.sizes(), ")");
  bool shape_ok = false;
  if (input.dim() == 1) {
    shape_ok = target.dim() == 0;
  } else if (target.dim() == input.dim() - 1) {
    shape_ok = target.size(0) == input.size(0);
    for (int64_t d = 2; d < input.dim() && shape_ok; ++d) shape_ok = target.size(d - 1) == input.size(d);
  }
  KILN_CHECK(shape_ok, op, ": target shape ", target.sizes(), " does not match input shape ", input.sizes(),
             " (expected input [N, C, d1...] with target [N, d1...], or input [C] with a 0-dim target)");
}

// Every non-ignored index in [0, C). The fused cross-entropy op checks its
// own targets, so only the composed paths call this (one host copy, not two).
void check_class_values(const char* op, const Tensor& input, const Tensor& target, int64_t ignore_index) {
  int64_t c = input.size(class_dim(input));
  // Index validation needs the values on the host; targets are small next to logits.
  Tensor host = native::contiguous(native::to(target, Device(kCPU)));
  const int64_t* p = host.data_ptr<int64_t>();
  for (int64_t i = 0, n = host.numel(); i < n; ++i) {
    KILN_CHECK(p[i] == ignore_index || (p[i] >= 0 && p[i] < c), op, ": target index ", p[i],
               " is out of range for ", c, " classes (input shape ", input.sizes(), ", target shape ",
               target.sizes(), ", ignore_index ", ignore_index, ")");
  }
}

struct NllParts {
  Tensor loss;          // per-element weighted loss, shape of target
  Tensor target_weight;  // per-element weight, 0 where ignored (mean's divisor)
  Tensor ignore_mask;   // bool, shape of target
  Tensor safe_target;   // ignored entries replaced by class 0 (a valid gather index)
};

// Expects checked arguments; weight already in logp's dtype or undefined.
NllParts nll_parts(const Tensor& logp, const Tensor& target, const Tensor& weight, int64_t ignore_index) {
  int64_t cd = class_dim(logp);
  NllParts r;
  r.ignore_mask = kiln::eq(target, Scalar(ignore_index));
  r.safe_target = kiln::masked_fill(target, r.ignore_mask, Scalar(0));
  Tensor picked = kiln::squeeze(kiln::gather(logp, cd, kiln::unsqueeze(r.safe_target, cd)), cd);
  if (weight.defined()) {
    Tensor w = kiln::reshape(kiln::index_select(weight, 0, kiln::flatten(r.safe_target)), target.sizes());
    r.target_weight = kiln::masked_fill(w, r.ignore_mask, Scalar(0));
  } else {
    r.target_weight = kiln::to(kiln::logical_not(r.ignore_mask), logp.dtype());
  }
  // where, not a product with the 0 weight: an ignored -inf log-prob must give 0, not nan.
  r.loss = kiln::where(r.ignore_mask, Scalar(0), kiln::neg(picked) * r.target_weight);
  return r;
}

Tensor reduce_nll(const NllParts& p, Reduction reduction) {
  if (reduction == Reduction::Mean) return kiln::sum(p.loss) / kiln::sum(p.target_weight);
  return reduce(p.loss, reduction);
}

Tensor cast_weight(const Tensor& weight, const Tensor& input) {
  return weight.defined() ? kiln::to(weight, input.dtype()) : weight;
}

Tensor cross_entropy_probs(const Tensor& input, const Tensor& target, const CrossEntropyFuncOptions& o) {
  KILN_CHECK(is_floating_point(target.dtype()), "cross_entropy: expected floating point target for class ",
             "probabilities (target shape equals input shape ", input.sizes(), "), got ", target.dtype());
  KILN_CHECK(o.ignore_index() < 0, "cross_entropy: ignore_index (", o.ignore_index(),
             ") is not supported with class-probability targets");
  int64_t cd = class_dim(input);
  int64_t c = input.size(cd);
  Tensor logp = kiln::log_softmax(input, cd);
  Tensor tgt = target;
  if (o.label_smoothing() > 0) tgt = tgt * (1.0 - o.label_smoothing()) + o.label_smoothing() / static_cast<double>(c);
  Tensor prod = logp * tgt;
  if (o.weight().defined()) prod = prod * class_view(cast_weight(o.weight(), input), input);
  switch (o.reduction()) {
    case Reduction::None:
      return kiln::neg(kiln::sum(prod, {cd}));
    case Reduction::Sum:
      return kiln::neg(kiln::sum(prod));
    case Reduction::Mean:
      break;
  }
  // torch divides by the number of samples (N * d1 * ...), whatever the weights.
  double samples = c == 0 ? 0.0 : static_cast<double>(input.numel() / c);
  return kiln::neg(kiln::sum(prod)) / samples;
}

// torch's mean divisor for class targets: the summed class weights of the
// non-ignored targets (their count without weights). A constant: the fused
// path never differentiates the weights.
Tensor target_weight_sum(const Tensor& target, const Tensor& weight, int64_t ignore_index, DType dtype) {
  const Tensor keep = native::binary(BinaryOp::Ne, target, Scalar(ignore_index));
  if (!weight.defined()) return native::sum(native::to(keep, dtype));
  const Tensor safe = native::where(keep, target, Scalar(0));
  const Tensor w = native::index_select(native::to(weight, dtype), 0, safe);
  return native::sum(native::where(keep, w, Scalar(0)));
}

// Class-index cross entropy through the fused per-row op: the class dim
// moved last ([N, C, d1...] -> [N*d1*..., C]; [C] -> [1, C]) so that every
// element is a row, the per-row losses (in f32/f64) reduced as torch does
// and cast to the input's dtype. Arguments already checked.
Tensor cross_entropy_fused(const Tensor& input, const Tensor& target, const Tensor& weight,
                           const CrossEntropyFuncOptions& o) {
  const int64_t c = input.size(class_dim(input));
  const int64_t rows = target.numel();  // not -1 in the reshape: C may be 0
  Tensor x = input;
  if (input.dim() > 2) {
    std::vector<int64_t> perm = {0};
    for (int64_t d = 2; d < input.dim(); ++d) perm.push_back(d);
    perm.push_back(1);
    x = kiln::permute(input, perm);
  }
  const Tensor flat_target = kiln::reshape(target, {rows});
  const Tensor loss =
      kiln::cross_entropy_loss(kiln::reshape(x, {rows, c}), flat_target, weight, o.ignore_index(), o.label_smoothing());
  Tensor out;
  switch (o.reduction()) {
    case Reduction::None:
      out = kiln::reshape(loss, target.sizes());
      break;
    case Reduction::Sum:
      out = kiln::sum(loss);
      break;
    case Reduction::Mean:
      // One divisor for the whole loss, smoothing term included (as torch).
      out = kiln::sum(loss) / target_weight_sum(flat_target, weight, o.ignore_index(), loss.dtype());
      break;
  }
  return kiln::to(out, input.dtype());
}

// Under autocast the losses run in float32: 16-bit inputs, targets and
// weights are cast up (autograd/autocast.h); the loss re-enters itself
// with them.
autograd::AutocastArgs autocast_f32(std::initializer_list<std::reference_wrapper<const Tensor>> args) {
  return autograd::autocast_args(autograd::CastPolicy::Float32, args);
}

}  // namespace

Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossFuncOptions& options) {
  if (auto cast = autocast_f32({input, options.weight()})) {
    return nll_loss(cast(input), target, NLLLossFuncOptions(options).weight(cast(options.weight())));
  }
  check_class_target("nll_loss", input, target);
  check_class_values("nll_loss", input, target, options.ignore_index());
  check_weight("nll_loss", options.weight(), input);
  NllParts p = nll_parts(input, target, cast_weight(options.weight(), input), options.ignore_index());
  return reduce_nll(p, options.reduction());
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyFuncOptions& options) {
  if (auto cast = autocast_f32({input, target, options.weight()})) {
    return cross_entropy(cast(input), cast(target), CrossEntropyFuncOptions(options).weight(cast(options.weight())));
  }
  double ls = options.label_smoothing();
  KILN_CHECK(ls >= 0.0 && ls <= 1.0, "cross_entropy: label_smoothing must be in [0, 1], got ", ls);
  KILN_CHECK(input.dim() >= 1, "cross_entropy: input must have at least 1 dimension (classes), got shape ",
             input.sizes());
  check_weight("cross_entropy", options.weight(), input);
  if (target.sizes().equals(input.sizes())) return cross_entropy_probs(input, target, options);

  check_class_target("cross_entropy", input, target);
  int64_t cd = class_dim(input);
  Tensor weight = cast_weight(options.weight(), input);
  if (!(weight.defined() && weight.requires_grad() && GradMode::is_enabled())) {
    return cross_entropy_fused(input, target, weight, options);
  }
  check_class_values("cross_entropy", input, target, options.ignore_index());
  // Composed path: the class weights get a gradient.
  Tensor logp = kiln::log_softmax(input, cd);
  NllParts p = nll_parts(logp, target, weight, options.ignore_index());
  Tensor nll = reduce_nll(p, options.reduction());
  if (ls <= 0.0) return nll;

  // Smoothing term: -sum_c w_c logp_c per element, 0 where ignored; its mean
  // uses the same divisor as the nll term.
  Tensor smooth = weight.defined() ? logp * class_view(weight, input) : logp;
  smooth = kiln::where(p.ignore_mask, Scalar(0), kiln::neg(kiln::sum(smooth, {cd})));
  Tensor smooth_red = options.reduction() == Reduction::Mean ? kiln::sum(smooth) / kiln::sum(p.target_weight)
                                                              : reduce(smooth, options.reduction());
  int64_t c = input.size(cd);
  return nll * (1.0 - ls) + smooth_red * (ls / static_cast<double>(c));
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const BinaryCrossEntropyWithLogitsFuncOptions& options) {
  if (auto cast = autocast_f32({input, target, options.weight(), options.pos_weight()})) {
    return binary_cross_entropy_with_logits(cast(input), cast(target), BinaryCrossEntropyWithLogitsFuncOptions(options)
                                                                           .weight(cast(options.weight()))
                                                                           .pos_weight(cast(options.pos_weight())));
  }
  KILN_CHECK(target.sizes().equals(input.sizes()), "binary_cross_entropy_with_logits: target shape ",
             target.sizes(), " must be the same as input shape ", input.sizes());
  KILN_CHECK(is_floating_point(target.dtype()),
             "binary_cross_entropy_with_logits: expected floating point target, got ", target.dtype());
  // -log(sigmoid(x)) = log1p(exp(-|x|)) + max(-x, 0): no overflow for any x.
  Tensor neg_log_sig = kiln::log1p(kiln::exp(kiln::neg(kiln::abs(input)))) + kiln::relu(kiln::neg(input));
  Tensor loss;
  if (options.pos_weight().defined()) {
    // pos_weight scales the positive term: (1 + (pw - 1) * y), broadcasting over trailing dims.
    Tensor log_weight = (kiln::to(options.pos_weight(), input.dtype()) - 1.0) * target + 1.0;
    loss = (1.0 - target) * input + log_weight * neg_log_sig;
  } else {
    loss = (1.0 - target) * input + neg_log_sig;
  }
  if (options.weight().defined()) loss = loss * kiln::to(options.weight(), input.dtype());
  return reduce(loss, options.reduction());
}

Tensor mse_loss(const Tensor& input, const Tensor& target, const MSELossFuncOptions& options) {
  if (auto cast = autocast_f32({input, target})) return mse_loss(cast(input), cast(target), options);
  return reduce(kiln::square(input - target), options.reduction());
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossFuncOptions& options) {
  if (auto cast = autocast_f32({input, target})) return l1_loss(cast(input), cast(target), options);
  return reduce(kiln::abs(input - target), options.reduction());
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossFuncOptions& options) {
  if (auto cast = autocast_f32({input, target})) return smooth_l1_loss(cast(input), cast(target), options);
  double beta = options.beta();
  KILN_CHECK(beta >= 0.0, "smooth_l1_loss: beta must be non-negative, got ", beta);
  Tensor diff = kiln::abs(input - target);
  // beta == 0 is exactly l1 (and the quadratic branch would divide by zero).
  if (beta == 0.0) return reduce(diff, options.reduction());
  Tensor loss = kiln::where(kiln::lt(diff, Scalar(beta)), kiln::square(diff) * (0.5 / beta), diff - 0.5 * beta);
  return reduce(loss, options.reduction());
}

}  // namespace kiln::nn::functional
