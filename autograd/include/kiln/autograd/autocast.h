#pragma once
// Automatic mixed precision (torch.autocast). Inside an enabled region, ops
// on tensors of the region's device type run in a precision chosen per op:
//   lower precision (the region's dtype, bf16 by default): mm, addmm, bmm,
//     baddbmm, matmul, linear, conv2d. Floating inputs (weights and bias
//     included) are cast to the dtype and the result has it; the backends
//     accumulate 16-bit products in f32.
//   float32: softmax, log_softmax (unless given a dtype), layer_norm,
//     group_norm, batch_norm and the losses. 16-bit inputs are cast up.
// Everything else runs in its inputs' dtype (sum and mean included).
// Casts go through the differentiable kiln::to, so gradients flow back to
// f32 parameters in f32. float64 tensors, integer tensors and tensors on
// another device type are never cast.
//
//   {
//     kiln::AutocastGuard guard(kiln::kCUDA);   // bf16; or (kCPU, kFloat16)
//     Tensor loss = loss_fn(model(x), y);       // forward under autocast
//   }
//   loss.backward();                            // outside, as torch advises
//
// The state is thread-local and kept per device type (kCPU and kCUDA each
// have their own switch and dtype); a guard restores what it found, so
// regions nest. One difference from torch: torch's CPU autocast leaves
// softmax and the norms in the input's dtype; Kiln applies the float32 list
// on every device type (CUDA's list), so a bf16 CPU run keeps them in f32.
//
// Weight cache: within a region (until the outermost guard of the thread
// exits), the lower-precision cast of a leaf f32 tensor that requires grad
// is made once and reused, as torch does for weights used many times per
// forward. A cached cast is remade if its source was modified in place or
// grad mode changed since.
#include <cstdint>
#include <functional>
#include <initializer_list>

#include "kiln/core/device.h"
#include "kiln/core/dtype.h"
#include "kiln/core/tensor.h"

namespace kiln {

bool is_autocast_enabled(DeviceType device_type);
void set_autocast_enabled(DeviceType device_type, bool enabled);
// The lower-precision dtype of the device type's regions (bf16 unless set).
DType get_autocast_dtype(DeviceType device_type);
// float16 or bfloat16; anything else is an error.
void set_autocast_dtype(DeviceType device_type, DType dtype);
bool is_autocast_cache_enabled();
void set_autocast_cache_enabled(bool enabled);
// Drops the thread's cached weight casts (the outermost guard does it on exit).
void clear_autocast_cache();

// Enables (or, with enabled = false, disables) autocast for one device type
// for its lifetime, then restores the previous switch, dtype and cache flag.
class AutocastGuard {
 public:
  explicit AutocastGuard(DeviceType device_type, DType dtype = kBFloat16, bool enabled = true,
                         bool cache_enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DeviceType device_type_;
  bool prev_enabled_;
  DType prev_dtype_;
  bool prev_cache_;
};

// torch.autocast's name: `kiln::autocast region(kiln::kCPU);`
using autocast = AutocastGuard;

namespace autograd {

enum class CastPolicy : uint8_t {
  LowerPrecision,  // to the region's dtype
  Float32,         // 16-bit floats up to float32
};

// What autocast does to the tensor arguments of one op call. The device
// type is that of the first defined argument; it is true when autocast is
// on there and at least one argument changes dtype, so an op re-enters
// itself with the cast arguments and the second call falls through:
//   if (auto cast = autograd::autocast_args(CastPolicy::LowerPrecision, {a, b})) return mm(cast(a), cast(b));
class AutocastArgs {
 public:
  explicit operator bool() const { return active_; }
  // t, or its differentiable cast when t is eligible (defined, floating,
  // not float64, on the region's device type) and of another dtype.
  Tensor operator()(const Tensor& t) const;

 private:
  friend AutocastArgs autocast_args(CastPolicy policy,
                                    std::initializer_list<std::reference_wrapper<const Tensor>> args);
  bool active_ = false;
  CastPolicy policy_ = CastPolicy::LowerPrecision;
  DeviceType device_type_ = kCPU;
  DType target_ = kFloat32;
};

AutocastArgs autocast_args(CastPolicy policy, std::initializer_list<std::reference_wrapper<const Tensor>> args);

}  // namespace autograd

}  // namespace kiln
