#include "kiln/nn/modules/module_list.h"

#include <sstream>
#include <string>

namespace kiln::nn {

ModuleListImpl::ModuleListImpl(const std::vector<std::shared_ptr<Module>>& modules) {
  for (const auto& m : modules) push_back(m);
}

void ModuleListImpl::push_back(std::shared_ptr<Module> module) {
  KILN_CHECK(module != nullptr, "ModuleList: cannot add a null module");
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

void ModuleListImpl::extend(const ModuleListImpl& other) {
  std::vector<std::shared_ptr<Module>> modules = other.modules_;  // other may be this list
  for (auto& m : modules) push_back(std::move(m));
}

void ModuleListImpl::insert(int64_t index, std::shared_ptr<Module> module) {
  KILN_CHECK(module != nullptr, "ModuleList: cannot insert a null module");
  const auto n = static_cast<int64_t>(modules_.size());
  KILN_CHECK(index >= -n && index <= n, "ModuleList::insert: index ", index, " is out of range for ", n, " modules");
  const auto at = static_cast<size_t>(index < 0 ? index + n : index);
  // Children keep list order: re-register every name from `at` on.
  for (size_t i = at; i < modules_.size(); ++i) unregister_module(std::to_string(i));
  modules_.insert(modules_.begin() + static_cast<std::ptrdiff_t>(at), std::move(module));
  for (size_t i = at; i < modules_.size(); ++i) register_module(std::to_string(i), modules_[i]);
}

std::shared_ptr<Module> ModuleListImpl::ptr(int64_t index) const {
  const auto n = static_cast<int64_t>(modules_.size());
  KILN_CHECK(index >= -n && index < n, "ModuleList: index ", index, " is out of range for ", n, " modules");
  return modules_[static_cast<size_t>(index < 0 ? index + n : index)];
}

void ModuleListImpl::pretty_print(std::ostream& os) const {
  if (modules_.empty()) {
    os << name() << "()";
    return;
  }
  std::vector<std::string> reprs;
  for (const auto& m : modules_) {
    std::ostringstream s;
    m->pretty_print(s);
    reprs.push_back(s.str());
  }
  os << name() << "(";
  for (size_t start = 0; start < reprs.size();) {
    size_t end = start;
    while (end + 1 < reprs.size() && reprs[end + 1] == reprs[start]) ++end;
    std::ostringstream line;
    if (start == end) {
      line << "(" << start << "): " << reprs[start];
    } else {
      line << "(" << start << "-" << end << "): " << end - start + 1 << " x " << reprs[start];
    }
    os << "\n  " << indent_lines(line.str(), 2);
    start = end + 1;
  }
  os << "\n)";
}

}  // namespace kiln::nn
