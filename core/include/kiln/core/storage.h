#pragma once
// The memory behind tensors. Views share one Storage; its version counter is
// bumped by every in-place write so autograd can detect that a tensor saved
// for backward was modified.
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>

#include "kiln/core/device.h"

namespace kiln {

using Deleter = std::function<void(void*)>;

class StorageImpl {
 public:
  StorageImpl(void* data, size_t nbytes, Device device, Deleter deleter)
      : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}
  ~StorageImpl() {
    if (deleter_ && data_) deleter_(data_);
  }
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  Deleter deleter_;
  std::atomic<uint32_t> version_{0};
};

using Storage = std::shared_ptr<StorageImpl>;

}  // namespace kiln
