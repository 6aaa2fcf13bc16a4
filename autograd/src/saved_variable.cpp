#include "kiln/autograd/saved_variable.h"

#include "kiln/autograd/autograd_meta.h"

namespace kiln::autograd {

namespace {
// A new handle on the same memory, without autograd meta.
Tensor alias(const Tensor& t) {
  return Tensor(std::make_shared<TensorImpl>(t.storage(), t.dtype(), t.sizes().dims(), t.strides().dims(),
                                             t.storage_offset()));
}
}  // namespace

SavedVariable::SavedVariable(const Tensor& t, bool is_output) {
  if (!t.defined()) return;
  defined_ = true;
  is_output_ = is_output;
  saved_version_ = t._version();
  if (is_output) {
    data_ = alias(t);
    AutogradMeta* meta = get_meta(t);
    requires_grad_ = meta != nullptr && meta->grad_fn_ != nullptr;
    output_nr_ = meta ? meta->output_nr_ : 0;
  } else {
    data_ = t;
  }
}

Tensor SavedVariable::unpack(const std::shared_ptr<Node>& saved_for) const {
  if (!defined_) return Tensor();
  KILN_CHECK(!released_,
             "Trying to backward through the graph a second time (or directly access saved tensors after they have "
             "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
             "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or "
             "if you need to access saved tensors after calling backward.");
  const uint32_t version = data_._version();
  if (version != saved_version_) {
    std::string producer;
    if (is_output_ && saved_for) {
      producer = " (it is output " + std::to_string(output_nr_) + " of " + saved_for->name() + ")";
    } else if (AutogradMeta* meta = get_meta(data_); meta && meta->grad_fn_) {
      producer = " (it is output " + std::to_string(meta->output_nr_) + " of " + meta->grad_fn_->name() + ")";
    }
    KILN_ERROR("one of the variables needed for gradient computation has been modified by an inplace operation: [",
               dtype_name(data_.dtype()), " ", data_.sizes(), "] is at version ", version, "; expected version ",
               saved_version_, " instead", producer,
               ". Hint: the operation that failed to compute its gradient saved this tensor; clone() it before "
               "modifying it in place, or use the out-of-place operation.");
  }
  if (!is_output_) return data_;
  Tensor out = alias(data_);
  if (requires_grad_ && saved_for) {
    AutogradMeta& meta = materialize_meta(out);
    meta.grad_fn_ = saved_for;
    meta.output_nr_ = output_nr_;
  }
  return out;
}

void SavedVariable::reset_data() {
  if (!defined_) return;
  data_ = Tensor();
  released_ = true;
}

}  // namespace kiln::autograd
