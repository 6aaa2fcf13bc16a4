#pragma once
// Precision and algorithm-search switches for the library-backed kernels,
// as torch.backends exposes them. Process-wide; safe to flip between calls
// from any thread (a choice cached under one setting is never reused under
// the other).
namespace kiln::cuda {

// torch.backends.cuda.matmul.allow_tf32: float32 matmuls may round their
// inputs to TF32 on tensor cores. Default false (full float32 products).
// The same switch as kiln::set_float32_matmul_precision("high"/"highest").
void set_allow_tf32(bool allow);
bool allow_tf32();

// torch.backends.cudnn.allow_tf32 for float32 convolutions. Default false
// here (torch defaults to true) so float32 results track the CPU closely.
// kiln::set_float32_matmul_precision("high") also allows TF32 convolutions.
void set_cudnn_allow_tf32(bool allow);
bool cudnn_allow_tf32();

// torch.backends.cudnn.benchmark: the first convolution of each geometry
// times cuDNN's algorithms on the real data and keeps the fastest, instead
// of taking cuDNN's heuristic first choice. Default false.
void set_cudnn_benchmark(bool benchmark);
bool cudnn_benchmark();

}  // namespace kiln::cuda
