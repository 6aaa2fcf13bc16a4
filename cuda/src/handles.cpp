// Per-thread, per-device library handles, pooled across threads (see handles.h).
#include "handles.h"

#include <mutex>
#include <utility>
#include <vector>

#include "kiln/core/native/factory.h"
#include "kiln/core/tensor.h"
#include "kiln/cuda/check.h"
#include "kiln/cuda/runtime.h"

namespace kiln::cuda {

namespace {

struct Handles {
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t dnn = nullptr;
  // cuBLASLt workspace per stream it has been used on.
  std::vector<std::pair<cudaStream_t, Tensor>> workspaces;
};

// Handles no live thread holds, per device. Never freed: a handle (and its
// workspace) outlives every thread, so nothing is torn down at exit while
// the driver may already be gone.
struct Pool {
  std::mutex mutex;
  std::vector<std::vector<Handles*>> idle;
};

Pool& pool() {
  static Pool* const p = new Pool;
  return *p;
}

// This thread's handles by device; returned to the pool when the thread ends.
struct ThreadHandles {
  std::vector<Handles*> by_device;
  ~ThreadHandles() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    for (size_t d = 0; d < by_device.size(); ++d) {
      if (by_device[d] == nullptr) continue;
      if (p.idle.size() <= d) p.idle.resize(d + 1);
      p.idle[d].push_back(by_device[d]);
    }
  }
};

Handles& handles_for(int device) {
  KILN_CHECK(device >= 0, "CUDA handles: invalid device index ", device);
  thread_local ThreadHandles mine;
  const auto d = static_cast<size_t>(device);
  if (mine.by_device.size() <= d) mine.by_device.resize(d + 1, nullptr);
  Handles*& h = mine.by_device[d];
  if (h == nullptr) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    if (p.idle.size() > d && !p.idle[d].empty()) {
      h = p.idle[d].back();
      p.idle[d].pop_back();
    } else {
      h = new Handles;
    }
  }
  return *h;
}

}  // namespace

cublasLtHandle_t cublaslt_handle(const Stream& stream) {
  Handles& h = handles_for(stream.device_index());
  if (h.lt == nullptr) {
    DeviceGuard guard(stream.device_index());
    KILN_CUBLAS_CHECK(cublasLtCreate(&h.lt));
  }
  return h.lt;
}

void* cublaslt_workspace(const Stream& stream) {
  Handles& h = handles_for(stream.device_index());
  for (const auto& [s, buffer] : h.workspaces) {
    if (s == stream.stream()) return buffer.data_ptr();
  }
  // Allocated while `stream` is current (the caller runs on it), so the
  // caching allocator ties the block to the stream that uses it.
  Tensor buffer = native::empty({static_cast<int64_t>(kLtWorkspaceBytes)},
                                TensorOptions().dtype(kUInt8).device(Device(kCUDA, stream.device_index())));
  h.workspaces.emplace_back(stream.stream(), buffer);
  return buffer.data_ptr();
}

cudnnHandle_t cudnn_handle(const Stream& stream) {
  Handles& h = handles_for(stream.device_index());
  if (h.dnn == nullptr) {
    DeviceGuard guard(stream.device_index());
    KILN_CUDNN_CHECK(cudnnCreate(&h.dnn));
  }
  KILN_CUDNN_CHECK(cudnnSetStream(h.dnn, stream.stream()));
  return h.dnn;
}

}  // namespace kiln::cuda
