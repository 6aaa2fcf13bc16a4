// FunctionNode and the helpers every differentiable op uses to record itself.
#include "kiln/autograd/function.h"

#include "kiln/autograd/functions.h"

namespace kiln::autograd {

variable_list FunctionNode::apply(variable_list&& grads) {
  bool any = false;
  for (const Tensor& g : grads) any = any || g.defined();
  if (!any) return variable_list(num_outputs());
  // Multi-output formulas see zeros for outputs that received no gradient.
  for (size_t slot = 0; slot < grads.size(); ++slot) {
    if (!grads[slot].defined()) {
      const InputMetadata& m = input_metadata(slot);
      grads[slot] = kiln::zeros(m.sizes, TensorOptions().dtype(m.dtype).device(m.device));
    }
  }
  variable_list out = formula_(*this, grads);
  KILN_CHECK(out.size() == num_outputs(), name_, ": the backward formula returned ", out.size(),
             " gradients for ", num_outputs(), " inputs");
  for (size_t i = 0; i < out.size(); ++i) {
    if (!needs(i)) out[i] = Tensor();
  }
  return out;
}

void FunctionNode::release_variables() {
  for (auto& s : saved_) s.reset_data();
  for (auto& s : results_) s.reset_data();
}

Tensor FunctionNode::saved(size_t i) { return saved_.at(i).unpack(shared_from_this()); }
Tensor FunctionNode::result(size_t i) { return results_.at(i).unpack(shared_from_this()); }

Tensor FunctionNode::reduce(size_t i, const Tensor& grad) const {
  const InputMetadata& in = inputs_.at(i);
  Tensor r = grad;
  if (!r.sizes().equals(in.sizes)) r = kiln::sum_to(r, in.sizes);
  if (r.dtype() != in.dtype) r = kiln::to(r, in.dtype);
  return r;
}

void FunctionNode::set_inputs(TensorList inputs) {
  inputs_.clear();
  inputs_.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    if (t.defined()) {
      inputs_.push_back(InputMetadata{t.sizes().dims(), t.dtype(), t.device()});
    } else {
      inputs_.push_back(InputMetadata{{}, default_dtype(), Device(kCPU)});
    }
  }
}

void FunctionNode::save(TensorList tensors) {
  saved_.reserve(saved_.size() + tensors.size());
  for (const Tensor& t : tensors) saved_.emplace_back(t, false);
}

void FunctionNode::save_result(const Tensor& result) { results_.emplace_back(result, true); }

bool should_record(TensorList inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

std::shared_ptr<FunctionNode> make_node(const char* name, TensorList inputs, TensorList saved,
                                        MultiBackwardFn formula) {
  if (!should_record(inputs)) return nullptr;
  auto node = std::make_shared<FunctionNode>(name, std::move(formula));
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(gradient_edge(t));
  node->set_next_edges(std::move(edges));
  node->set_inputs(inputs);
  node->save(saved);
  return node;
}

void add_output(const std::shared_ptr<FunctionNode>& node, const Tensor& output, bool save) {
  if (!node || !output.defined() || !is_floating_point(output.dtype())) return;
  set_history(output, node);
  if (save) node->save_result(output);
}

void check_inplace(const Tensor& self, TensorList others) {
  if (!GradMode::is_enabled()) return;
  bool recorded = self.requires_grad();
  for (const Tensor& t : others) recorded = recorded || (t.defined() && t.requires_grad());
  if (!recorded) return;
  AutogradMeta* meta = get_meta(self);
  if (meta == nullptr) return;
  KILN_CHECK(meta->grad_fn_ || !meta->requires_grad_,
             "a leaf Variable that requires grad is being used in an in-place operation.");
  if (meta->is_view_) {
    auto* base = static_cast<AutogradMeta*>(meta->base_->autograd_meta());
    KILN_CHECK(base == nullptr || base->grad_fn_ || !base->requires_grad_,
               "a view of a leaf Variable that requires grad is being used in an in-place operation.");
    KILN_ERROR("an in-place operation on a view (", self.toString(),
               ") is being recorded by autograd, which Kiln does not support yet: use the out-of-place operation, "
               "or clone() the view first");
  }
}

}  // namespace kiln::autograd
