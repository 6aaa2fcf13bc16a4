#include "kiln/nn/modules/module_dict.h"

namespace kiln::nn {

ModuleDictImpl::ModuleDictImpl(const Items& modules) { update(modules); }

ModuleDictImpl::ModuleDictImpl(const OrderedDict<std::shared_ptr<Module>>& modules) {
  for (const auto& item : modules) insert(item.key, item.value);
}

void ModuleDictImpl::insert(const std::string& key, std::shared_ptr<Module> module) {
  KILN_CHECK(module != nullptr, "ModuleDict: cannot add a null module under '", key, "'");
  if (modules_.contains(key)) {
    replace_module(key, module);
    modules_.at(key) = std::move(module);
  } else {
    register_module(key, module);
    modules_.insert(key, std::move(module));
  }
}

void ModuleDictImpl::update(const Items& modules) {
  for (const auto& [key, module] : modules) insert(key, module);
}

std::shared_ptr<Module> ModuleDictImpl::pop(const std::string& key) {
  std::shared_ptr<Module> m = ptr(key);
  unregister_module(key);
  modules_.erase(key);
  return m;
}

void ModuleDictImpl::clear() {
  for (const auto& key : modules_.keys()) unregister_module(key);
  modules_.clear();
}

std::shared_ptr<Module> ModuleDictImpl::ptr(const std::string& key) const {
  const std::shared_ptr<Module>* m = modules_.find(key);
  KILN_CHECK(m != nullptr, "ModuleDict: no module named '", key, "'");
  return *m;
}

}  // namespace kiln::nn
