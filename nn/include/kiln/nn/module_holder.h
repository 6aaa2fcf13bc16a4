#pragma once
// ModuleHolder<Impl>: libtorch's "pimpl" handle to a module. `Linear` is a
// shared pointer to a `LinearImpl` with value syntax: copies share the module,
// `->` reaches its members, and calling it runs forward():
//
//   struct NetImpl : kiln::nn::Module {
//     NetImpl() { fc = register_module("fc", kiln::nn::Linear(4, 3)); }
//     kiln::Tensor forward(const kiln::Tensor& x) { return fc(x); }
//     kiln::nn::Linear fc{nullptr};
//   };
//   KILN_MODULE(Net);
//   Net net;            // constructs NetImpl()
//   auto y = net(x);    // net->forward(x)
#include <cstddef>
#include <memory>
#include <ostream>
#include <type_traits>
#include <utility>

#include "kiln/core/error.h"

namespace kiln::nn {

template <typename Contained>
class ModuleHolder {
 public:
  using ContainedType = Contained;

  // Constructs Contained() when it has a default constructor. A module
  // without one must be given arguments, or nullptr for the empty state
  // (`Linear fc{nullptr};` as a member that is registered later).
  ModuleHolder() : impl_(default_construct()) {}
  ModuleHolder(std::nullptr_t) {}  // NOLINT: `Linear fc = nullptr;`

  // Forwards any other arguments to Contained's constructor:
  // Linear(4, 3), Linear(LinearOptions(4, 3).bias(false)).
  template <typename Head, typename... Tail>
    requires(!(sizeof...(Tail) == 0 && std::is_base_of_v<ModuleHolder, std::decay_t<Head>>) &&
             std::is_constructible_v<Contained, Head, Tail...>)
  explicit ModuleHolder(Head&& head, Tail&&... tail)
      : impl_(std::make_shared<Contained>(std::forward<Head>(head), std::forward<Tail>(tail)...)) {}

  // Wraps an existing module (what register_module returns).
  ModuleHolder(std::shared_ptr<Contained> module) : impl_(std::move(module)) {}  // NOLINT

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  bool is_empty() const noexcept { return impl_ == nullptr; }

  Contained* operator->() { return get(); }
  const Contained* operator->() const { return get(); }
  Contained& operator*() { return *get(); }
  const Contained& operator*() const { return *get(); }
  Contained* get() {
    check();
    return impl_.get();
  }
  const Contained* get() const {
    check();
    return impl_.get();
  }
  const std::shared_ptr<Contained>& ptr() const {
    check();
    return impl_;
  }
  // Lets a holder stand where a shared_ptr to the module or one of its bases
  // is expected (ModuleDict's initializer list, a list of shared_ptr<Module>).
  template <typename T>
    requires std::is_convertible_v<Contained*, T*>
  operator std::shared_ptr<T>() const {  // NOLINT
    return impl_;
  }

  // net(x, mask) == net->forward(x, mask).
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) {
    return get()->forward(std::forward<Args>(args)...);
  }
  // seq[0], dict["key"], for containers.
  template <typename Arg>
  decltype(auto) operator[](Arg&& arg) {
    return (*get())[std::forward<Arg>(arg)];
  }

 protected:
  std::shared_ptr<Contained> impl_;

 private:
  static std::shared_ptr<Contained> default_construct() {
    static_assert(std::is_default_constructible_v<Contained>,
                  "this module has no default constructor: give it arguments, or nullptr for the empty state "
                  "(`Linear fc{nullptr};` instead of `Linear fc;`)");
    return std::make_shared<Contained>();
  }
  void check() const { KILN_CHECK(impl_ != nullptr, "accessing an empty ModuleHolder (constructed with nullptr)"); }
};

template <typename Contained>
std::ostream& operator<<(std::ostream& os, const ModuleHolder<Contained>& holder) {
  if (holder.is_empty()) return os << "(empty module holder)";
  return os << *holder;
}

}  // namespace kiln::nn

// Declares the holder `Name` for the module class `NameImpl`, as TORCH_MODULE.
#define KILN_MODULE_IMPL(Name, ImplType)                   \
  class Name : public ::kiln::nn::ModuleHolder<ImplType> { \
   public:                                                 \
    using ::kiln::nn::ModuleHolder<ImplType>::ModuleHolder; \
    using Impl = ImplType;                                 \
  }

#define KILN_MODULE(Name) KILN_MODULE_IMPL(Name, Name##Impl)
