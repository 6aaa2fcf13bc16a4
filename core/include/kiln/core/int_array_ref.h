#pragma once
// A non-owning view of a list of int64, built from braces, vectors or a
// single integer, so calls read like libtorch's: x.view({2, -1}).
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <vector>

#include "kiln/core/small_vector.h"

namespace kiln {

class IntArrayRef {
 public:
  constexpr IntArrayRef() = default;
  IntArrayRef(const int64_t& single) : data_(&single), size_(1) {}  // NOLINT
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
  // Valid for the full expression the braces appear in, which is how ops take sizes.
  IntArrayRef(std::initializer_list<int64_t> list) : data_(list.begin()), size_(list.size()) {}  // NOLINT
#pragma GCC diagnostic pop
  IntArrayRef(const std::vector<int64_t>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT
  IntArrayRef(const DimVector& v) : data_(v.data()), size_(v.size()) {}  // NOLINT
  constexpr IntArrayRef(const int64_t* data, size_t size) : data_(data), size_(size) {}

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const int64_t* data() const { return data_; }
  const int64_t* begin() const { return data_; }
  const int64_t* end() const { return data_ + size_; }
  int64_t operator[](size_t i) const { return data_[i]; }
  int64_t front() const { return data_[0]; }
  int64_t back() const { return data_[size_ - 1]; }
  std::vector<int64_t> vec() const { return {begin(), end()}; }
  DimVector dims() const { return DimVector(data_, size_); }
  bool equals(IntArrayRef o) const {
    if (size_ != o.size_) return false;
    for (size_t i = 0; i < size_; ++i)
      if (data_[i] != o.data_[i]) return false;
    return true;
  }

 private:
  const int64_t* data_ = nullptr;
  size_t size_ = 0;
};

inline bool operator==(IntArrayRef a, IntArrayRef b) { return a.equals(b); }
inline bool operator!=(IntArrayRef a, IntArrayRef b) { return !a.equals(b); }

// Prints [2, 3, 4], the form every error message uses for shapes.
std::ostream& operator<<(std::ostream& os, IntArrayRef a);
inline std::ostream& operator<<(std::ostream& os, const DimVector& a) { return os << IntArrayRef(a); }

}  // namespace kiln
