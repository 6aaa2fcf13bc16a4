// 2-D convolutions (NCHW, contiguous) on cuDNN's legacy convolution API,
// which cuDNN 9 still ships: one descriptor set per call, an algorithm
// chosen once per problem and cached (conv_plan_cache.h), a workspace from
// the caching allocator per call.
//
// Precision: float32 runs in plain FMA arithmetic unless
// cudnn_allow_tf32() (then cuDNN may use TF32 tensor cores); 16-bit floats
// run on tensor cores with float32 accumulation; float64 in double. The
// bias is added after the convolution; the bias gradient is a reduction of
// grad_out by this backend's own (deterministic) sum kernel.
//
// Tensors past cuDNN's 32-bit element indexing are processed a slab of the
// batch at a time; the weight gradient accumulates over the slabs.
#include <cudnn.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <vector>

#include "cuda_backend.h"
#include "kiln/core/math_mode.h"
#include "handles.h"
#include "kernels/conv_plan_cache.h"
#include "kiln/core/native/elementwise.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/view.h"
#include "kiln/cuda/check.h"
#include "kiln/cuda/matmul.h"
#include "kiln/cuda/runtime.h"
#include "kiln/cuda/stream.h"

namespace kiln::cuda {

namespace {

std::atomic<bool> g_cudnn_tf32{false};
std::atomic<bool> g_benchmark{false};

int device_index(const Tensor& t) { return t.device().has_index() ? t.device().index() : 0; }

TensorOptions device_bytes(const Tensor& like) { return TensorOptions().dtype(kUInt8).device(like.device()); }

cudnnDataType_t data_type(DType dt) {
  switch (dt) {
    case kFloat64: return CUDNN_DATA_DOUBLE;
    case kFloat32: return CUDNN_DATA_FLOAT;
    case kFloat16: return CUDNN_DATA_HALF;
    case kBFloat16: return CUDNN_DATA_BFLOAT16;
    default: break;
  }
  KILN_ERROR("conv2d (CUDA): expected a floating-point dtype, got ", dtype_name(dt));
}

// Accumulation type: float for 16-bit floats as for float32.
cudnnDataType_t compute_type(DType dt) { return dt == kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT; }

// The math the descriptor starts with (and the only one float32 may use
// without TF32: FMA excludes tensor-core kernels, which would round to TF32).
cudnnMathType_t base_math(DType dt, bool tf32) {
  if (dt == kFloat16 || dt == kBFloat16) return CUDNN_TENSOR_OP_MATH;
  if (dt == kFloat32) return tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  return CUDNN_DEFAULT_MATH;
}

// ---- descriptors (host objects; built per call) ----
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(DType dt, const Tensor& t) {
    KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    KILN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, data_type(dt), static_cast<int>(t.size(0)),
                                                static_cast<int>(t.size(1)), static_cast<int>(t.size(2)),
                                                static_cast<int>(t.size(3))));
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc(DType dt, const Tensor& w) {
    KILN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
    KILN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d, data_type(dt), CUDNN_TENSOR_NCHW, static_cast<int>(w.size(0)),
                                                static_cast<int>(w.size(1)), static_cast<int>(w.size(2)),
                                                static_cast<int>(w.size(3))));
  }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc(DType dt, const Conv2dParams& p, cudnnMathType_t math) {
    KILN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
    KILN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        d, static_cast<int>(p.padding[0]), static_cast<int>(p.padding[1]), static_cast<int>(p.stride[0]),
        static_cast<int>(p.stride[1]), static_cast<int>(p.dilation[0]), static_cast<int>(p.dilation[1]),
        CUDNN_CROSS_CORRELATION, compute_type(dt)));
    KILN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d, static_cast<int>(p.groups)));
    set_math(math);
  }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
  void set_math(cudnnMathType_t math) { KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(d, math)); }
};

// One problem: x the input (or its gradient), w the weight (or its
// gradient), y the output (or its gradient).
struct Problem {
  ConvDirection dir;
  DType dt;
  bool tf32;
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  void* px;
  void* pw;
  void* py;
  Problem(ConvDirection dir_, const Tensor& xt, const Tensor& wt, const Tensor& yt, const Conv2dParams& p)
      : dir(dir_),
        dt(yt.dtype()),
        tf32(dt == kFloat32 && (g_cudnn_tf32.load(std::memory_order_relaxed) || float32_matmul_allows_tf32())),
        x(dt, xt),
        y(dt, yt),
        w(dt, wt),
        conv(dt, p, base_math(dt, tf32)),
        px(xt.data_ptr()),
        pw(wt.data_ptr()),
        py(yt.data_ptr()) {}
};

// A ranked algorithm as cuDNN reports it, whatever the direction.
struct Candidate {
  int algo;
  cudnnStatus_t status;
  cudnnDeterminism_t determinism;
  cudnnMathType_t math;
};

template <typename Perf>
void append(std::vector<Candidate>& out, const std::vector<Perf>& perf, int count) {
  for (int i = 0; i < count; ++i) {
    out.push_back({static_cast<int>(perf[i].algo), perf[i].status, perf[i].determinism, perf[i].mathType});
  }
}

int max_algo_count(cudnnHandle_t h, ConvDirection dir) {
  int count = 0;
  switch (dir) {
    case ConvDirection::Forward: KILN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &count)); break;
    case ConvDirection::BackwardData:
      KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &count));
      break;
    case ConvDirection::BackwardFilter:
      KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &count));
      break;
  }
  return std::max(count, 1);
}

// cuDNN's heuristic ranking (no GPU work).
std::vector<Candidate> heuristic_ranking(cudnnHandle_t h, const Problem& pb) {
  const int n = max_algo_count(h, pb.dir);
  int got = 0;
  std::vector<Candidate> out;
  switch (pb.dir) {
    case ConvDirection::Forward: {
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(n);
      KILN_CUDNN_CHECK(
          cudnnGetConvolutionForwardAlgorithm_v7(h, pb.x.d, pb.w.d, pb.conv.d, pb.y.d, n, &got, perf.data()));
      append(out, perf, got);
      break;
    }
    case ConvDirection::BackwardData: {
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(n);
      KILN_CUDNN_CHECK(
          cudnnGetConvolutionBackwardDataAlgorithm_v7(h, pb.w.d, pb.y.d, pb.conv.d, pb.x.d, n, &got, perf.data()));
      append(out, perf, got);
      break;
    }
    case ConvDirection::BackwardFilter: {
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(n);
      KILN_CUDNN_CHECK(
          cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, pb.x.d, pb.y.d, pb.conv.d, pb.w.d, n, &got, perf.data()));
      append(out, perf, got);
      break;
    }
  }
  return out;
}

// Workspace an algorithm needs under the descriptor's current math type;
// a failure status means the pair is not supported.
cudnnStatus_t workspace_size(cudnnHandle_t h, const Problem& pb, int algo, size_t* bytes) {
  switch (pb.dir) {
    case ConvDirection::Forward:
      return cudnnGetConvolutionForwardWorkspaceSize(h, pb.x.d, pb.w.d, pb.conv.d, pb.y.d,
                                                     static_cast<cudnnConvolutionFwdAlgo_t>(algo), bytes);
    case ConvDirection::BackwardData:
      return cudnnGetConvolutionBackwardDataWorkspaceSize(h, pb.w.d, pb.y.d, pb.conv.d, pb.x.d,
                                                          static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), bytes);
    case ConvDirection::BackwardFilter:
      return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, pb.x.d, pb.y.d, pb.conv.d, pb.w.d,
                                                            static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), bytes);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

int algo_id_count(ConvDirection dir) {
  switch (dir) {
    case ConvDirection::Forward: return CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    case ConvDirection::BackwardData: return CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
    case ConvDirection::BackwardFilter: return CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  }
  return 0;
}

// A device buffer of `bytes`, or undefined when the allocator cannot give it.
Tensor try_allocate(size_t bytes, const Tensor& like) {
  try {
    return native::empty({static_cast<int64_t>(bytes)}, device_bytes(like));
  } catch (const Error&) {
    return Tensor();
  }
}

// cudnnFind*AlgorithmEx: every algorithm timed on the problem's own
// buffers. It writes the output it computes, so the weight gradient (which
// may be accumulating over batch slabs) gets a scratch buffer.
std::vector<Candidate> measured_ranking(cudnnHandle_t h, Problem& pb, const Tensor& like_w) {
  // As much workspace as the hungriest algorithm wants, halved until the
  // allocator can give it (algorithms needing more are then skipped).
  size_t want = 0;
  for (int a = 0; a < algo_id_count(pb.dir); ++a) {
    size_t bytes = 0;
    if (workspace_size(h, pb, a, &bytes) == CUDNN_STATUS_SUCCESS) want = std::max(want, bytes);
  }
  Tensor ws;
  while (want > 0 && !(ws = try_allocate(want, like_w)).defined()) want /= 2;
  void* pws = ws.defined() ? ws.data_ptr() : nullptr;

  const int n = max_algo_count(h, pb.dir);
  int got = 0;
  std::vector<Candidate> out;
  switch (pb.dir) {
    case ConvDirection::Forward: {
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(n);
      KILN_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, pb.x.d, pb.px, pb.w.d, pb.pw, pb.conv.d, pb.y.d,
                                                              pb.py, n, &got, perf.data(), pws, want));
      append(out, perf, got);
      break;
    }
    case ConvDirection::BackwardData: {
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(n);
      KILN_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, pb.w.d, pb.pw, pb.y.d, pb.py, pb.conv.d,
                                                                   pb.x.d, pb.px, n, &got, perf.data(), pws, want));
      append(out, perf, got);
      break;
    }
    case ConvDirection::BackwardFilter: {
      const Tensor scratch = native::empty_like(like_w);
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(n);
      KILN_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, pb.x.d, pb.px, pb.y.d, pb.py, pb.conv.d,
                                                                     pb.w.d, scratch.data_ptr(), n, &got,
                                                                     perf.data(), pws, want));
      append(out, perf, got);
      break;
    }
  }
  return out;
}

// The first usable candidate, in cuDNN's order: deterministic algorithms
// first (the same input then gives the same bits every run, as Kiln's own
// reductions do), any algorithm after that. Usable: cuDNN reported
// success, the math type is allowed, and the workspace can be allocated.
ConvAlgo pick(cudnnHandle_t h, Problem& pb, const std::vector<Candidate>& ranked, const Tensor& like) {
  const bool fma_only = pb.dt == kFloat32 && !pb.tf32;
  for (int pass = 0; pass < 2; ++pass) {
    for (const Candidate& c : ranked) {
      if (c.status != CUDNN_STATUS_SUCCESS) continue;
      if (pass == 0 && c.determinism != CUDNN_DETERMINISTIC) continue;
      // cuDNN wants the algorithm's own math type set; float32 without
      // TF32 keeps FMA whatever the ranking says.
      const cudnnMathType_t math = fma_only ? CUDNN_FMA_MATH : c.math;
      pb.conv.set_math(math);
      size_t bytes = 0;
      if (workspace_size(h, pb, c.algo, &bytes) != CUDNN_STATUS_SUCCESS) continue;
      if (bytes > 0 && !try_allocate(bytes, like).defined()) continue;
      return {c.algo, static_cast<int>(math), bytes};
    }
  }
  KILN_ERROR("conv2d (CUDA): cuDNN offers no usable ", conv_direction_name(pb.dir), " algorithm for ",
             dtype_name(pb.dt), " (", ranked.size(), " candidates ranked)");
}

// Runs one problem: the cached algorithm (found now if new), its workspace,
// and the cuDNN call, out = alpha * conv + beta * out.
void run_problem(ConvDirection dir, const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dParams& p,
                 double beta) {
  const Tensor& out = dir == ConvDirection::Forward ? y : dir == ConvDirection::BackwardData ? x : w;
  const Stream stream = getCurrentCUDAStream(device_index(out));
  cudnnHandle_t h = cudnn_handle(stream);
  Problem pb(dir, x, w, y, p);
  const bool benchmark = g_benchmark.load(std::memory_order_relaxed);
  const ConvPlanKey key = make_conv_plan_key(dir, pb.dt, x.sizes(), w.sizes(), y.sizes(), p, pb.tf32, benchmark,
                                             stream.device_index());
  ConvAlgo algo;
  if (!conv_plan_lookup(key, &algo)) {
    const std::vector<Candidate> ranked = benchmark ? measured_ranking(h, pb, w) : heuristic_ranking(h, pb);
    algo = pick(h, pb, ranked, out);
    conv_plan_store(key, algo);
  }
  pb.conv.set_math(static_cast<cudnnMathType_t>(algo.math));
  const Tensor ws = algo.workspace > 0 ? native::empty({static_cast<int64_t>(algo.workspace)}, device_bytes(out))
                                       : Tensor();
  void* pws = ws.defined() ? ws.data_ptr() : nullptr;
  // Scaling factors: double for double data, float otherwise.
  const double one_d = 1.0, beta_d = beta;
  const float one_f = 1.0f, beta_f = static_cast<float>(beta);
  const bool f64 = pb.dt == kFloat64;
  const void* alpha_p = f64 ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
  const void* beta_p = f64 ? static_cast<const void*>(&beta_d) : static_cast<const void*>(&beta_f);
  switch (dir) {
    case ConvDirection::Forward:
      KILN_CUDNN_CHECK(cudnnConvolutionForward(h, alpha_p, pb.x.d, pb.px, pb.w.d, pb.pw, pb.conv.d,
                                               static_cast<cudnnConvolutionFwdAlgo_t>(algo.algo), pws,
                                               algo.workspace, beta_p, pb.y.d, pb.py));
      break;
    case ConvDirection::BackwardData:
      KILN_CUDNN_CHECK(cudnnConvolutionBackwardData(h, alpha_p, pb.w.d, pb.pw, pb.y.d, pb.py, pb.conv.d,
                                                    static_cast<cudnnConvolutionBwdDataAlgo_t>(algo.algo), pws,
                                                    algo.workspace, beta_p, pb.x.d, pb.px));
      break;
    case ConvDirection::BackwardFilter:
      KILN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, alpha_p, pb.x.d, pb.px, pb.y.d, pb.py, pb.conv.d,
                                                      static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo.algo), pws,
                                                      algo.workspace, beta_p, pb.w.d, pb.pw));
      break;
  }
}

// Splits the batch into slabs cuDNN can index with 32 bits. The weight
// gradient sums over slabs (beta = 1 after the first); the other
// directions write disjoint slabs.
void convolve(ConvDirection dir, const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dParams& p) {
  const int64_t n = x.size(0);
  const int64_t per_image = std::max(x.numel() / std::max<int64_t>(n, 1), y.numel() / std::max<int64_t>(n, 1));
  KILN_CHECK(per_image <= INT_MAX && w.numel() <= INT_MAX, "conv2d (CUDA): one image (", x.sizes(), " -> ",
             y.sizes(), ") or the weight (", w.sizes(), ") has more than 2^31-1 elements, beyond cuDNN's indexing");
  const int64_t slab = std::max<int64_t>(1, INT_MAX / std::max<int64_t>(per_image, 1));
  if (n <= slab) {
    run_problem(dir, x, w, y, p, 0.0);
    return;
  }
  for (int64_t s = 0; s < n; s += slab) {
    const int64_t len = std::min(slab, n - s);
    const double beta = dir == ConvDirection::BackwardFilter && s > 0 ? 1.0 : 0.0;
    run_problem(dir, native::narrow(x, 0, s, len), w, native::narrow(y, 0, s, len), p, beta);
  }
}

void check_operand(const char* op, const char* name, const Tensor& t, DType dt, const Tensor& out) {
  KILN_CHECK(t.defined() && t.dim() == 4 && t.is_contiguous() && t.dtype() == dt, op,
             " (CUDA): expected a contiguous 4-D ", dtype_name(dt), " ", name, ", got ",
             t.defined() ? dtype_name(t.dtype()) : "undefined", " of size ",
             t.defined() ? t.sizes() : IntArrayRef{});
  KILN_CHECK(t.device() == out.device(), op, " (CUDA): ", name, " is on ", t.device(), " but the output is on ",
             out.device());
}

void check_dtype(const char* op, DType dt) {
  KILN_CHECK(is_floating_point(dt), op, " (CUDA): expected a floating-point dtype, got ", dtype_name(dt));
}

// The shapes agree with the geometry (the native layer computed them; a
// mismatch is a caller bug that cuDNN would report less clearly).
void check_geometry(const char* op, const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dParams& p) {
  bool ok = x.size(0) == y.size(0) && w.size(0) == y.size(1) && p.groups > 0 && w.size(0) % p.groups == 0 &&
            x.size(1) == w.size(1) * p.groups;
  for (int d = 0; d < 2 && ok; ++d) {
    ok = p.stride[d] > 0 && p.dilation[d] > 0 && p.padding[d] >= 0;
    if (!ok) break;
    const int64_t span = p.dilation[d] * (w.size(2 + d) - 1) + 1;
    ok = y.size(2 + d) == (x.size(2 + d) + 2 * p.padding[d] - span) / p.stride[d] + 1;
  }
  KILN_CHECK(ok, op, " (CUDA): inconsistent shapes: input ", x.sizes(), ", weight ", w.sizes(), ", output ",
             y.sizes(), ", groups ", p.groups);
}

}  // namespace

void set_cudnn_allow_tf32(bool allow) { g_cudnn_tf32.store(allow, std::memory_order_relaxed); }
bool cudnn_allow_tf32() { return g_cudnn_tf32.load(std::memory_order_relaxed); }
void set_cudnn_benchmark(bool benchmark) { g_benchmark.store(benchmark, std::memory_order_relaxed); }
bool cudnn_benchmark() { return g_benchmark.load(std::memory_order_relaxed); }

void CudaBackend::conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                         const Tensor& out) {
  const DType dt = out.dtype();
  check_dtype("conv2d", dt);
  check_operand("conv2d", "input", input, dt, out);
  check_operand("conv2d", "weight", weight, dt, out);
  check_operand("conv2d", "output", out, dt, out);
  KILN_CHECK(!bias.defined() || (bias.dim() == 1 && bias.is_contiguous() && bias.dtype() == dt &&
                                 bias.size(0) == weight.size(0) && bias.device() == out.device()),
             "conv2d (CUDA): expected a contiguous 1-D ", dtype_name(dt), " bias of ", weight.size(0),
             " elements, got ", bias.sizes());
  check_geometry("conv2d", input, weight, out, p);
  if (out.numel() == 0) return;
  DeviceGuard guard(device_index(out));
  if (input.numel() == 0) {
    // No input channels (the native layer handles this itself; kept for
    // direct callers): every output is the bias or zero.
    native::fill_(out, 0);
  } else {
    convolve(ConvDirection::Forward, input, weight, out, p);
  }
  if (bias.defined()) native::binary_(BinaryOp::Add, out, native::view(bias, {1, bias.size(0), 1, 1}));
}

void CudaBackend::conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Conv2dParams& p,
                                        const Tensor& grad_input) {
  const char* op = "conv2d_backward_input";
  const DType dt = grad_input.dtype();
  check_dtype(op, dt);
  check_operand(op, "grad_out", grad_out, dt, grad_input);
  check_operand(op, "weight", weight, dt, grad_input);
  check_operand(op, "grad_input", grad_input, dt, grad_input);
  check_geometry(op, grad_input, weight, grad_out, p);
  if (grad_input.numel() == 0) return;
  DeviceGuard guard(device_index(grad_input));
  if (grad_out.numel() == 0 || weight.numel() == 0) {
    native::fill_(grad_input, 0);
    return;
  }
  convolve(ConvDirection::BackwardData, grad_input, weight, grad_out, p);
}

void CudaBackend::conv2d_backward_weight(const Tensor& grad_out, const Tensor& input, const Conv2dParams& p,
                                         const Tensor& grad_weight, const Tensor& grad_bias) {
  const char* op = "conv2d_backward_weight";
  const DType dt = grad_weight.dtype();
  check_dtype(op, dt);
  check_operand(op, "grad_out", grad_out, dt, grad_weight);
  check_operand(op, "input", input, dt, grad_weight);
  check_operand(op, "grad_weight", grad_weight, dt, grad_weight);
  KILN_CHECK(!grad_bias.defined() || (grad_bias.dim() == 1 && grad_bias.is_contiguous() && grad_bias.dtype() == dt &&
                                      grad_bias.size(0) == grad_weight.size(0) &&
                                      grad_bias.device() == grad_weight.device()),
             "conv2d_backward_weight (CUDA): expected a contiguous 1-D ", dtype_name(dt), " grad_bias of ",
             grad_weight.size(0), " elements, got ", grad_bias.sizes());
  check_geometry(op, input, grad_weight, grad_out, p);
  DeviceGuard guard(device_index(grad_weight));
  if (grad_weight.numel() > 0) {
    if (grad_out.numel() == 0 || input.numel() == 0) {
      native::fill_(grad_weight, 0);
    } else {
      convolve(ConvDirection::BackwardFilter, input, grad_weight, grad_out, p);
    }
  }
  if (grad_bias.defined()) {
    // Summed straight into grad_bias viewed with grad_out's rank: dims 0, 2
    // and 3 have size 1 there, so the backend reduces exactly those.
    if (grad_out.numel() == 0) {
      native::fill_(grad_bias, 0);
    } else {
      reduce(ReduceOp::Sum, grad_out, native::view(grad_bias, {1, grad_bias.size(0), 1, 1}));
    }
  }
}

}  // namespace kiln::cuda
