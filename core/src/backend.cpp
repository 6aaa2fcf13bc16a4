#include "kiln/core/backend.h"

#include <array>
#include <cstdlib>
#include <new>

#include "kiln/core/native/view.h"

#include "cpu/cpu_allocator.h"
#include "cpu/cpu_backend.h"

namespace kiln {

namespace {
std::array<Backend*, 2>& registry() {
  static cpu::CpuBackend cpu_backend;
  static std::array<Backend*, 2> backends{&cpu_backend, nullptr};
  return backends;
}
}  // namespace

Backend& backend(DeviceType type) {
  Backend* b = registry()[static_cast<size_t>(type)];
  KILN_CHECK(b != nullptr, "no backend for device type ", Device(type).str(),
             type == kCUDA ? ": Kiln was built without CUDA, or no GPU is present" : "");
  return *b;
}

void Backend::bmm_bias(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& out) {
  copy(native::expand(bias, out.sizes()), out, false);
  bmm(a, b, out, 1, 1);
}

void register_backend(DeviceType type, Backend* b) { registry()[static_cast<size_t>(type)] = b; }
bool has_backend(DeviceType type) { return registry()[static_cast<size_t>(type)] != nullptr; }

const char* op_name(UnaryOp op) {
  static const char* names[] = {"neg", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs", "sign", "tanh",
                                "sigmoid", "relu", "gelu", "gelu_tanh", "silu", "sin", "cos", "acos", "erf",
                                "reciprocal", "floor", "ceil", "round", "logical_not"};
  return names[static_cast<size_t>(op)];
}

const char* op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "minimum", "maximum", "eq", "ne", "lt", "le",
                                "gt", "ge", "logical_and", "logical_or", "logical_xor", "relu_backward",
                                "sigmoid_backward", "tanh_backward", "gelu_backward", "gelu_tanh_backward",
                                "silu_backward"};
  return names[static_cast<size_t>(op)];
}

namespace cpu {
Storage CpuBackend::allocate(size_t nbytes, Device device) {
  void* p = cpu_allocator().allocate(nbytes);
  return std::make_shared<StorageImpl>(p, nbytes, device, [nbytes](void* q) { cpu_allocator().release(q, nbytes); });
}
}  // namespace cpu

}  // namespace kiln
