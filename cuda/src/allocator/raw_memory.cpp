#include "allocator/raw_memory.h"

#include <cuda_runtime_api.h>

#include <mutex>
#include <vector>

#include "kiln/cuda/check.h"
#include "kiln/cuda/runtime.h"

namespace kiln::cuda {

namespace {

struct PooledEvent {
  cudaEvent_t event;
  int device;
};

std::mutex event_mutex;

std::vector<std::vector<cudaEvent_t>>& idle_events() {
  static auto* idle = new std::vector<std::vector<cudaEvent_t>>(static_cast<size_t>(device_count()));
  return *idle;
}

bool ready(cudaError_t status) {
  if (status == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  KILN_CUDA_CHECK(status);
  return true;
}

}  // namespace

void* CudaEventSource::record_event(const StreamRef& stream) {
  DeviceGuard guard(stream.device);  // stream 0 is the current device's default stream
  cudaEvent_t event = nullptr;
  {
    std::lock_guard<std::mutex> lock(event_mutex);
    auto& idle = idle_events()[static_cast<size_t>(stream.device)];
    if (!idle.empty()) {
      event = idle.back();
      idle.pop_back();
    }
  }
  if (event == nullptr) KILN_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  const cudaError_t status = cudaEventRecord(event, static_cast<cudaStream_t>(stream.stream));
  if (status != cudaSuccess) {
    (void)cudaEventDestroy(event);
    KILN_CUDA_CHECK(status);
  }
  return new PooledEvent{event, stream.device};
}

bool CudaEventSource::query_event(void* event) { return ready(cudaEventQuery(static_cast<PooledEvent*>(event)->event)); }

void CudaEventSource::synchronize_event(void* event) {
  KILN_CUDA_CHECK(cudaEventSynchronize(static_cast<PooledEvent*>(event)->event));
}

void CudaEventSource::release_event(void* event) {
  auto* e = static_cast<PooledEvent*>(event);
  {
    std::lock_guard<std::mutex> lock(event_mutex);
    idle_events()[static_cast<size_t>(e->device)].push_back(e->event);
  }
  delete e;
}

void* DeviceMemory::malloc(size_t nbytes) {
  DeviceGuard guard(device_);
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, nbytes);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // an answer the allocator handles, not a failure to keep
    return nullptr;
  }
  KILN_CUDA_CHECK(status);
  return p;
}

void DeviceMemory::free(void* ptr) {
  DeviceGuard guard(device_);
  KILN_CUDA_CHECK(cudaFree(ptr));
}

void DeviceMemory::mem_get_info(size_t* free, size_t* total) {
  DeviceGuard guard(device_);
  KILN_CUDA_CHECK(cudaMemGetInfo(free, total));
}

void* PinnedMemory::malloc(size_t nbytes) {
  void* p = nullptr;
  const cudaError_t status = cudaHostAlloc(&p, nbytes, cudaHostAllocPortable);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    return nullptr;
  }
  KILN_CUDA_CHECK(status);
  return p;
}

void PinnedMemory::free(void* ptr) { KILN_CUDA_CHECK(cudaFreeHost(ptr)); }

void PinnedMemory::mem_get_info(size_t* free, size_t* total) {
  *free = 0;
  *total = 0;
}

CachingAllocatorEngine& device_engine(int device) {
  struct Caches {
    std::vector<DeviceMemory*> raw;
    std::vector<CachingAllocatorEngine*> engines;
  };
  static Caches* caches = [] {
    auto* c = new Caches;
    for (int d = 0; d < device_count(); ++d) {
      c->raw.push_back(new DeviceMemory(d));
      c->engines.push_back(new CachingAllocatorEngine(*c->raw.back(), d));
    }
    return c;
  }();
  KILN_CHECK(device >= 0 && device < static_cast<int>(caches->engines.size()), "CUDA allocator: invalid device index ",
             device, " (", caches->engines.size(), " CUDA devices available)");
  return *caches->engines[static_cast<size_t>(device)];
}

HostCachingEngine& host_engine() {
  static auto* engine = new HostCachingEngine(*new PinnedMemory);
  return *engine;
}

}  // namespace kiln::cuda
