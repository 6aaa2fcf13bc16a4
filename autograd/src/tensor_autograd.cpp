// Tensor's autograd methods: requires_grad_, grad, backward, hooks, detach.
#include "kiln/autograd/autograd_meta.h"
#include "kiln/autograd/engine.h"
#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"

namespace kiln {

using autograd::AutogradMeta;
using autograd::get_meta;
using autograd::materialize_meta;

Tensor& Tensor::requires_grad_(bool requires_grad) {
  AutogradMeta* meta = get_meta(*this);
  if (meta != nullptr && meta->grad_fn_) {
    KILN_CHECK(requires_grad,
               "you can only change requires_grad flags of leaf variables. If you want to use a computed variable "
               "in a subgraph that doesn't require differentiation use var_no_grad = var.detach().");
    return *this;
  }
  KILN_CHECK(!requires_grad || is_floating_point(),
             "only Tensors of floating point dtype can require gradients (got ", dtype_name(dtype()), ")");
  if (meta == nullptr && !requires_grad) return *this;
  materialize_meta(*this).requires_grad_ = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const {
  AutogradMeta* meta = get_meta(*this);
  return meta == nullptr || meta->grad_fn_ == nullptr;
}

const Tensor& Tensor::grad() const {
  static const Tensor undefined;
  AutogradMeta* meta = get_meta(*this);
  return meta != nullptr ? meta->grad_ : undefined;
}

Tensor& Tensor::mutable_grad() const { return materialize_meta(*this).grad_; }

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined()) {
    KILN_CHECK(grad.sizes().equals(sizes()), "set_grad: assigned grad has shape ", grad.sizes(),
               " but the tensor has shape ", sizes());
    KILN_CHECK(grad.dtype() == dtype(), "set_grad: assigned grad has dtype ", dtype_name(grad.dtype()),
               " but the tensor has dtype ", dtype_name(dtype()));
    KILN_CHECK(grad.device() == device(), "set_grad: assigned grad is on ", grad.device(), " but the tensor is on ",
               device());
  }
  if (!grad.defined() && get_meta(*this) == nullptr) return;
  materialize_meta(*this).grad_ = grad;
}

std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  AutogradMeta* meta = get_meta(*this);
  return meta != nullptr ? meta->grad_fn_ : nullptr;
}

void Tensor::backward(const Tensor& gradient, std::optional<bool> retain_graph, bool create_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph, create_graph);
}

Tensor Tensor::detach() const { return kiln::detach(*this); }

Tensor& Tensor::detach_() {
  AutogradMeta* meta = get_meta(*this);
  if (meta == nullptr) return *this;
  KILN_CHECK(!meta->is_view_ || !requires_grad(), "detach_: can't detach views in-place. Use detach() instead.");
  meta->grad_fn_ = nullptr;
  meta->output_nr_ = 0;
  meta->requires_grad_ = false;
  return *this;
}

void Tensor::retain_grad() const {
  KILN_CHECK(requires_grad(), "can't retain_grad on Tensor that has requires_grad=False");
  if (is_leaf()) return;  // leaves keep their gradient anyway
  autograd::install_retain_grad(*this);
}

bool Tensor::retains_grad() const {
  AutogradMeta* meta = get_meta(*this);
  return meta != nullptr && meta->retains_grad_ && meta->grad_fn_ != nullptr;
}

unsigned Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) const {
  KILN_CHECK(requires_grad(), "cannot register a hook on a tensor that doesn't require gradient");
  AutogradMeta& meta = materialize_meta(*this);
  if (!meta.hooks_) {
    meta.hooks_ = std::make_shared<autograd::TensorHooks>();
    // A leaf's AccumulateGrad reads the hooks from the meta; a non-leaf's
    // grad_fn holds them for the slot this tensor came out of.
    if (meta.grad_fn_) meta.grad_fn_->set_tensor_hooks(meta.output_nr_, meta.hooks_);
  }
  return meta.hooks_->add(std::move(hook));
}

void Tensor::remove_hook(unsigned handle) const {
  AutogradMeta* meta = get_meta(*this);
  KILN_CHECK(meta != nullptr && meta->hooks_ && meta->hooks_->remove(handle), "remove_hook: no hook with handle ",
             handle, " on this tensor");
}

unsigned Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const {
  KILN_CHECK(is_leaf(), "post accumulate grad hooks cannot be registered on non-leaf tensors");
  KILN_CHECK(requires_grad(), "cannot register a hook on a tensor that doesn't require gradient");
  AutogradMeta& meta = materialize_meta(*this);
  std::lock_guard<std::mutex> lock(meta.mutex_);
  meta.post_accumulate_hooks_.emplace_back(meta.next_post_hook_, std::move(hook));
  return meta.next_post_hook_++;
}

int64_t Tensor::output_nr() const {
  AutogradMeta* meta = get_meta(*this);
  return meta != nullptr ? meta->output_nr_ : 0;
}

}  // namespace kiln
