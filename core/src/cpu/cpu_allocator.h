#pragma once
// Host memory for tensors. Large blocks are kept for reuse: the C library
// returns big allocations to the OS on free, and faulting fresh pages in on
// every op costs more than many kernels themselves.
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace kiln::cpu {

class CpuAllocator {
 public:
  // Blocks of at least this many bytes are cached; smaller ones go straight to malloc.
  static constexpr size_t kCacheThreshold = size_t{1} << 20;
  // The most bytes kept idle in the cache.
  static constexpr size_t kCacheLimit = size_t{2} << 30;

  void* allocate(size_t nbytes);
  void release(void* p, size_t nbytes);
  // Returns every idle cached block to the system.
  void empty_cache();
  size_t cached_bytes() const;

 private:
  static size_t bucket(size_t nbytes);
  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

// Lives for the whole process (never destroyed), so tensors freed during
// static destruction can still return their memory.
CpuAllocator& cpu_allocator();

}  // namespace kiln::cpu
