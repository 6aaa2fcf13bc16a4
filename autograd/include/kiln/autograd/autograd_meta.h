#pragma once
// Per-tensor autograd state, hung on TensorImpl's autograd slot: the leaf's
// requires_grad flag and .grad, or the non-leaf's grad_fn and output_nr,
// hooks, and for views the base they alias.
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kiln/autograd/node.h"
#include "kiln/core/tensor.h"

namespace kiln::autograd {

class AutogradMeta final : public AutogradMetaBase {
 public:
  bool requires_grad() const override { return requires_grad_ || grad_fn_ != nullptr; }
  std::string repr_suffix() const override;

  bool requires_grad_ = false;  // set on leaves by requires_grad_(); a non-leaf requires grad through grad_fn_
  Tensor grad_;
  std::shared_ptr<Node> grad_fn_;
  uint32_t output_nr_ = 0;
  // A leaf's AccumulateGrad, shared by every op that uses the leaf while
  // some graph holds it; weak so a leaf does not keep its node alive.
  std::weak_ptr<Node> grad_accumulator_;
  std::mutex mutex_;
  std::shared_ptr<TensorHooks> hooks_;
  bool retains_grad_ = false;
  std::vector<std::pair<unsigned, std::function<void(const Tensor&)>>> post_accumulate_hooks_;
  unsigned next_post_hook_ = 0;

  // Views made by the differentiable view functions remember their base (the
  // tensor that owns the memory) and the base's grad_fn at that moment, so an
  // in-place op can refuse to touch a view, and a use of a view whose base
  // was since modified in place is an error instead of a wrong gradient.
  bool is_view_ = false;
  std::shared_ptr<TensorImpl> base_;
  std::weak_ptr<Node> base_grad_fn_;
};

// The tensor's meta, or null when it has none.
inline AutogradMeta* get_meta(const Tensor& t) {
  return t.defined() ? static_cast<AutogradMeta*>(t.impl()->autograd_meta()) : nullptr;
}
// The tensor's meta, created when missing.
AutogradMeta& materialize_meta(const Tensor& t);

// Where a gradient for t goes: (grad_fn, output_nr) for a non-leaf,
// (AccumulateGrad, 0) for a leaf that requires grad, invalid otherwise.
Edge gradient_edge(const Tensor& t);
// The leaf's AccumulateGrad, created on first use (null if t does not require grad).
std::shared_ptr<Node> grad_accumulator(const Tensor& t);
// Makes t an output of fn: fn gets an input slot for t, t gets grad_fn = fn.
// On a tensor that already has history this is the rebase an in-place op does.
void set_history(const Tensor& t, const std::shared_ptr<Node>& fn);
// retain_grad() on a non-leaf: its grad_fn stores the gradient into .grad().
void install_retain_grad(const Tensor& t);
// Marks `view` as a view of `base` (of base's own base when base is a view).
void set_view_base(const Tensor& view, const Tensor& base);
bool is_view(const Tensor& t);

}  // namespace kiln::autograd
