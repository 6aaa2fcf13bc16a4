#pragma once
// Devices: how many there are, which one is current, what they can do.
// Mirrors torch.cuda's functions of the same names.
#include <cstddef>
#include <string>

namespace kiln::cuda {

// False when no driver, no GPU, or a broken installation (never throws).
bool is_available();
int device_count();  // 0 when unavailable
int current_device();
void set_device(int index);  // error naming the index and the count when out of range
void synchronize(int index = -1);  // -1: the current device

struct DeviceProperties {
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int multi_processor_count = 0;
  size_t total_memory = 0;
  size_t shared_memory_per_block_optin = 0;
  int max_threads_per_block = 0;
  int warp_size = 32;
};
const DeviceProperties& get_device_properties(int index = -1);

// Makes `index` current for its lifetime and restores the previous device
// (c10::cuda::CUDAGuard). Index -1 leaves the device alone.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace kiln::cuda
