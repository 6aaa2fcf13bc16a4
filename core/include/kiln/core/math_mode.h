#pragma once
// Process-wide numeric modes that trade precision for speed on devices that
// offer it, as torch.set_float32_matmul_precision. The CPU backend always
// computes in full f32; the CUDA backend reads these for cuBLASLt matmuls
// and cuDNN convolutions.
#include <string>

namespace kiln {

// "highest": f32 matmuls in full f32 (the default, as torch).
// "high": f32 matmuls and convolutions may use TF32 tensor cores (10-bit mantissa inputs, f32 accumulation).
// "medium": as "high" (Kiln has no bf16x3 path).
void set_float32_matmul_precision(const std::string& precision);
std::string get_float32_matmul_precision();
// True when precision is "high" or "medium".
bool float32_matmul_allows_tf32();

}  // namespace kiln
