#pragma once
// Sequential: runs its modules in order, each one's output the next one's
// input, as torch.nn.Sequential. Children are named "0", "1", ... or by the
// names given:
//   Sequential seq(Linear(4, 8), ReLU(), Linear(8, 2));
//   Sequential named({{"fc", Linear(4, 8)}, {"act", GELU()}});
//   auto y = seq(x);  seq[0] is the first module; seq->at<LinearImpl>(0) too.
// Every module needs a `forward(const Tensor&)` returning a Tensor
// (checked at compile time).
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kiln/nn/module.h"

namespace kiln::nn {

template <typename M>
concept TensorToTensorModule = std::derived_from<M, Module> && requires(M& m, const Tensor& x) {
  { m.forward(x) } -> std::convertible_to<Tensor>;
};

// A module together with a call of its forward, so Sequential can chain
// modules of different types.
class SequentialEntry {
 public:
  template <TensorToTensorModule M>
  SequentialEntry(std::shared_ptr<M> module)  // NOLINT
      : module_(module), forward_([m = module.get()](const Tensor& x) -> Tensor { return m->forward(x); }) {
    KILN_CHECK(module != nullptr, "Sequential: cannot add a null module");
  }
  template <TensorToTensorModule M>
  SequentialEntry(const ModuleHolder<M>& holder) : SequentialEntry(holder.ptr()) {}  // NOLINT

  const std::shared_ptr<Module>& module() const { return module_; }
  Tensor forward(const Tensor& x) const { return forward_(x); }

 private:
  std::shared_ptr<Module> module_;
  std::function<Tensor(const Tensor&)> forward_;
};

struct NamedSequentialEntry {
  std::string name;
  SequentialEntry module;
};

class SequentialImpl : public Module {
 public:
  using iterator = std::vector<std::shared_ptr<Module>>::const_iterator;

  SequentialImpl() = default;
  template <typename... Ms>
    requires(sizeof...(Ms) > 0 && (std::is_constructible_v<SequentialEntry, Ms &&> && ...))
  explicit SequentialImpl(Ms&&... modules) {
    (push_back(SequentialEntry(std::forward<Ms>(modules))), ...);
  }
  explicit SequentialImpl(std::initializer_list<NamedSequentialEntry> named);

  // Appends under the next index ("0", "1", ...) or under `name`.
  void push_back(SequentialEntry module);
  void push_back(std::string name, SequentialEntry module);
  // Appends other's modules (shared, not copied) under fresh indices.
  void extend(const SequentialImpl& other);

  // The input unchanged when empty, as torch.
  Tensor forward(const Tensor& input);

  size_t size() const { return modules_.size(); }
  bool is_empty() const { return modules_.empty(); }
  // Negative indices count from the end, as Python's.
  std::shared_ptr<Module> operator[](int64_t index) const { return ptr(index); }
  std::shared_ptr<Module> ptr(int64_t index) const;
  template <typename T>
  std::shared_ptr<T> ptr(int64_t index) const {
    auto m = std::dynamic_pointer_cast<T>(ptr(index));
    KILN_CHECK(m != nullptr, "Sequential: module ", index, " is a ", ptr(index)->name(),
               ", not the type requested");
    return m;
  }
  template <typename T>
  T& at(int64_t index) const {
    return *ptr<T>(index);
  }
  iterator begin() const { return modules_.begin(); }
  iterator end() const { return modules_.end(); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
  std::vector<SequentialEntry> entries_;
};

class Sequential : public ModuleHolder<SequentialImpl> {
 public:
  using ModuleHolder<SequentialImpl>::ModuleHolder;
  using Impl = SequentialImpl;
  Sequential(std::initializer_list<NamedSequentialEntry> named)  // NOLINT
      : ModuleHolder(std::make_shared<SequentialImpl>(named)) {}
};

}  // namespace kiln::nn
