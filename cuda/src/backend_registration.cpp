// Loading libkiln_cuda registers the CUDA backend with core, but only where
// a GPU answers: on a machine without one, has_backend(kCUDA) stays false
// and tensors on "cuda" are an error that says so.
#include "cuda_backend.h"
#include "kiln/cuda/runtime.h"

namespace kiln::cuda {

void CudaBackend::synchronize(Device device) { cuda::synchronize(device.has_index() ? device.index() : -1); }

namespace {

struct Registration {
  Registration() {
    static CudaBackend backend;
    // is_available() never throws: a missing driver just means no backend.
    if (is_available()) register_backend(kCUDA, &backend);
  }
};
const Registration registration;

}  // namespace

}  // namespace kiln::cuda
