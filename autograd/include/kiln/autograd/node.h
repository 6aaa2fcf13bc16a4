#pragma once
// The backward graph. A Node is the backward of one forward op: it receives
// the gradients of the op's outputs (its "inputs", one slot per forward
// output) and returns the gradients of the op's inputs, one per next edge.
// An Edge names a node and the slot the gradient arrives in.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/tensor.h"

namespace kiln::autograd {

using variable_list = std::vector<Tensor>;

class Node;

struct Edge {
  Edge() = default;
  Edge(std::shared_ptr<Node> fn, uint32_t nr) : function(std::move(fn)), input_nr(nr) {}
  bool is_valid() const { return function != nullptr; }

  std::shared_ptr<Node> function;
  uint32_t input_nr = 0;
};

// What a gradient arriving in one slot must look like: the engine sums a
// broadcast gradient back to `sizes` and casts it to `dtype` and `device`.
struct InputMetadata {
  DimVector sizes;
  DType dtype;
  Device device;
};

// Hooks registered on one tensor (Tensor::register_hook), shared by the
// tensor's autograd meta (which adds and removes them) and the node that
// runs them when the tensor's gradient is ready.
class TensorHooks {
 public:
  using Hook = std::function<Tensor(const Tensor&)>;
  unsigned add(Hook hook);
  bool remove(unsigned handle);
  bool empty() const { return hooks_.empty(); }
  // Runs the hooks in registration order; a defined result replaces the gradient.
  Tensor run(Tensor grad) const;

 private:
  std::vector<std::pair<unsigned, Hook>> hooks_;
  unsigned next_handle_ = 0;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  // Hooks on the node as a whole. A pre-hook sees the incoming gradients and
  // may return replacements (an empty list keeps them); a post-hook sees the
  // gradients the node produced and the ones it received.
  using PreHook = std::function<variable_list(const variable_list& grads)>;
  using PostHook = std::function<void(const variable_list& grad_inputs, const variable_list& grad_outputs)>;

  Node();  // takes the next sequence number
  explicit Node(uint64_t sequence_nr) : sequence_nr_(sequence_nr) {}
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Gradients of the forward outputs in, gradients of the forward inputs out
  // (one per next edge; undefined where none flows).
  virtual variable_list apply(variable_list&& grads) = 0;
  // "MulBackward0", as torch names grad_fn classes.
  virtual std::string name() const = 0;
  // Frees saved tensors once backward has used them (unless retain_graph).
  virtual void release_variables() {}

  const std::vector<Edge>& next_edges() const { return next_edges_; }
  const Edge& next_edge(size_t i) const { return next_edges_.at(i); }
  size_t num_outputs() const { return next_edges_.size(); }
  void set_next_edges(std::vector<Edge> edges) { next_edges_ = std::move(edges); }
  void add_next_edge(Edge edge) { next_edges_.push_back(std::move(edge)); }
  // Whether the forward input i needs a gradient at all.
  bool should_compute_output(size_t i) const { return i < next_edges_.size() && next_edges_[i].is_valid(); }

  // One slot per forward output; returns the slot (the output's output_nr).
  uint32_t add_input_metadata(const Tensor& t);
  size_t num_inputs() const { return input_metadata_.size(); }
  const InputMetadata& input_metadata(size_t slot) const { return input_metadata_.at(slot); }

  // Creation order; the engine runs later nodes first.
  uint64_t sequence_nr() const { return sequence_nr_; }

  void add_pre_hook(PreHook hook) { pre_hooks_.push_back(std::move(hook)); }
  void add_post_hook(PostHook hook) { post_hooks_.push_back(std::move(hook)); }
  const std::vector<PreHook>& pre_hooks() const { return pre_hooks_; }
  const std::vector<PostHook>& post_hooks() const { return post_hooks_; }

  // Hooks of the tensor that is forward output `slot`.
  void set_tensor_hooks(uint32_t slot, std::shared_ptr<TensorHooks> hooks);
  virtual const TensorHooks* tensor_hooks(uint32_t slot) const;
  // retain_grad(): stores the (hooked) gradient of output `slot` in that tensor's .grad.
  void set_retain_grad_hook(uint32_t slot, std::function<void(const Tensor&)> hook);
  const std::function<void(const Tensor&)>* retain_grad_hook(uint32_t slot) const;

 protected:
  std::vector<Edge> next_edges_;

 private:
  uint64_t sequence_nr_;
  std::vector<InputMetadata> input_metadata_;
  std::vector<PreHook> pre_hooks_;
  std::vector<PostHook> post_hooks_;
  std::vector<std::shared_ptr<TensorHooks>> tensor_hooks_;  // by slot; may be shorter than num_inputs()
  std::vector<std::function<void(const Tensor&)>> retain_grad_hooks_;
};

// Creation counter shared by every node.
uint64_t next_sequence_nr();

}  // namespace kiln::autograd
