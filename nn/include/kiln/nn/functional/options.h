#pragma once
// Building blocks for libtorch-style options structs with chained setters:
//   F::conv2d(x, w, F::Conv2dFuncOptions().stride(2).padding(1));
#include <array>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/int_array_ref.h"

namespace kiln::nn {

// N integers given as one value (repeated) or as exactly N, as libtorch's
// ExpandingArray: kernel_size(3) and kernel_size({3, 5}) both work.
template <size_t N>
class ExpandingArray {
 public:
  ExpandingArray(int64_t v) { values_.fill(v); }  // NOLINT
  ExpandingArray(std::initializer_list<int64_t> list) {  // NOLINT
    KILN_CHECK(list.size() == N || list.size() == 1, "expected ", N, " values (or 1 to repeat), got ", list.size());
    if (list.size() == 1) {
      values_.fill(*list.begin());
    } else {
      size_t i = 0;
      for (int64_t v : list) values_[i++] = v;
    }
  }
  ExpandingArray(IntArrayRef list) {  // NOLINT
    KILN_CHECK(list.size() == N || list.size() == 1, "expected ", N, " values (or 1 to repeat), got ", list.size());
    for (size_t i = 0; i < N; ++i) values_[i] = list.size() == 1 ? list[0] : list[i];
  }
  ExpandingArray(const std::vector<int64_t>& list) : ExpandingArray(IntArrayRef(list)) {}  // NOLINT
  int64_t operator[](size_t i) const { return values_[i]; }
  IntArrayRef ref() const { return IntArrayRef(values_.data(), N); }
  operator IntArrayRef() const { return ref(); }  // NOLINT
  static constexpr size_t size() { return N; }
  bool operator==(const ExpandingArray& o) const { return values_ == o.values_; }

 private:
  std::array<int64_t, N> values_{};
};

}  // namespace kiln::nn

// Declares `name_` plus a chaining setter `name(v)` and a getter `name()`.
#define KILN_FUNC_ARG(T, name, init)          \
 public:                                      \
  auto& name(const T& v) {                    \
    name##_ = v;                              \
    return *this;                             \
  }                                           \
  const T& name() const { return name##_; }   \
                                              \
 private:                                     \
  T name##_ = init
