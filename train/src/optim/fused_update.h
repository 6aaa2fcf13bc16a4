#pragma once
// One pass over a parameter's elements doing all of an optimizer's update,
// in place of the chain of tensor ops torch's single-tensor implementation
// runs. Each step inside rounds exactly as the torch op it stands for does
// on a CPU with FMA (AVX2/AVX-512 builds): add(alpha), lerp and addcmul
// round once through a fused multiply-add, the rest once per operation, and
// 16-bit floats round back to their type after every op. The scalars are
// converted from double as torch converts a Python float for each op (for
// 16-bit floats, add's alpha and an added scalar round to the 16-bit type).
//
// Verified against torch 2.15 on 200k elements: float32/float64 SGD and
// Adam agree to the bit (Adam after replacing torch's MKL sqrt by a
// correctly rounded one; see adam.h). For 16-bit types torch's own
// vectorised body and scalar tail round differently; this follows the body.
//
// The loops are backend kernels (core/src/cpu/cpu_optim.cpp,
// cuda/src/kernels/optim.cu); these functions check the operands, run the
// kernel of the parameter's device and bump the written tensors' versions.
// Operands need not be contiguous.
#include <vector>

#include "kiln/core/backend.h"

namespace kiln::optim::detail {

using kiln::SGDStep;
using kiln::AdamStep;

// buf: undefined when momentum == 0.
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& buf, const SGDStep& s);

// max_exp_avg_sq: undefined unless amsgrad.
void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 const Tensor& max_exp_avg_sq, const AdamStep& s);

// The same updates over lists of tuples (params[i], grads[i], ...) sharing
// one set of hyperparameters: every tuple is checked first, then the
// backend runs once per (device, dtype) of the parameters (a multi-tensor
// launch on CUDA). bufs / max_exp_avg_sqs may be empty when momentum == 0 /
// without amsgrad; otherwise they have one entry per parameter.
void sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
                const SGDStep& s);
void adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 const std::vector<Tensor>& max_exp_avg_sqs, const AdamStep& s);

}  // namespace kiln::optim::detail
