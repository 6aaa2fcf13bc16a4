#pragma once
// A vector of int64 with inline room for a few elements: tensor sizes and
// strides are nearly always short, and per-op overhead on small tensors is
// dominated by heap allocations when they are not.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>

namespace kiln {

class IntArrayRef;

class DimVector {
 public:
  static constexpr size_t kInline = 6;

  DimVector() = default;
  explicit DimVector(size_t n, int64_t value = 0) { resize(n, value); }
  DimVector(std::initializer_list<int64_t> values) { assign(values.begin(), values.size()); }
  DimVector(const int64_t* data, size_t n) { assign(data, n); }
  DimVector(const DimVector& other) { assign(other.data(), other.size()); }
  DimVector(DimVector&& other) noexcept { move_from(std::move(other)); }
  DimVector& operator=(const DimVector& other) {
    if (this != &other) assign(other.data(), other.size());
    return *this;
  }
  DimVector& operator=(DimVector&& other) noexcept {
    if (this != &other) move_from(std::move(other));
    return *this;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int64_t* data() { return heap_ ? heap_.get() : inline_; }
  const int64_t* data() const { return heap_ ? heap_.get() : inline_; }
  int64_t& operator[](size_t i) { return data()[i]; }
  int64_t operator[](size_t i) const { return data()[i]; }
  int64_t* begin() { return data(); }
  int64_t* end() { return data() + size_; }
  const int64_t* begin() const { return data(); }
  const int64_t* end() const { return data() + size_; }
  int64_t& back() { return data()[size_ - 1]; }
  int64_t back() const { return data()[size_ - 1]; }

  void reserve(size_t n) {
    if (n <= capacity()) return;
    std::unique_ptr<int64_t[]> grown(new int64_t[n]);
    std::memcpy(grown.get(), data(), size_ * sizeof(int64_t));
    heap_ = std::move(grown);
    heap_capacity_ = n;
  }
  void resize(size_t n, int64_t value = 0) {
    reserve(n);
    for (size_t i = size_; i < n; ++i) data()[i] = value;
    size_ = n;
  }
  void push_back(int64_t v) {
    if (size_ == capacity()) reserve(std::max<size_t>(2 * capacity(), 8));
    data()[size_++] = v;
  }
  void insert(size_t pos, int64_t v) {
    push_back(0);
    int64_t* d = data();
    std::memmove(d + pos + 1, d + pos, (size_ - 1 - pos) * sizeof(int64_t));
    d[pos] = v;
  }
  void erase(size_t pos) {
    int64_t* d = data();
    std::memmove(d + pos, d + pos + 1, (size_ - pos - 1) * sizeof(int64_t));
    --size_;
  }
  void pop_back() { --size_; }
  void clear() { size_ = 0; }

  bool operator==(const DimVector& o) const {
    return size_ == o.size_ && std::equal(begin(), end(), o.begin());
  }

 private:
  size_t capacity() const { return heap_ ? heap_capacity_ : kInline; }
  void assign(const int64_t* src, size_t n) {
    size_ = 0;
    reserve(n);
    std::memmove(data(), src, n * sizeof(int64_t));
    size_ = n;
  }
  void move_from(DimVector&& other) {
    if (other.heap_) {
      heap_ = std::move(other.heap_);
      heap_capacity_ = other.heap_capacity_;
      size_ = other.size_;
    } else {
      heap_.reset();
      assign(other.inline_, other.size_);
    }
    other.size_ = 0;
  }

  int64_t inline_[kInline] = {};
  std::unique_ptr<int64_t[]> heap_;
  size_t heap_capacity_ = 0;
  size_t size_ = 0;
};

}  // namespace kiln
