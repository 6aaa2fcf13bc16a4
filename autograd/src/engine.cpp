// The backward engine. One run: find every node reachable from the roots and
// count the edges into each (its dependencies); then repeatedly take the
// ready node with the highest sequence number (the latest created, as torch;
// leaf accumulators first of all), run its hooks and formula, and add what it
// returns into the input buffers of its next nodes.
#include "kiln/autograd/engine.h"

#include <queue>
#include <unordered_map>

#include "kiln/autograd/autograd_meta.h"
#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/core/native.h"

namespace kiln::autograd {

namespace {

struct NodeState {
  std::shared_ptr<Node> node;  // keeps the node alive for the whole run
  variable_list buffer;        // gradients summed per input slot
  int dependencies = 0;
  bool needed = true;  // grad(): whether the node leads to a requested input
  std::vector<std::pair<uint32_t, size_t>> captures;  // grad(): (slot, index into the result)
};

struct ByPriority {
  bool operator()(const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) const {
    return a->sequence_nr() < b->sequence_nr();
  }
};

// Whether nothing but this handle can see t's memory, so adding into it in
// place is invisible to everyone else.
bool owned_alone(const Tensor& t) {
  if (t.impl_ptr().use_count() != 1 || t.storage().use_count() != 1 || !t.is_contiguous()) return false;
  AutogradMeta* meta = get_meta(t);
  return meta == nullptr || !meta->requires_grad();
}

void add_into(variable_list& buffer, size_t slot, Tensor grad) {
  if (!grad.defined()) return;
  Tensor& dst = buffer.at(slot);
  if (!dst.defined()) {
    dst = std::move(grad);
  } else if (GradMode::is_enabled()) {
    dst = kiln::add(dst, grad);  // create_graph: the sum is part of the new graph
  } else if (owned_alone(dst) && dst.dtype() == grad.dtype() && dst.sizes().equals(grad.sizes())) {
    native::binary_(BinaryOp::Add, dst, grad);
  } else {
    dst = native::add(dst, grad);
  }
}

// Makes a gradient fit the slot it goes to: sums broadcast dims away and
// converts dtype and device (an op's formula may return a wider dtype).
Tensor conform(Tensor grad, const InputMetadata& meta, const std::string& producer, size_t index) {
  if (!grad.sizes().equals(meta.sizes)) {
    // Only a broadcast of the expected shape can be summed back.
    bool expandable = grad.dim() >= static_cast<int64_t>(meta.sizes.size());
    const int64_t lead = grad.dim() - static_cast<int64_t>(meta.sizes.size());
    for (size_t d = 0; expandable && d < meta.sizes.size(); ++d) {
      expandable = meta.sizes[d] == 1 || meta.sizes[d] == grad.size(lead + static_cast<int64_t>(d));
    }
    KILN_CHECK(expandable, "backward: ", producer, " returned an invalid gradient at index ", index, " - got ",
               grad.sizes(), " but expected shape compatible with ", IntArrayRef(meta.sizes));
    grad = kiln::sum_to(grad, meta.sizes);
  }
  if (grad.dtype() != meta.dtype) grad = kiln::to(grad, meta.dtype);
  if (grad.device() != meta.device) grad = kiln::to(grad, meta.device);
  return grad;
}

class GraphRun {
 public:
  GraphRun(bool keep_graph) : keep_graph_(keep_graph) {}

  // Finds the graph below `roots`, counting dependencies.
  void discover(const std::vector<Edge>& roots) {
    std::vector<std::pair<Node*, size_t>> stack;
    for (const Edge& root : roots) {
      auto [it, inserted] = states_.try_emplace(root.function.get());
      if (!inserted) continue;
      it->second.node = root.function;
      stack.emplace_back(root.function.get(), 0);
      while (!stack.empty()) {
        Node* node = stack.back().first;
        const size_t i = stack.back().second++;
        if (i == node->next_edges().size()) {
          post_order_.push_back(node);
          stack.pop_back();
          continue;
        }
        const Edge& edge = node->next_edges()[i];
        if (!edge.is_valid()) continue;
        auto [child, fresh] = states_.try_emplace(edge.function.get());
        child->second.dependencies++;
        if (fresh) {
          child->second.node = edge.function;
          stack.emplace_back(edge.function.get(), 0);
        }
      }
    }
  }

  // grad(): run only the nodes that lead to a requested input; capture the
  // gradient arriving at each input's edge instead of accumulating it.
  void capture(const std::vector<Edge>& inputs) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      auto it = states_.find(inputs[i].function.get());
      if (it != states_.end()) it->second.captures.emplace_back(inputs[i].input_nr, i);
    }
    for (Node* node : post_order_) {  // children before parents
      bool needed = false;
      for (const Edge& e : node->next_edges()) {
        if (!e.is_valid()) continue;
        const NodeState& child = states_.at(e.function.get());
        needed = needed || child.needed || !child.captures.empty();
      }
      states_.at(node).needed = needed;
    }
    captured_.assign(inputs.size(), Tensor());
  }

  void seed(const Edge& root, Tensor grad) {
    NodeState& state = states_.at(root.function.get());
    if (state.buffer.empty()) state.buffer.resize(root.function->num_inputs());
    add_into(state.buffer, root.input_nr, conform(std::move(grad), root.function->input_metadata(root.input_nr),
                                                  "the root gradient", root.input_nr));
  }

  void run(const std::vector<Edge>& roots) {
    std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, ByPriority> ready;
    for (const Edge& root : roots) {
      NodeState& state = states_.at(root.function.get());
      if (state.dependencies == 0) {
        state.dependencies = -1;  // queued once even if several roots share it
        ready.push(state.node);
      }
    }
    while (!ready.empty()) {
      std::shared_ptr<Node> node = ready.top();
      ready.pop();
      NodeState& state = states_.at(node.get());
      variable_list outputs = call(*node, state);
      for (size_t i = 0; i < outputs.size(); ++i) {
        const Edge& edge = node->next_edge(i);
        if (!edge.is_valid()) continue;
        NodeState& next = states_.at(edge.function.get());
        if (next.buffer.empty()) next.buffer.resize(edge.function->num_inputs());
        add_into(next.buffer, edge.input_nr, std::move(outputs[i]));
        if (--next.dependencies == 0) ready.push(next.node);
      }
    }
  }

  variable_list& captured() { return captured_; }

 private:
  variable_list call(Node& node, NodeState& state) {
    variable_list grads = std::move(state.buffer);
    grads.resize(node.num_inputs());
    for (uint32_t slot = 0; slot < grads.size(); ++slot) {
      if (!grads[slot].defined()) continue;
      if (const TensorHooks* hooks = node.tensor_hooks(slot); hooks && !hooks->empty()) {
        Tensor hooked = hooks->run(grads[slot]);
        KILN_CHECK(hooked.sizes().equals(grads[slot].sizes()), "hook: a hook on a tensor of shape ",
                   grads[slot].sizes(), " returned a gradient of shape ", hooked.sizes());
        grads[slot] = std::move(hooked);
      }
      if (auto* retain = node.retain_grad_hook(slot)) (*retain)(grads[slot]);
    }
    for (auto [slot, index] : state.captures) {
      if (grads[slot].defined()) add_into(captured_, index, grads[slot]);
    }
    if (!state.needed) return {};

    for (const auto& hook : node.pre_hooks()) {
      variable_list replaced = hook(grads);
      if (!replaced.empty()) grads = std::move(replaced);
    }
    variable_list received;
    if (!node.post_hooks().empty()) received = grads;
    variable_list outputs = node.apply(std::move(grads));
    if (!keep_graph_) node.release_variables();

    KILN_CHECK(outputs.size() == node.num_outputs() || (outputs.empty() && node.num_outputs() == 0),
               "backward: ", node.name(), " returned ", outputs.size(), " gradients but expected ",
               node.num_outputs());
    for (size_t i = 0; i < outputs.size(); ++i) {
      const Edge& edge = node.next_edge(i);
      if (!edge.is_valid() || !outputs[i].defined()) continue;
      outputs[i] = conform(std::move(outputs[i]), edge.function->input_metadata(edge.input_nr), node.name(), i);
    }
    for (const auto& hook : node.post_hooks()) hook(outputs, received);
    return outputs;
  }

  bool keep_graph_;
  std::unordered_map<Node*, NodeState> states_;
  std::vector<Node*> post_order_;
  variable_list captured_;
};

// The edges of the roots and the gradients to start from.
std::vector<Edge> root_edges(const variable_list& roots, const variable_list& grad_roots, variable_list& grads) {
  KILN_CHECK(grad_roots.empty() || grad_roots.size() == roots.size(), "backward: got ", roots.size(),
             " tensors but ", grad_roots.size(), " gradients");
  std::vector<Edge> edges;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& root = roots[i];
    KILN_CHECK(root.defined(), "backward: tensor ", i, " is undefined");
    KILN_CHECK(root.requires_grad(), "element ", i, " of tensors does not require grad and does not have a grad_fn");
    Tensor g = grad_roots.empty() ? Tensor() : grad_roots[i];
    if (!g.defined()) {
      KILN_CHECK(root.numel() == 1, "grad can be implicitly created only for scalar outputs (output ", i,
                 " has shape ", root.sizes(), ")");
      g = native::ones_like(root);
    } else {
      KILN_CHECK(g.sizes().equals(root.sizes()), "Mismatch in shape: grad_output[", i, "] has a shape of ",
                 g.sizes(), " and output[", i, "] has a shape of ", root.sizes(), ".");
    }
    edges.push_back(gradient_edge(root));
    grads.push_back(std::move(g));
  }
  return edges;
}

}  // namespace

void backward(const variable_list& roots, const variable_list& grad_roots, std::optional<bool> retain_graph,
              bool create_graph) {
  variable_list grads;
  std::vector<Edge> edges = root_edges(roots, grad_roots, grads);
  AutoGradMode mode(create_graph);
  GraphRun run(retain_graph.value_or(create_graph));
  run.discover(edges);
  for (size_t i = 0; i < edges.size(); ++i) run.seed(edges[i], std::move(grads[i]));
  run.run(edges);
}

variable_list grad(const variable_list& outputs, const variable_list& inputs, const variable_list& grad_outputs,
                   std::optional<bool> retain_graph, bool create_graph, bool allow_unused) {
  variable_list grads;
  std::vector<Edge> edges = root_edges(outputs, grad_outputs, grads);
  std::vector<Edge> input_edges;
  for (size_t i = 0; i < inputs.size(); ++i) {
    KILN_CHECK(inputs[i].defined() && inputs[i].requires_grad(), "grad: one of the differentiated Tensors (input ",
               i, ") does not require grad");
    input_edges.push_back(gradient_edge(inputs[i]));
  }
  AutoGradMode mode(create_graph);
  GraphRun run(retain_graph.value_or(create_graph));
  run.discover(edges);
  run.capture(input_edges);
  for (size_t i = 0; i < edges.size(); ++i) run.seed(edges[i], std::move(grads[i]));
  run.run(edges);
  variable_list result = std::move(run.captured());
  for (size_t i = 0; i < result.size(); ++i) {
    KILN_CHECK(allow_unused || result[i].defined(), "grad: one of the differentiated Tensors (input ", i,
               ") appears to not have been used in the graph. Set allow_unused=True if this is the desired behavior.");
  }
  return result;
}

}  // namespace kiln::autograd
