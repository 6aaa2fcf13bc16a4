#include "cpu/cpu_allocator.h"

#include <cstdlib>

#include "kiln/core/error.h"

namespace kiln::cpu {

size_t CpuAllocator::bucket(size_t nbytes) {
  // 64-byte alignment for small blocks (cache lines, any vector width);
  // cached blocks round to 64 KiB so near-equal sizes share a bucket.
  const size_t align = nbytes >= kCacheThreshold ? (size_t{1} << 16) : 64;
  return (std::max<size_t>(nbytes, 1) + align - 1) & ~(align - 1);
}

void* CpuAllocator::allocate(size_t nbytes) {
  const size_t size = bucket(nbytes);
  if (size >= kCacheThreshold) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= size;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, size);
  if (p == nullptr) {
    empty_cache();
    p = std::aligned_alloc(64, size);
  }
  KILN_CHECK(p != nullptr, "CPU out of memory: tried to allocate ", nbytes, " bytes");
  return p;
}

void CpuAllocator::release(void* p, size_t nbytes) {
  const size_t size = bucket(nbytes);
  if (size >= kCacheThreshold) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_ + size <= kCacheLimit) {
      free_[size].push_back(p);
      cached_ += size;
      return;
    }
  }
  std::free(p);
}

void CpuAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) std::free(p);
  free_.clear();
  cached_ = 0;
}

size_t CpuAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}

CpuAllocator& cpu_allocator() {
  static auto* allocator = new CpuAllocator();
  return *allocator;
}

}  // namespace kiln::cpu
