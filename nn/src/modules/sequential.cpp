#include "kiln/nn/modules/sequential.h"

#include <string>

namespace kiln::nn {

namespace {
size_t normalize_index(const char* op, int64_t index, size_t size) {
  const auto n = static_cast<int64_t>(size);
  KILN_CHECK(index >= -n && index < n, op, ": index ", index, " is out of range for ", size, " modules");
  return static_cast<size_t>(index < 0 ? index + n : index);
}
}  // namespace

SequentialImpl::SequentialImpl(std::initializer_list<NamedSequentialEntry> named) {
  for (const auto& item : named) push_back(item.name, item.module);
}

void SequentialImpl::push_back(SequentialEntry module) { push_back(std::to_string(modules_.size()), std::move(module)); }

void SequentialImpl::push_back(std::string name, SequentialEntry module) {
  register_module(std::move(name), module.module());
  modules_.push_back(module.module());
  entries_.push_back(std::move(module));
}

void SequentialImpl::extend(const SequentialImpl& other) {
  // Copy first: other may be this module.
  std::vector<SequentialEntry> entries = other.entries_;
  for (auto& e : entries) push_back(std::move(e));
}

Tensor SequentialImpl::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& entry : entries_) x = entry.forward(x);
  return x;
}

std::shared_ptr<Module> SequentialImpl::ptr(int64_t index) const {
  return modules_[normalize_index("Sequential", index, modules_.size())];
}

}  // namespace kiln::nn
