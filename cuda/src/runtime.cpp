// Devices: availability, the current device, properties (torch.cuda's
// functions). Answers that cannot change while the process runs (the device
// count, each device's properties) are asked of the driver once.
#include "kiln/cuda/runtime.h"

#include <cuda_runtime_api.h>

#include <memory>
#include <mutex>

#include "kiln/cuda/check.h"

namespace kiln::cuda {

namespace {

// cudaGetDeviceCount fails without a driver, with a driver older than the
// runtime, or when CUDA_VISIBLE_DEVICES hides every GPU; all mean "none".
int probe_device_count() {
  int n = 0;
  const cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky, but leave no trace for later checks
    return 0;
  }
  return n;
}

int cached_device_count() {
  static const int count = probe_device_count();
  return count;
}

void check_available(const char* what) {
  KILN_CHECK(cached_device_count() > 0, what,
             ": CUDA is not available (no NVIDIA driver, no GPU, or CUDA_VISIBLE_DEVICES hides them all)");
}

void check_index(int index, const char* what) {
  check_available(what);
  KILN_CHECK(index >= 0 && index < cached_device_count(), what, ": invalid device index ", index, " (",
             cached_device_count(), cached_device_count() == 1 ? " CUDA device is" : " CUDA devices are",
             " available, valid indices are 0..", cached_device_count() - 1, ")");
}

struct PropertiesCache {
  explicit PropertiesCache(int n) : once(new std::once_flag[n]), props(new DeviceProperties[n]) {}
  std::unique_ptr<std::once_flag[]> once;
  std::unique_ptr<DeviceProperties[]> props;
};

}  // namespace

bool is_available() {
  try {
    return cached_device_count() > 0;
  } catch (...) {
    return false;
  }
}

int device_count() { return cached_device_count(); }

int current_device() {
  check_available("current_device");
  int index = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&index));
  return index;
}

void set_device(int index) {
  check_index(index, "set_device");
  int current = -1;
  KILN_CUDA_CHECK(cudaGetDevice(&current));
  if (current != index) KILN_CUDA_CHECK(cudaSetDevice(index));
}

void synchronize(int index) {
  check_available("synchronize");
  DeviceGuard guard(index);  // -1 leaves the current device current
  KILN_CUDA_CHECK(cudaDeviceSynchronize());
}

const DeviceProperties& get_device_properties(int index) {
  if (index < 0) index = current_device();
  check_index(index, "get_device_properties");
  // Sized once for every device and never resized: references stay valid.
  static PropertiesCache cache(cached_device_count());
  std::call_once(cache.once[index], [&] {
    cudaDeviceProp p{};
    KILN_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
    DeviceProperties& d = cache.props[index];
    d.name = p.name;
    d.major = p.major;
    d.minor = p.minor;
    d.multi_processor_count = p.multiProcessorCount;
    d.total_memory = p.totalGlobalMem;
    d.shared_memory_per_block_optin = p.sharedMemPerBlockOptin;
    d.max_threads_per_block = p.maxThreadsPerBlock;
    d.warp_size = p.warpSize;
  });
  return cache.props[index];
}

DeviceGuard::DeviceGuard(int index) {
  if (index < 0) return;
  check_index(index, "DeviceGuard");
  KILN_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != index) KILN_CUDA_CHECK(cudaSetDevice(index));
}

DeviceGuard::~DeviceGuard() {
  if (previous_ < 0) return;
  // Restores even when the guarded code switched devices itself; a
  // destructor cannot throw, and this only fails if the driver is gone.
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current != previous_) (void)cudaSetDevice(previous_);
}

}  // namespace kiln::cuda
