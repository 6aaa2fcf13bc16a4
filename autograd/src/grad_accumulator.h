#pragma once
// The node at a leaf: adds the gradient that reaches it into the leaf's
// .grad(), then runs the leaf's post-accumulate hooks.
#include <limits>

#include "kiln/autograd/node.h"

namespace kiln::autograd {

class AccumulateGrad final : public Node {
 public:
  // Highest sequence number: a leaf's gradient is stored (and its
  // "gradient ready" hooks run) as soon as it is complete.
  explicit AccumulateGrad(Tensor variable)
      : Node(std::numeric_limits<uint64_t>::max()), variable_(std::move(variable)) {
    add_input_metadata(variable_);
  }
  variable_list apply(variable_list&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
  // The leaf's own hooks (Tensor::register_hook on a leaf).
  const TensorHooks* tensor_hooks(uint32_t slot) const override;
  const Tensor& variable() const { return variable_; }

 private:
  Tensor variable_;
};

}  // namespace kiln::autograd
