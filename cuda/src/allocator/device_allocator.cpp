// CudaBackend::allocate and the public memory functions
// (torch.cuda.memory_allocated and friends) over the per-device caches.
#include "allocator/raw_memory.h"
#include "cuda_backend.h"
#include "kiln/cuda/runtime.h"
#include "kiln/cuda/stream.h"

namespace kiln::cuda {

namespace {
int resolve(int device) { return device < 0 ? current_device() : device; }
}  // namespace

Storage CudaBackend::allocate(size_t nbytes, Device device) {
  KILN_CHECK(device.is_cuda(), "CUDA allocate: expected a CUDA device, got ", device);
  const int index = device.has_index() ? device.index() : current_device();
  KILN_CHECK(index < device_count(), "CUDA allocate: invalid device ", device, " (", device_count(),
             " CUDA devices available)");
  // Storages carry the resolved index, so "cuda" tensors print and compare as "cuda:N".
  const Device resolved(kCUDA, index);
  if (nbytes == 0) return std::make_shared<StorageImpl>(nullptr, 0, resolved, nullptr);
  // The block belongs to the stream current now: later work on it may reuse
  // the block as soon as it is freed (record_stream for other streams).
  const Stream stream = getCurrentCUDAStream(index);
  CachingAllocatorEngine& engine = device_engine(index);
  void* p = engine.allocate(nbytes, StreamRef{stream.stream(), index});
  try {
    return std::make_shared<StorageImpl>(p, nbytes, resolved, [index](void* q) {
      // Deleters run in destructors (possibly at exit, after the driver
      // shut down): never let an exception escape.
      try {
        device_engine(index).free(q);
      } catch (...) {
      }
    });
  } catch (...) {
    engine.free(p);
    throw;
  }
}

MemoryStats memory_stats(int device) { return device_engine(resolve(device)).stats(); }
void reset_peak_memory_stats(int device) { device_engine(resolve(device)).reset_peak_stats(); }
size_t memory_allocated(int device) { return memory_stats(device).allocated_bytes; }
size_t memory_reserved(int device) { return memory_stats(device).reserved_bytes; }
size_t max_memory_allocated(int device) { return memory_stats(device).peak_allocated_bytes; }
size_t max_memory_reserved(int device) { return memory_stats(device).peak_reserved_bytes; }

void empty_cache() {
  if (!is_available()) return;
  for (int d = 0; d < device_count(); ++d) device_engine(d).empty_cache();
}

void record_stream(const Storage& storage, const Stream& stream) {
  if (!storage || storage->data() == nullptr) return;
  const StreamRef ref{stream.stream(), stream.device_index()};
  if (storage->device().is_cuda()) {
    const int index = storage->device().has_index() ? storage->device().index() : 0;
    device_engine(index).record_stream(storage->data(), ref);
  } else {
    host_engine().record_stream(storage->data(), ref);
  }
}

}  // namespace kiln::cuda
