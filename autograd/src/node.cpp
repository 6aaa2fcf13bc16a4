#include "kiln/autograd/node.h"

#include <atomic>

namespace kiln::autograd {

uint64_t next_sequence_nr() {
  static std::atomic<uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed);
}

Node::Node() : sequence_nr_(next_sequence_nr()) {}

Node::~Node() {
  // A long chain of nodes would otherwise be freed by recursion as deep as
  // the chain; take over the edges of every node only we hold and free them
  // one at a time.
  std::vector<std::shared_ptr<Node>> pending;
  auto take = [&pending](std::vector<Edge>& edges) {
    for (Edge& e : edges) {
      if (e.function && e.function.use_count() == 1) pending.push_back(std::move(e.function));
    }
    edges.clear();
  };
  take(next_edges_);
  while (!pending.empty()) {
    std::shared_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    take(node->next_edges_);
  }
}

uint32_t Node::add_input_metadata(const Tensor& t) {
  input_metadata_.push_back(InputMetadata{t.sizes().dims(), t.dtype(), t.device()});
  return static_cast<uint32_t>(input_metadata_.size() - 1);
}

void Node::set_tensor_hooks(uint32_t slot, std::shared_ptr<TensorHooks> hooks) {
  if (tensor_hooks_.size() <= slot) tensor_hooks_.resize(slot + 1);
  tensor_hooks_[slot] = std::move(hooks);
}

const TensorHooks* Node::tensor_hooks(uint32_t slot) const {
  return slot < tensor_hooks_.size() ? tensor_hooks_[slot].get() : nullptr;
}

void Node::set_retain_grad_hook(uint32_t slot, std::function<void(const Tensor&)> hook) {
  if (retain_grad_hooks_.size() <= slot) retain_grad_hooks_.resize(slot + 1);
  retain_grad_hooks_[slot] = std::move(hook);
}

const std::function<void(const Tensor&)>* Node::retain_grad_hook(uint32_t slot) const {
  if (slot >= retain_grad_hooks_.size() || !retain_grad_hooks_[slot]) return nullptr;
  return &retain_grad_hooks_[slot];
}

unsigned TensorHooks::add(Hook hook) {
  hooks_.emplace_back(next_handle_, std::move(hook));
  return next_handle_++;
}

bool TensorHooks::remove(unsigned handle) {
  for (auto it = hooks_.begin(); it != hooks_.end(); ++it) {
    if (it->first == handle) {
      hooks_.erase(it);
      return true;
    }
  }
  return false;
}

Tensor TensorHooks::run(Tensor grad) const {
  // Copy: a hook may register or remove hooks on the same tensor.
  auto hooks = hooks_;
  for (auto& [handle, hook] : hooks) {
    Tensor replaced = hook(grad);
    if (replaced.defined()) grad = std::move(replaced);
  }
  return grad;
}

}  // namespace kiln::autograd
