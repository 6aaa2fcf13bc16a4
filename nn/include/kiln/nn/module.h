#pragma once
// kiln::nn::Module: the base of every layer and model, with libtorch's API
// and PyTorch's semantics. A module owns named parameters, buffers and child
// modules in registration order; names nest with dots
// ("encoder.layer.0.attention.query.weight"), which is also how state_dict()
// keys read, so a Hugging Face checkpoint loads by name.
//
//   struct BlockImpl : kiln::nn::Module {
//     BlockImpl(int64_t d) {
//       fc = register_module("fc", kiln::nn::Linear(d, d));
//       scale = register_parameter("scale", kiln::ones({d}));
//       register_buffer("steps", kiln::zeros({}, kiln::kInt64));
//     }
//     kiln::Tensor forward(const kiln::Tensor& x) { return fc(x) * scale; }
//     kiln::nn::Linear fc{nullptr};
//     kiln::Tensor scale;
//   };
//   KILN_MODULE(Block);
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/nn/module_holder.h"
#include "kiln/nn/ordered_dict.h"

namespace kiln::nn {

// What load_state_dict(strict = false) reports (PyTorch's _IncompatibleKeys).
struct LoadStateDictResult {
  std::vector<std::string> missing_keys;     // in the model, absent from the state dict
  std::vector<std::string> unexpected_keys;  // in the state dict, not in the model
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  using ModuleApplyFunction = std::function<void(Module&)>;
  using NamedModuleApplyFunction = std::function<void(const std::string&, Module&)>;

  // The name printed for this module; by default the class name without
  // namespaces and without a trailing "Impl" (LinearImpl prints as Linear).
  explicit Module(std::string name);
  Module();
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& name() const;

  // This module as T (an Impl class or its holder), or null if it is not one:
  //   if (auto* fc = child->as<Linear>()) fc->reset_parameters();
  template <typename T>
  auto* as() noexcept {
    if constexpr (requires { typename T::ContainedType; }) {
      return dynamic_cast<typename T::ContainedType*>(this);
    } else {
      return dynamic_cast<T*>(this);
    }
  }
  template <typename T>
  const auto* as() const noexcept {
    return const_cast<Module*>(this)->as<T>();
  }

  // ---- registration (names: non-empty, no '.', unique among this module's
  // parameters, buffers and children) ----

  // Registers `tensor` as the parameter `name` and returns it. A leaf keeps
  // its identity (the caller's handle stays the parameter); a tensor with
  // history is detached first, as nn.Parameter(t). requires_grad is set as
  // given. An undefined tensor registers an absent parameter (an optional
  // bias): it takes its name but is skipped by parameters() and state_dict().
  Tensor& register_parameter(std::string name, Tensor tensor, bool requires_grad = true);
  // Registers a buffer (state that is not trained: running statistics,
  // position ids). Non-persistent buffers are moved by to() but left out of
  // state_dict(), as torch's register_buffer(..., persistent=False).
  Tensor& register_buffer(std::string name, Tensor tensor, bool persistent = true);
  template <typename M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>, "register_module: M must derive from kiln::nn::Module");
    register_child(std::move(name), module);
    return module;
  }
  template <typename M>
  std::shared_ptr<M> register_module(std::string name, ModuleHolder<M> holder) {
    return register_module(std::move(name), holder.ptr());
  }
  // Replaces an already registered child (keeping its position), e.g. to
  // swap a model's classification head.
  template <typename M>
  std::shared_ptr<M> replace_module(const std::string& name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>, "replace_module: M must derive from kiln::nn::Module");
    replace_child(name, module);
    return module;
  }
  template <typename M>
  std::shared_ptr<M> replace_module(const std::string& name, ModuleHolder<M> holder) {
    return replace_module(name, holder.ptr());
  }
  void unregister_module(const std::string& name);

  // ---- traversal. Like PyTorch, a tensor or module reachable under several
  // names (tied weights, a shared block) is listed once, under its first
  // name; state_dict() lists every name. ----

  // Defined parameters, this module's first, then each child's ("fc.weight").
  OrderedDict<Tensor> named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  OrderedDict<Tensor> named_buffers(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  OrderedDict<std::shared_ptr<Module>> named_children() const;
  std::vector<std::shared_ptr<Module>> children() const;
  // Depth first, parent before children; this module is named "" (or
  // name_prefix). Including it needs the module to be owned by a shared_ptr
  // (a holder or make_shared), as in libtorch.
  OrderedDict<std::shared_ptr<Module>> named_modules(const std::string& name_prefix = "",
                                                     bool include_self = true) const;
  std::vector<std::shared_ptr<Module>> modules(bool include_self = true) const;
  // The descendant at a dotted path ("encoder.layer.0"); "" is this module.
  std::shared_ptr<Module> get_submodule(const std::string& path) const;
  // The parameter or buffer at a dotted path ("encoder.layer.0.fc.weight").
  Tensor get_parameter(const std::string& path) const;
  Tensor get_buffer(const std::string& path) const;

  // ---- modes and state ----
  virtual void train(bool on = true);  // this module and every descendant
  void eval() { train(false); }
  virtual bool is_training() const noexcept { return is_training_; }

  // Converts floating-point parameters and buffers (with their .grad) to
  // dtype, or moves every parameter and buffer to device, in place: each
  // tensor keeps its identity, so handles held elsewhere see the new data,
  // and parameters stay leaves with their requires_grad.
  virtual void to(DType dtype, bool non_blocking = false);
  virtual void to(Device device, bool non_blocking = false);
  virtual void to(Device device, DType dtype, bool non_blocking = false);

  // Clears every parameter's gradient: drops it (set_to_none, the PyTorch
  // default) or zeroes it in place, detached from any graph.
  void zero_grad(bool set_to_none = true);

  // Calls fn on every descendant, then on this module (PyTorch's order, so an
  // init function applied to a model sees children before their parent).
  void apply(const ModuleApplyFunction& fn);
  void apply(const NamedModuleApplyFunction& fn, const std::string& name_prefix = "");

  // Number of elements over parameters() (tied parameters counted once);
  // trainable_only counts those that require grad.
  int64_t num_parameters(bool trainable_only = false) const;

  // ---- checkpoints ----

  // Parameters and persistent buffers by dotted name, each module's own
  // before its children's, in registration order. Values are detached views
  // sharing the module's memory (keep_vars: the tensors themselves).
  StateDict state_dict(const std::string& prefix = "", bool keep_vars = false) const;
  // Copies values in place, without recording gradients, converting dtype
  // and device as Tensor::copy_. Every problem is collected first and the
  // module is left untouched if there is any: shape mismatches are always
  // errors; missing and unexpected keys are errors when strict, else
  // returned. The message lists them all, as torch's:
  //   Error(s) in loading state_dict for Net:
  //   	Missing key(s) in state_dict: "fc.bias".
  //   	Unexpected key(s) in state_dict: "foo".
  //   	size mismatch for fc.weight: copying a param with shape [3, 5] from
  //   	checkpoint, the shape in current model is [3, 4].
  LoadStateDictResult load_state_dict(const StateDict& state_dict, bool strict = true);

  // ---- printing ----

  // PyTorch's extra_repr: this module's settings, printed inside its
  // parentheses ("in_features=4, out_features=3, bias=true"). Lines after the
  // first go on lines of their own above the children. Empty by default.
  virtual std::string extra_repr() const { return {}; }
  // Writes the module tree as PyTorch's repr:
  //   Net(
  //     (fc): Linear(in_features=4, out_features=3, bias=true)
  //     (act): ReLU()
  //   )
  // Override for a different layout; nested modules are indented for you.
  virtual void pretty_print(std::ostream& os) const;

 protected:
  // The parameters, buffers and children registered directly on this module
  // (undefined entries included), for subclasses that print or walk them.
  const OrderedDict<Tensor>& own_parameters() const { return parameters_; }
  const OrderedDict<Tensor>& own_buffers() const { return buffers_; }
  bool is_persistent_buffer(const std::string& name) const { return !non_persistent_.count(name); }

  bool is_training_ = true;

 private:
  void register_child(std::string name, std::shared_ptr<Module> module);
  void replace_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  // Calls fn(dotted name, module) on this module and each descendant once,
  // parent first, skipping modules already seen under another name.
  void walk(const std::string& prefix, std::unordered_set<const Module*>& seen,
            const std::function<void(const std::string&, const Module&)>& fn) const;
  OrderedDict<Tensor> named_tensors(bool recurse, bool buffers) const;
  void convert(const std::function<Tensor(const Tensor&)>& fn);
  void collect_state(const std::string& prefix, bool keep_vars, StateDict& out) const;

  // Filled on first use (thread-safe: data loader threads may print).
  mutable std::once_flag name_once_;
  mutable std::string name_;
  OrderedDict<Tensor> parameters_;
  OrderedDict<Tensor> buffers_;
  std::unordered_set<std::string> non_persistent_;
  OrderedDict<std::shared_ptr<Module>> children_;
};

// PyTorch's repr(module), via pretty_print.
std::ostream& operator<<(std::ostream& os, const Module& module);

// Indents every line of `text` after the first by `spaces` (PyTorch's
// _addindent), for pretty_print overrides that nest modules.
std::string indent_lines(const std::string& text, int spaces);

}  // namespace kiln::nn
