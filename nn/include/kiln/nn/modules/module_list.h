#pragma once
// ModuleList: an indexable list of submodules named "0", "1", ..., as
// torch.nn.ModuleList; the model decides how to call them:
//   layers = register_module("layer", ModuleList());
//   for (int i = 0; i < n; ++i) layers->push_back(Block(cfg));
//   for (size_t i = 0; i < layers->size(); ++i) x = layers->at<BlockImpl>(i).forward(x);
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "kiln/nn/module.h"

namespace kiln::nn {

class ModuleListImpl : public Module {
 public:
  using iterator = std::vector<std::shared_ptr<Module>>::const_iterator;

  ModuleListImpl() = default;
  template <typename... Ms>
    requires(sizeof...(Ms) > 0 && (std::is_convertible_v<Ms &&, std::shared_ptr<Module>> && ...))
  explicit ModuleListImpl(Ms&&... modules) {
    (push_back(std::shared_ptr<Module>(std::forward<Ms>(modules))), ...);
  }
  explicit ModuleListImpl(const std::vector<std::shared_ptr<Module>>& modules);

  void push_back(std::shared_ptr<Module> module);
  template <typename M>
  void push_back(const ModuleHolder<M>& holder) {
    push_back(std::shared_ptr<Module>(holder.ptr()));
  }
  // Appends other's modules (shared, not copied).
  void extend(const ModuleListImpl& other);
  // Inserts before `index` (0..size(), negative from the end); later
  // modules are renamed, as torch's.
  void insert(int64_t index, std::shared_ptr<Module> module);

  size_t size() const { return modules_.size(); }
  bool is_empty() const { return modules_.empty(); }
  // Negative indices count from the end, as Python's.
  std::shared_ptr<Module> operator[](int64_t index) const { return ptr(index); }
  std::shared_ptr<Module> ptr(int64_t index) const;
  template <typename T>
  std::shared_ptr<T> ptr(int64_t index) const {
    auto m = std::dynamic_pointer_cast<T>(ptr(index));
    KILN_CHECK(m != nullptr, "ModuleList: module ", index, " is a ", ptr(index)->name(),
               ", not the type requested");
    return m;
  }
  template <typename T>
  T& at(int64_t index) const {
    return *ptr<T>(index);
  }
  iterator begin() const { return modules_.begin(); }
  iterator end() const { return modules_.end(); }

  // PyTorch's ModuleList repr: runs of identical modules print once, as
  // "(0-11): 12 x BeitLayer(...)".
  void pretty_print(std::ostream& os) const override;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};
KILN_MODULE(ModuleList);

}  // namespace kiln::nn
