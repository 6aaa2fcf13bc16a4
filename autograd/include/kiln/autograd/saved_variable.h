#pragma once
// A tensor saved by a forward op for its backward. It remembers the storage
// version at save time, so a later in-place write to the tensor is reported
// instead of silently giving a wrong gradient, and it can be released once
// backward has used it.
//
// An op's own output is saved without its autograd meta (the output points
// at the node, so holding it would be a cycle); unpack() re-attaches the node
// as grad_fn so double backward through the saved output works.
#include <memory>

#include "kiln/autograd/node.h"
#include "kiln/core/tensor.h"

namespace kiln::autograd {

class SavedVariable {
 public:
  SavedVariable() = default;
  // is_output: t is an output of the node that saves it.
  SavedVariable(const Tensor& t, bool is_output);

  // The saved tensor; `saved_for` is the node that saved it (needed for outputs).
  // Errors if it was released or modified in place since it was saved.
  Tensor unpack(const std::shared_ptr<Node>& saved_for = nullptr) const;
  void reset_data();
  bool was_saved_undefined() const { return !defined_; }

 private:
  Tensor data_;  // the tensor itself, or for outputs an alias without autograd meta
  bool defined_ = false;
  bool is_output_ = false;
  bool released_ = false;
  bool requires_grad_ = false;  // outputs: whether to re-attach history on unpack
  uint32_t output_nr_ = 0;
  uint32_t saved_version_ = 0;
};

}  // namespace kiln::autograd
