#pragma once
// The backward engine: walks the graph from the roots once, in dependency
// order (later nodes first among the ready ones, as torch), sums the
// gradients arriving in each slot and runs each node once.
#include <optional>

#include "kiln/autograd/node.h"

namespace kiln::autograd {

// Accumulates d(roots)/d(leaf) . grad_roots into every leaf's .grad().
// grad_roots[i] may be undefined for a one-element root (then 1). The graph's
// saved tensors are freed unless retain_graph (default: create_graph).
// create_graph records the backward pass itself, for higher derivatives.
void backward(const variable_list& roots, const variable_list& grad_roots = {},
              std::optional<bool> retain_graph = std::nullopt, bool create_graph = false);

// torch.autograd.grad: returns d(outputs)/d(inputs) . grad_outputs without
// touching any .grad(). Only the part of the graph between outputs and inputs
// runs. An input the outputs do not depend on is an error unless allow_unused
// (then its gradient is undefined).
variable_list grad(const variable_list& outputs, const variable_list& inputs, const variable_list& grad_outputs = {},
                   std::optional<bool> retain_graph = std::nullopt, bool create_graph = false,
                   bool allow_unused = false);

}  // namespace kiln::autograd
