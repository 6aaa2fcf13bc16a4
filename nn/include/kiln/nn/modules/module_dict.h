#pragma once
// ModuleDict: submodules by name, in insertion order, as torch.nn.ModuleDict:
//   ModuleDict heads({{"cls", Linear(768, 2)}, {"reg", Linear(768, 1)}});
//   auto y = heads->at<LinearImpl>("cls").forward(x);
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/nn/module.h"

namespace kiln::nn {

class ModuleDictImpl : public Module {
 public:
  using Items = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;
  using iterator = OrderedDict<std::shared_ptr<Module>>::const_iterator;

  ModuleDictImpl() = default;
  explicit ModuleDictImpl(const Items& modules);
  explicit ModuleDictImpl(const OrderedDict<std::shared_ptr<Module>>& modules);

  // Adds `key`, or replaces the module under it (keeping its position), as
  // torch's dict[key] = module.
  void insert(const std::string& key, std::shared_ptr<Module> module);
  template <typename M>
  void insert(const std::string& key, const ModuleHolder<M>& holder) {
    insert(key, std::shared_ptr<Module>(holder.ptr()));
  }
  void update(const Items& modules);
  // Removes `key` and returns its module.
  std::shared_ptr<Module> pop(const std::string& key);
  void clear();

  bool contains(const std::string& key) const { return modules_.contains(key); }
  size_t size() const { return modules_.size(); }
  bool is_empty() const { return modules_.empty(); }
  std::vector<std::string> keys() const { return modules_.keys(); }
  std::vector<std::shared_ptr<Module>> values() const { return modules_.values(); }
  const OrderedDict<std::shared_ptr<Module>>& items() const { return modules_; }

  std::shared_ptr<Module> operator[](const std::string& key) const { return ptr(key); }
  std::shared_ptr<Module> ptr(const std::string& key) const;
  template <typename T>
  std::shared_ptr<T> ptr(const std::string& key) const {
    auto m = std::dynamic_pointer_cast<T>(ptr(key));
    KILN_CHECK(m != nullptr, "ModuleDict: module '", key, "' is a ", ptr(key)->name(), ", not the type requested");
    return m;
  }
  template <typename T>
  T& at(const std::string& key) const {
    return *ptr<T>(key);
  }
  iterator begin() const { return modules_.begin(); }
  iterator end() const { return modules_.end(); }

 private:
  OrderedDict<std::shared_ptr<Module>> modules_;
};

class ModuleDict : public ModuleHolder<ModuleDictImpl> {
 public:
  using ModuleHolder<ModuleDictImpl>::ModuleHolder;
  using Impl = ModuleDictImpl;
  ModuleDict(std::initializer_list<std::pair<std::string, std::shared_ptr<Module>>> modules)  // NOLINT
      : ModuleHolder(std::make_shared<ModuleDictImpl>(ModuleDictImpl::Items(modules))) {}
};

}  // namespace kiln::nn
