#include "grad_accumulator.h"

#include "kiln/autograd/autograd_meta.h"
#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/core/native.h"

namespace kiln::autograd {

const TensorHooks* AccumulateGrad::tensor_hooks(uint32_t slot) const {
  AutogradMeta* meta = get_meta(variable_);
  return meta && slot == 0 ? meta->hooks_.get() : nullptr;
}

namespace {
// A gradient nobody else can see or write may become .grad() as it is.
bool can_steal(const Tensor& grad, const Tensor& variable) {
  if (GradMode::is_enabled()) return false;
  if (grad.impl_ptr().use_count() != 1 || grad.storage().use_count() != 1) return false;
  if (!grad.is_contiguous() || grad.dtype() != variable.dtype() || !grad.sizes().equals(variable.sizes())) return false;
  AutogradMeta* meta = get_meta(grad);
  return meta == nullptr || !meta->requires_grad();
}
}  // namespace

variable_list AccumulateGrad::apply(variable_list&& grads) {
  Tensor grad = std::move(grads.at(0));
  grads.clear();  // drop our reference so a gradient only we hold can be stolen
  AutogradMeta* meta = get_meta(variable_);
  if (!grad.defined() || meta == nullptr || !meta->requires_grad_) return {};
  {
    std::lock_guard<std::mutex> lock(meta->mutex_);
    Tensor& stored = meta->grad_;
    if (!stored.defined()) {
      // Never alias a gradient someone may still write to (the caller's
      // grad_output, a tensor a hook kept): copy unless it is ours alone.
      if (can_steal(grad, variable_)) {
        stored = std::move(grad);
      } else {
        stored = GradMode::is_enabled() ? kiln::clone(grad) : native::clone(grad);
      }
    } else if (!GradMode::is_enabled()) {
      native::binary_(BinaryOp::Add, stored, grad);
    } else {
      // create_graph: the sum must stay differentiable.
      stored = kiln::add(stored, grad);
    }
  }
  // Copy: a hook may register further hooks.
  auto hooks = meta->post_accumulate_hooks_;
  for (auto& [handle, hook] : hooks) hook(variable_);
  return {};
}

}  // namespace kiln::autograd
