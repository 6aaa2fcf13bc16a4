// Autograd meta: creating it, a tensor's gradient edge, its leaf
// accumulator, and setting or rebasing its history.
#include "kiln/autograd/autograd_meta.h"

#include "grad_accumulator.h"
#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/core/native.h"

namespace kiln::autograd {

std::string AutogradMeta::repr_suffix() const {
  if (grad_fn_) return ", grad_fn=<" + grad_fn_->name() + ">";
  if (requires_grad_) return ", requires_grad=True";
  return "";
}

AutogradMeta& materialize_meta(const Tensor& t) {
  KILN_CHECK(t.defined(), "autograd: operation on an undefined tensor");
  if (t.impl()->autograd_meta() == nullptr) t.impl()->set_autograd_meta(std::make_unique<AutogradMeta>());
  return *get_meta(t);
}

namespace {
// A view made before its base was modified in place still points at the
// base's old history; using it would give a silently wrong gradient.
void check_view_history(const AutogradMeta& meta) {
  auto* base = static_cast<AutogradMeta*>(meta.base_->autograd_meta());
  if (base == nullptr || base->grad_fn_ == nullptr) return;
  KILN_CHECK(base->grad_fn_ == meta.base_grad_fn_.lock(),
             "a view is being used after its base tensor was modified by an in-place operation; Kiln's autograd "
             "cannot update the view's history: take the view again after the in-place operation");
}
}  // namespace

Edge gradient_edge(const Tensor& t) {
  AutogradMeta* meta = get_meta(t);
  if (meta == nullptr) return {};
  if (meta->is_view_ && meta->base_) check_view_history(*meta);
  if (meta->grad_fn_) return Edge(meta->grad_fn_, meta->output_nr_);
  if (meta->requires_grad_) return Edge(grad_accumulator(t), 0);
  return {};
}

std::shared_ptr<Node> grad_accumulator(const Tensor& t) {
  AutogradMeta* meta = get_meta(t);
  if (meta == nullptr || meta->grad_fn_ || !meta->requires_grad_) return nullptr;
  std::lock_guard<std::mutex> lock(meta->mutex_);
  if (auto existing = meta->grad_accumulator_.lock()) return existing;
  auto acc = std::make_shared<AccumulateGrad>(t);
  meta->grad_accumulator_ = acc;
  return acc;
}

namespace {
// retain_grad() on a non-leaf: keep the gradient that reaches it. Holds the
// tensor weakly (the tensor owns the node that holds this hook).
std::function<void(const Tensor&)> retain_grad_hook(const Tensor& t) {
  return [weak = std::weak_ptr<TensorImpl>(t.impl_ptr())](const Tensor& grad) {
    auto impl = weak.lock();
    if (!impl) return;
    AutogradMeta& meta = materialize_meta(Tensor(impl));
    if (!meta.grad_.defined()) {
      meta.grad_ = GradMode::is_enabled() ? kiln::clone(grad) : native::clone(grad);
    } else {
      meta.grad_ = GradMode::is_enabled() ? kiln::add(meta.grad_, grad) : native::add(meta.grad_, grad);
    }
  };
}
}  // namespace

void set_history(const Tensor& t, const std::shared_ptr<Node>& fn) {
  AutogradMeta& meta = materialize_meta(t);
  meta.output_nr_ = fn->add_input_metadata(t);
  meta.grad_fn_ = fn;
  if (meta.retains_grad_) fn->set_retain_grad_hook(meta.output_nr_, retain_grad_hook(t));
}

void install_retain_grad(const Tensor& t) {
  AutogradMeta& meta = materialize_meta(t);
  if (meta.retains_grad_) return;
  meta.retains_grad_ = true;
  meta.grad_fn_->set_retain_grad_hook(meta.output_nr_, retain_grad_hook(t));
}

void set_view_base(const Tensor& view, const Tensor& base) {
  AutogradMeta& meta = materialize_meta(view);
  meta.is_view_ = true;
  AutogradMeta* base_meta = get_meta(base);
  meta.base_ = base_meta && base_meta->is_view_ ? base_meta->base_ : base.impl_ptr();
  auto* root = static_cast<AutogradMeta*>(meta.base_->autograd_meta());
  meta.base_grad_fn_ = root ? root->grad_fn_ : nullptr;
}

bool is_view(const Tensor& t) {
  AutogradMeta* meta = get_meta(t);
  return meta != nullptr && meta->is_view_;
}

}  // namespace kiln::autograd
