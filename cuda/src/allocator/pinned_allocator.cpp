// Pinned host tensors: CPU tensors in page-locked memory from the host
// cache, which copy() moves to and from devices asynchronously.
#include <cuda_runtime_api.h>

#include "allocator/raw_memory.h"
#include "kiln/core/backend.h"
#include "kiln/cuda/runtime.h"

namespace kiln::cuda {

Storage allocate_pinned(size_t nbytes) {
  KILN_CHECK(is_available(), "pinned memory: CUDA is not available");
  if (nbytes == 0) return std::make_shared<StorageImpl>(nullptr, 0, Device(kCPU), nullptr);
  HostCachingEngine& engine = host_engine();
  void* p = engine.allocate(nbytes);
  try {
    return std::make_shared<StorageImpl>(p, nbytes, Device(kCPU), [](void* q) {
      try {
        host_engine().free(q);
      } catch (...) {
      }
    });
  } catch (...) {
    engine.free(p);
    throw;
  }
}

Tensor empty_pinned(IntArrayRef sizes, DType dtype) {
  for (int64_t s : sizes) KILN_CHECK(s >= 0, "empty_pinned: negative dimension ", s, " in size ", sizes);
  Storage storage = allocate_pinned(static_cast<size_t>(numel_of(sizes)) * element_size(dtype));
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), dtype, sizes.dims(), contiguous_strides(sizes), 0));
}

Tensor pin_memory(const Tensor& t) {
  KILN_CHECK(t.defined() && t.is_cpu(), "pin_memory: expected a CPU tensor, got one on ",
             t.defined() ? t.device().str() : std::string("(undefined)"));
  if (is_pinned(t)) return t;
  Tensor out = empty_pinned(t.sizes(), t.dtype());
  if (t.numel() > 0) backend(kCPU).copy(t, out, false);
  return out;
}

bool is_pinned(const Tensor& t) {
  if (!t.defined() || !t.is_cpu() || t.data_ptr() == nullptr || !is_available()) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, t.data_ptr()) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeHost;
}

MemoryStats host_memory_stats() { return host_engine().stats(); }
void empty_host_cache() { host_engine().empty_cache(); }

}  // namespace kiln::cuda
