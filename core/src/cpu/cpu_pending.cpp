// Placeholders for CPU kernels in progress. Each owner deletes its lines
// when the real kernel lands in its own cpu_*.cpp file.
#include "cpu/cpu_backend.h"
#include "kiln/core/error.h"

namespace kiln::cpu {
namespace {
[[noreturn]] void pending(const char* name) { KILN_ERROR(name, ": CPU kernel not implemented yet"); }
}  // namespace

// ---- cpu_conv.cpp ----
void CpuBackend::conv2d(const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&, const Tensor&) { pending("conv2d"); }
void CpuBackend::conv2d_backward_input(const Tensor&, const Tensor&, const Conv2dParams&, const Tensor&) { pending("conv2d_backward_input"); }
void CpuBackend::conv2d_backward_weight(const Tensor&, const Tensor&, const Conv2dParams&, const Tensor&, const Tensor&) { pending("conv2d_backward_weight"); }
// ---- cpu_pool.cpp ----
void CpuBackend::max_pool2d(const Tensor&, const Pool2dParams&, const Tensor&, const Tensor&) { pending("max_pool2d"); }
void CpuBackend::max_pool2d_backward(const Tensor&, const Tensor&, const Tensor&) { pending("max_pool2d_backward"); }
void CpuBackend::avg_pool2d(const Tensor&, const Pool2dParams&, const Tensor&) { pending("avg_pool2d"); }
void CpuBackend::avg_pool2d_backward(const Tensor&, const Pool2dParams&, const Tensor&) { pending("avg_pool2d_backward"); }
void CpuBackend::adaptive_avg_pool2d(const Tensor&, const Tensor&) { pending("adaptive_avg_pool2d"); }
void CpuBackend::adaptive_avg_pool2d_backward(const Tensor&, const Tensor&) { pending("adaptive_avg_pool2d_backward"); }
// ---- cpu_interpolate.cpp ----
void CpuBackend::upsample2d(InterpolationMode, const Tensor&, bool, double, double, const Tensor&) { pending("upsample2d"); }
void CpuBackend::upsample2d_backward(InterpolationMode, const Tensor&, bool, double, double, const Tensor&) { pending("upsample2d_backward"); }
// ---- cpu_norm.cpp ----
void CpuBackend::layer_norm(const Tensor&, const Tensor&, const Tensor&, double, const Tensor&, const Tensor&, const Tensor&) { pending("layer_norm"); }
void CpuBackend::layer_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { pending("layer_norm_backward"); }
void CpuBackend::group_norm(const Tensor&, const Tensor&, const Tensor&, int64_t, double, const Tensor&, const Tensor&, const Tensor&) { pending("group_norm"); }
void CpuBackend::group_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, const Tensor&, const Tensor&, const Tensor&) { pending("group_norm_backward"); }
void CpuBackend::batch_norm_stats(const Tensor&, const Tensor&, const Tensor&) { pending("batch_norm_stats"); }
void CpuBackend::batch_norm_apply(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { pending("batch_norm_apply"); }
void CpuBackend::batch_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { pending("batch_norm_backward"); }

}  // namespace kiln::cpu
