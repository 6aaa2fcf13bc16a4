// Kernels not written yet: each throws until its cpu_*.cpp lands. Delete a
// definition here when implementing it.
#include "cpu/cpu_backend.h"

namespace kiln::cpu {
#define KILN_PENDING(name) KILN_ERROR("CPU kernel ", name, " is not implemented yet")
void CpuBackend::unary(UnaryOp, const Tensor&, const Tensor&) { KILN_PENDING("unary"); }
void CpuBackend::binary(BinaryOp, const Tensor&, const Tensor&, const Tensor&) { KILN_PENDING("binary"); }
void CpuBackend::where(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { KILN_PENDING("where"); }
void CpuBackend::clamp(const Tensor&, const std::optional<Scalar>&, const std::optional<Scalar>&, const Tensor&) { KILN_PENDING("clamp"); }
void CpuBackend::reduce(ReduceOp, const Tensor&, const Tensor&) { KILN_PENDING("reduce"); }
void CpuBackend::arg_reduce(ArgReduceOp, const Tensor&, int64_t, const Tensor&, const Tensor&) { KILN_PENDING("arg_reduce"); }
void CpuBackend::softmax(const Tensor&, int64_t, bool, const Tensor&) { KILN_PENDING("softmax"); }
void CpuBackend::softmax_backward(const Tensor&, const Tensor&, int64_t, bool, const Tensor&) { KILN_PENDING("softmax_backward"); }
void CpuBackend::bmm(const Tensor&, const Tensor&, const Tensor&, const Scalar&, const Scalar&) { KILN_PENDING("bmm"); }
void CpuBackend::index_select(const Tensor&, int64_t, const Tensor&, const Tensor&) { KILN_PENDING("index_select"); }
void CpuBackend::gather(const Tensor&, int64_t, const Tensor&, const Tensor&) { KILN_PENDING("gather"); }
void CpuBackend::scatter(const Tensor&, int64_t, const Tensor&, const Tensor&, ScatterReduce) { KILN_PENDING("scatter"); }
void CpuBackend::index_add(const Tensor&, int64_t, const Tensor&, const Tensor&, const Scalar&) { KILN_PENDING("index_add"); }
void CpuBackend::flip(const Tensor&, IntArrayRef, const Tensor&) { KILN_PENDING("flip"); }
}  // namespace kiln::cpu
