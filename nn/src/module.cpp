// Module registration, traversal, modes and device/dtype conversion.
// state_dict()/load_state_dict() are in module_state.cpp, printing in
// module_print.cpp.
#include "kiln/nn/module.h"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

#include "kiln/autograd/grad_mode.h"
#include "kiln/core/error.h"

namespace kiln::nn {
namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// "kiln::nn::LinearImpl" -> "Linear", "(anonymous namespace)::NetImpl" ->
// "Net", "f()::BlockImpl<2>" -> "Block<2>": the type's own name (after the
// last scope separator outside template arguments and parentheses) without
// a trailing "Impl".
std::string type_name(const std::type_info& info) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(info.name(), nullptr, nullptr, &status);
  std::string full = status == 0 && demangled ? demangled : info.name();
  std::free(demangled);
  size_t begin = 0, args = std::string::npos;
  int depth = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    const char c = full[i];
    if (c == '<' || c == '(') {
      if (depth == 0 && c == '<' && args == std::string::npos) args = i;
      ++depth;
    } else if (c == '>' || c == ')') {
      --depth;
    } else if (depth == 0 && c == ':' && i + 1 < full.size() && full[i + 1] == ':') {
      begin = i + 2;
      args = std::string::npos;
      ++i;
    }
  }
  std::string base = full.substr(begin, args == std::string::npos ? std::string::npos : args - begin);
  const std::string impl = "Impl";
  if (base.size() > impl.size() && base.compare(base.size() - impl.size(), impl.size(), impl) == 0) {
    base.resize(base.size() - impl.size());
  }
  return args == std::string::npos ? base : base + full.substr(args);
}

}  // namespace

Module::Module(std::string name) : name_(std::move(name)) {
  std::call_once(name_once_, [] {});
}
Module::Module() = default;

const std::string& Module::name() const {
  // Computed on first use: during construction typeid names a base class.
  std::call_once(name_once_, [this] { name_ = type_name(typeid(*this)); });
  return name_;
}

// ---- registration ----

void Module::check_new_name(const std::string& name, const char* what) const {
  KILN_CHECK(!name.empty(), what, ": the name must not be empty");
  KILN_CHECK(name.find('.') == std::string::npos, what, ": name '", name,
             "' must not contain a dot (dots separate nested modules' names)");
  const char* used = parameters_.contains(name) ? "a parameter"
                     : buffers_.contains(name)  ? "a buffer"
                     : children_.contains(name) ? "a submodule"
                                                : nullptr;
  KILN_CHECK(used == nullptr, what, ": name '", name, "' is already used by ", used,
             " of this module (use replace_module to swap a submodule)");
}

Tensor& Module::register_parameter(std::string name, Tensor tensor, bool requires_grad) {
  check_new_name(name, "register_parameter");
  if (tensor.defined()) {
    // As nn.Parameter(t): a parameter is a leaf, so history is cut here.
    if (!tensor.is_leaf()) tensor = tensor.detach();
    KILN_CHECK(!requires_grad || tensor.is_floating_point(), "register_parameter: parameter '", name,
               "' has dtype ", dtype_name(tensor.dtype()),
               ", and only floating-point tensors can require gradients (pass requires_grad=false)");
    if (tensor.requires_grad() != requires_grad) tensor.requires_grad_(requires_grad);
  }
  return parameters_.insert(std::move(name), std::move(tensor));
}

Tensor& Module::register_buffer(std::string name, Tensor tensor, bool persistent) {
  check_new_name(name, "register_buffer");
  if (!persistent) non_persistent_.insert(name);
  return buffers_.insert(std::move(name), std::move(tensor));
}

void Module::register_child(std::string name, std::shared_ptr<Module> module) {
  check_new_name(name, "register_module");
  KILN_CHECK(module != nullptr, "register_module: submodule '", name, "' is null (an empty module holder?)");
  KILN_CHECK(module.get() != this, "register_module: a module cannot be its own submodule ('", name, "')");
  children_.insert(std::move(name), std::move(module));
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  KILN_CHECK(children_.contains(name), "replace_module: no submodule named '", name, "' in ", this->name());
  KILN_CHECK(module != nullptr, "replace_module: the new submodule '", name, "' is null");
  children_.at(name) = std::move(module);
}

void Module::unregister_module(const std::string& name) {
  KILN_CHECK(children_.erase(name), "unregister_module: no submodule named '", name, "' in ", this->name());
}

// ---- traversal ----

void Module::walk(const std::string& prefix, std::unordered_set<const Module*>& seen,
                  const std::function<void(const std::string&, const Module&)>& fn) const {
  fn(prefix, *this);
  for (const auto& item : children_) {
    if (!seen.insert(item.value.get()).second) continue;
    item.value->walk(join(prefix, item.key), seen, fn);
  }
}

OrderedDict<Tensor> Module::named_tensors(bool recurse, bool buffers) const {
  OrderedDict<Tensor> out;
  std::unordered_set<const TensorImpl*> seen_tensors;
  auto add_own = [&](const std::string& prefix, const Module& m) {
    for (const auto& item : buffers ? m.buffers_ : m.parameters_) {
      if (!item.value.defined() || !seen_tensors.insert(item.value.impl()).second) continue;
      out.insert(join(prefix, item.key), item.value);
    }
  };
  if (!recurse) {
    add_own("", *this);
    return out;
  }
  std::unordered_set<const Module*> seen{this};
  walk("", seen, add_own);
  return out;
}

OrderedDict<Tensor> Module::named_parameters(bool recurse) const { return named_tensors(recurse, false); }
std::vector<Tensor> Module::parameters(bool recurse) const { return named_parameters(recurse).values(); }
OrderedDict<Tensor> Module::named_buffers(bool recurse) const { return named_tensors(recurse, true); }
std::vector<Tensor> Module::buffers(bool recurse) const { return named_buffers(recurse).values(); }

OrderedDict<std::shared_ptr<Module>> Module::named_children() const {
  OrderedDict<std::shared_ptr<Module>> out;
  std::unordered_set<const Module*> seen;
  for (const auto& item : children_) {
    if (seen.insert(item.value.get()).second) out.insert(item.key, item.value);
  }
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const { return named_children().values(); }

OrderedDict<std::shared_ptr<Module>> Module::named_modules(const std::string& name_prefix, bool include_self) const {
  OrderedDict<std::shared_ptr<Module>> out;
  if (include_self) {
    auto self = std::const_pointer_cast<Module>(weak_from_this().lock());
    KILN_CHECK(self != nullptr, "named_modules: ", name(),
               " is not owned by a std::shared_ptr (create it through a module holder or std::make_shared), "
               "so it cannot list itself; pass include_self = false");
    out.insert(name_prefix, self);
  }
  // walk hands out const Module&; the shared_ptr comes from the parent's entry.
  std::unordered_set<const Module*> seen{this};
  std::function<void(const std::string&, const Module&)> add = [&](const std::string& prefix, const Module& m) {
    for (const auto& item : m.children_) {
      if (!seen.insert(item.value.get()).second) continue;
      std::string name = join(prefix, item.key);
      out.insert(name, item.value);
      add(name, *item.value);
    }
  };
  add(name_prefix, *this);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::modules(bool include_self) const {
  return named_modules("", include_self).values();
}

std::shared_ptr<Module> Module::get_submodule(const std::string& path) const {
  if (path.empty()) {
    auto self = std::const_pointer_cast<Module>(weak_from_this().lock());
    KILN_CHECK(self != nullptr, "get_submodule: ", name(),
               " is not owned by a std::shared_ptr, so the empty path cannot return it");
    return self;
  }
  const Module* current = this;
  std::shared_ptr<Module> found;
  for (size_t start = 0;;) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const std::shared_ptr<Module>* child = current->children_.find(part);
    KILN_CHECK(child != nullptr, "get_submodule: ", current->name(), " has no submodule '", part, "' (path '", path,
               "')");
    found = *child;
    current = found.get();
    if (dot == std::string::npos) return found;
    start = dot + 1;
  }
}

namespace {
// Splits "a.b.weight" into ("a.b", "weight").
std::pair<std::string, std::string> split_last(const std::string& path) {
  size_t dot = path.rfind('.');
  if (dot == std::string::npos) return {"", path};
  return {path.substr(0, dot), path.substr(dot + 1)};
}
}  // namespace

Tensor Module::get_parameter(const std::string& path) const {
  auto [module_path, leaf] = split_last(path);
  const Module* owner = this;
  std::shared_ptr<Module> keep;
  if (!module_path.empty()) {
    keep = get_submodule(module_path);
    owner = keep.get();
  }
  const Tensor* t = owner->parameters_.find(leaf);
  KILN_CHECK(t != nullptr && t->defined(), "get_parameter: ", owner->name(), " has no parameter '", leaf, "' (path '", path,
             "')", t != nullptr ? " (it is registered as absent)" : "");
  return *t;
}

Tensor Module::get_buffer(const std::string& path) const {
  auto [module_path, leaf] = split_last(path);
  const Module* owner = this;
  std::shared_ptr<Module> keep;
  if (!module_path.empty()) {
    keep = get_submodule(module_path);
    owner = keep.get();
  }
  const Tensor* t = owner->buffers_.find(leaf);
  KILN_CHECK(t != nullptr && t->defined(), "get_buffer: ", owner->name(), " has no buffer '", leaf, "' (path '", path,
             "')", t != nullptr ? " (it is registered as absent)" : "");
  return *t;
}

// ---- modes and state ----

void Module::train(bool on) {
  is_training_ = on;
  for (auto& item : children_) item.value->train(on);
}

void Module::convert(const std::function<Tensor(const Tensor&)>& fn) {
  NoGradGuard no_grad;
  std::unordered_set<const TensorImpl*> seen_tensors;
  auto convert_one = [&](const Tensor& t) {
    if (!t.defined() || !seen_tensors.insert(t.impl()).second) return;
    Tensor converted = fn(t);
    if (!converted.is_same(t)) t.impl()->set_data(*converted.impl());
    if (t.grad().defined()) {
      Tensor grad = fn(t.grad());
      if (!grad.is_same(t.grad())) t.mutable_grad() = grad;
    }
  };
  std::unordered_set<const Module*> seen{this};
  walk("", seen, [&](const std::string&, const Module& m) {
    for (const auto& item : m.parameters_) convert_one(item.value);
    for (const auto& item : m.buffers_) convert_one(item.value);
  });
}

void Module::to(DType dtype, bool non_blocking) {
  KILN_CHECK(is_floating_point(dtype), "Module::to: only floating-point dtypes are allowed, got ",
             dtype_name(dtype));
  convert([dtype](const Tensor& t) { return t.is_floating_point() ? kiln::to(t, dtype) : t; });
}

void Module::to(Device device, bool non_blocking) {
  convert([device, non_blocking](const Tensor& t) { return kiln::to(t, device, non_blocking); });
}

void Module::to(Device device, DType dtype, bool non_blocking) {
  KILN_CHECK(is_floating_point(dtype), "Module::to: only floating-point dtypes are allowed, got ",
             dtype_name(dtype));
  convert([device, dtype, non_blocking](const Tensor& t) {
    return t.is_floating_point() ? kiln::to(t, device, dtype, non_blocking) : kiln::to(t, device, non_blocking);
  });
}

void Module::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (const Tensor& p : parameters()) {
    if (!p.grad().defined()) continue;
    if (set_to_none) {
      p.set_grad(Tensor());
      continue;
    }
    Tensor& grad = p.mutable_grad();
    // A gradient built with create_graph has history; zeroing it must not
    // extend that graph.
    if (grad.grad_fn()) {
      grad = grad.detach();
    } else if (grad.requires_grad()) {
      grad.requires_grad_(false);
    }
    grad.zero_();
  }
}

void Module::apply(const ModuleApplyFunction& fn) {
  for (auto& item : children_) item.value->apply(fn);
  fn(*this);
}

void Module::apply(const NamedModuleApplyFunction& fn, const std::string& name_prefix) {
  for (auto& item : children_) item.value->apply(fn, join(name_prefix, item.key));
  fn(name_prefix, *this);
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) {
    if (!trainable_only || p.requires_grad()) n += p.numel();
  }
  return n;
}

}  // namespace kiln::nn
