#pragma once
// How a differentiable op is written: run the raw op from kiln::native, then
// record() its backward formula beside it.
//
//   Tensor mul(const Tensor& a, const Tensor& b) {
//     return record("MulBackward0", native::mul(a, b), {a, b}, {a, b},
//                   [](FunctionNode& c, const Tensor& g) -> variable_list {
//                     return {c.needs(0) ? c.reduce(0, g * c.saved(1)) : Tensor(),
//                             c.needs(1) ? c.reduce(1, g * c.saved(0)) : Tensor()};
//                   });
//   }
//
// record() does nothing (beyond returning the result) unless grad mode is on,
// an input requires grad and the result is floating point. Otherwise it makes
// a FunctionNode with one next edge per input, saves `saved` (and the result
// when asked) as SavedVariables, and sets the result's grad_fn.
//
// Formulas are written with the differentiable kiln:: functions. The engine
// runs them with grad mode set to create_graph, so the same formula is a
// plain computation in an ordinary backward and records a graph for double
// backward. A lambda must capture only non-tensor values (sizes, scalars):
// tensors go through `saved` so they are version-checked and released.
#include <functional>
#include <initializer_list>
#include <memory>
#include <utility>
#include <vector>

#include "kiln/autograd/autograd_meta.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/node.h"
#include "kiln/autograd/saved_variable.h"

namespace kiln::autograd {

// A non-owning list of tensors built from braces or a vector; valid for the
// full expression it appears in, like IntArrayRef.
class TensorList {
 public:
  TensorList() = default;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
  TensorList(std::initializer_list<Tensor> list) : data_(list.begin()), size_(list.size()) {}  // NOLINT
#pragma GCC diagnostic pop
  TensorList(const std::vector<Tensor>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT
  size_t size() const { return size_; }
  const Tensor* begin() const { return data_; }
  const Tensor* end() const { return data_ + size_; }
  const Tensor& operator[](size_t i) const { return data_[i]; }

 private:
  const Tensor* data_ = nullptr;
  size_t size_ = 0;
};

class FunctionNode;
// The formula: gradients of the outputs in, one gradient per input out.
using MultiBackwardFn = std::function<variable_list(FunctionNode& ctx, const variable_list& grads)>;

// A node whose backward is a formula. It is also the context the formula
// reads: saved tensors, which inputs need gradients, the inputs' shapes.
class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, MultiBackwardFn formula) : name_(name), formula_(std::move(formula)) {}

  variable_list apply(variable_list&& grads) override;
  std::string name() const override { return name_; }
  void release_variables() override;

  // ---- for formulas ----
  // Saved tensor i, in the order given to record(); errors if modified in place since.
  Tensor saved(size_t i);
  // The forward result i (when recorded with save_result).
  Tensor result(size_t i = 0);
  // Whether input i needs a gradient; a formula may skip the others.
  bool needs(size_t i) const { return should_compute_output(i); }
  IntArrayRef input_sizes(size_t i) const { return inputs_.at(i).sizes; }
  DType input_dtype(size_t i) const { return inputs_.at(i).dtype; }
  Device input_device(size_t i) const { return inputs_.at(i).device; }
  TensorOptions input_options(size_t i) const { return TensorOptions().dtype(input_dtype(i)).device(input_device(i)); }
  // A gradient for input i: a broadcast gradient summed back to its shape
  // and cast to its dtype.
  Tensor reduce(size_t i, const Tensor& grad) const;

  // ---- for record() ----
  void set_inputs(TensorList inputs);
  void save(TensorList tensors);
  void save_result(const Tensor& result);

 private:
  const char* name_;
  MultiBackwardFn formula_;
  std::vector<InputMetadata> inputs_;
  std::vector<SavedVariable> saved_;
  std::vector<SavedVariable> results_;
};

// True when an op on these inputs must be recorded: grad mode is on and one
// of them requires grad.
bool should_record(TensorList inputs);

// The node for a differentiable op, or null when nothing needs recording.
// Attach the outputs with add_output(). Most ops use record() instead.
std::shared_ptr<FunctionNode> make_node(const char* name, TensorList inputs, TensorList saved,
                                        MultiBackwardFn formula);
// Makes `output` the node's next output (integer outputs get no history).
void add_output(const std::shared_ptr<FunctionNode>& node, const Tensor& output, bool save = false);

// A one-output op. `formula(FunctionNode& c, const Tensor& grad) -> variable_list`
// returns one gradient per input (undefined where none). With save_result
// the formula can read c.result().
template <typename F>
Tensor record(const char* name, Tensor result, TensorList inputs, TensorList saved, F&& formula,
              bool save_result = false) {
  if (!is_floating_point(result.dtype()) || !should_record(inputs)) return result;
  auto node = make_node(name, inputs, saved,
                        [f = std::forward<F>(formula)](FunctionNode& c, const variable_list& grads) {
                          return f(c, grads[0]);
                        });
  add_output(node, result, save_result);
  return result;
}

// As record(), for ops whose result aliases the input's memory: the result
// is also marked as a view of `input` (whether or not anything is recorded),
// so in-place ops on it can be refused while gradients are involved.
template <typename F>
Tensor record_view(const char* name, Tensor result, const Tensor& input, F&& formula) {
  set_view_base(result, input);
  return record(name, std::move(result), {input}, {}, std::forward<F>(formula));
}

// Call before an in-place op writes `self` (with `others` the other
// differentiable operands). When the op will be recorded, refuses a leaf that
// requires grad and any view (in-place ops on views are not supported by
// Kiln's autograd yet). Afterwards record the op with `self` as both an input
// and the result: that rebases self's history onto the new node.
void check_inplace(const Tensor& self, TensorList others = {});

}  // namespace kiln::autograd
