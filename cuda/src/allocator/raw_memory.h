#pragma once
// The CUDA side of the caching allocators: cudaMalloc / cudaHostAlloc and
// pooled CUDA events behind the RawMemory interface the engines use.
#include "kiln/cuda/caching_allocator.h"

namespace kiln::cuda {

// Events without timing, recycled per device (creating one costs a driver call).
class CudaEventSource : public RawMemory {
 public:
  void* record_event(const StreamRef& stream) override;
  bool query_event(void* event) override;
  void synchronize_event(void* event) override;
  void release_event(void* event) override;
};

// One device's memory: cudaMalloc / cudaFree on that device.
class DeviceMemory final : public CudaEventSource {
 public:
  explicit DeviceMemory(int device) : device_(device) {}
  void* malloc(size_t nbytes) override;
  void free(void* ptr) override;
  void mem_get_info(size_t* free, size_t* total) override;

 private:
  int device_;
};

// Page-locked host memory usable by every device (cudaHostAllocPortable).
class PinnedMemory final : public CudaEventSource {
 public:
  void* malloc(size_t nbytes) override;
  void free(void* ptr) override;
  void mem_get_info(size_t* free, size_t* total) override;
};

// The process-wide caches (created on first use, never destroyed, so
// tensors released during static destruction can still give memory back).
CachingAllocatorEngine& device_engine(int device);
HostCachingEngine& host_engine();

}  // namespace kiln::cuda
