// 2-D convolution kernels for the CPU (float32/float64, contiguous NCHW).
//
// General convolutions are GEMMs over im2col columns: for image n and group
// g, out[n, g] (Cog x P) = weight[g] (Cog x K) @ col (K x P), with K =
// Cg*kH*kW and P = Ho*Wo. The columns are built one tile of output positions
// at a time, so the buffer stays in the core's L2 cache while BLAS reads it.
// A 1x1 stride-1 unpadded convolution needs no columns: the input's channel
// planes already are the K x P matrix. Depthwise convolutions (one input
// channel per group) reuse each input value too little for a GEMM and run as
// direct loops (cpu_conv_depthwise.cpp). Where the build targets AVX-512,
// float32 forward and stride-1 input-gradient convolutions bypass BLAS
// (cpu_conv_avx512.cpp); this file then serves float64, the weight
// gradient and strided input gradients.
//
// Threads: whole (n, g) items go to threads, each with its own column buffer
// and a single-threaded BLAS call (OpenBLAS runs single-threaded inside an
// OpenMP region); items that do not divide evenly among the threads run one
// at a time with BLAS's own threads. The weight gradient sums over items, so
// each thread accumulates into its own partial sum, added up at the end.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_conv.h"
#include "cpu/strided_loop.h"
#include "kiln/core/native/factory.h"

namespace kiln::cpu {

namespace {

// Column tiles: about this many bytes, but never fewer output positions
// than kMinTileCols (each GEMM call packs the weight block again, which only
// pays off over enough columns).
constexpr int64_t kColTileBytes = int64_t{1} << 20;
constexpr int64_t kMinTileCols = 256;

inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb),
              beta, c, static_cast<int>(ldc));
}
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
                 int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), 1.0, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

// Output positions per column tile.
int64_t tile_cols(const ConvGeom& g, size_t elem) {
  const int64_t P = g.P();
  const int64_t t = std::max<int64_t>(kMinTileCols, kColTileBytes / (g.K() * static_cast<int64_t>(elem)));
  if (t >= P) return P;
  return std::max<int64_t>(16, t / 16 * 16);  // rows of the buffer start on cache lines
}

// Walks the output positions [p0, p0 + np) of a plane as runs along one
// output row: fn(oh, ow_begin, ow_end, dst_offset) with dst_offset the run's
// position within the tile.
template <typename Fn>
inline void for_each_run(const ConvGeom& g, int64_t p0, int64_t np, Fn&& fn) {
  int64_t oh = p0 / g.Wo, ow = p0 % g.Wo, done = 0;
  while (done < np) {
    const int64_t n = std::min(g.Wo - ow, np - done);
    fn(oh, ow, ow + n, done);
    done += n;
    ow = 0;
    ++oh;
  }
}

// col[r, q] (r = (c*kH + i)*kW + j, q < np) = the input under kernel tap
// (i, j) of channel c at output position p0 + q; zero in the padding.
// `in` points at the group's Cg channel planes.
template <typename T>
void im2col(const T* in, const ConvGeom& g, int64_t p0, int64_t np, T* col, bool parallel) {
  const int64_t kk = g.kh * g.kw;
  auto rows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r / kk, i = (r / g.kw) % g.kh, j = r % g.kw;
      const T* plane = in + c * g.H * g.W;
      const int64_t off = j * g.dw - g.pw;
      const OwRange valid = valid_ow(g, off);
      T* dst = col + r * np;
      for_each_run(g, p0, np, [&](int64_t oh, int64_t ow0, int64_t ow1, int64_t q) {
        T* d = dst + q - ow0;  // d[ow] for ow in [ow0, ow1)
        const int64_t ih = oh * g.sh - g.ph + i * g.dh;
        if (ih < 0 || ih >= g.H) {
          std::fill(d + ow0, d + ow1, T(0));
          return;
        }
        const T* src = plane + ih * g.W;
        const int64_t a = std::clamp(valid.lo, ow0, ow1), b = std::clamp(valid.hi, a, ow1);
        std::fill(d + ow0, d + a, T(0));
        if (g.sw == 1) {
          if (b > a) std::memcpy(d + a, src + a + off, static_cast<size_t>(b - a) * sizeof(T));
        } else {
          for (int64_t ow = a; ow < b; ++ow) d[ow] = src[ow * g.sw + off];
        }
        std::fill(d + b, d + ow1, T(0));
      });
    }
  };
  const int64_t K = g.K();
  if (parallel) {
    parallel_for(K, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(np, 1)), rows);
  } else {
    rows(0, K);
  }
}

// The adjoint of im2col: adds col's tile into the group's Cg input planes
// (which the caller zeroed). Threads split channels, whose planes are disjoint.
template <typename T>
void col2im(const T* col, const ConvGeom& g, int64_t p0, int64_t np, T* in, bool parallel) {
  auto channels = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      T* plane = in + c * g.H * g.W;
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t off = j * g.dw - g.pw;
          const OwRange valid = valid_ow(g, off);
          const T* src = col + ((c * g.kh + i) * g.kw + j) * np;
          for_each_run(g, p0, np, [&](int64_t oh, int64_t ow0, int64_t ow1, int64_t q) {
            const int64_t ih = oh * g.sh - g.ph + i * g.dh;
            if (ih < 0 || ih >= g.H) return;
            const T* s = src + q - ow0;
            T* dst = plane + ih * g.W;
            const int64_t a = std::clamp(valid.lo, ow0, ow1), b = std::clamp(valid.hi, a, ow1);
            if (g.sw == 1) {
              for (int64_t ow = a; ow < b; ++ow) dst[ow + off] += s[ow];
            } else {
              for (int64_t ow = a; ow < b; ++ow) dst[ow * g.sw + off] += s[ow];
            }
          });
        }
      }
    }
  };
  if (parallel) {
    parallel_for(g.Cg, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(np * g.kh * g.kw, 1)), channels);
  } else {
    channels(0, g.Cg);
  }
}

// Runs item(i, thread, serial) for i in [0, n): as many whole items per
// thread as divide evenly, in parallel (thread = the OpenMP thread, below
// `threads`), then the rest on the calling thread (thread 0, serial = true:
// the item may use threads inside, BLAS's or its own loops').
template <typename F>
void for_each_item(int64_t n, int threads, F&& item) {
  int64_t shared = 0;
  if (threads > 1 && n >= threads && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
    {
      // The team may be smaller than asked for; split by its real size.
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t per = n / nt;
      for (int64_t i = t * per; i < (t + 1) * per; ++i) item(i, t, false);
      if (t == 0) shared = per * nt;
    }
  }
  for (int64_t i = shared; i < n; ++i) item(i, 0, true);
}

int worker_threads(int64_t items) {
  return omp_in_parallel() ? 1 : static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(items, 1)));
}

// One column buffer per thread, from the caching allocator.
template <typename T>
struct Scratch {
  Tensor buffer;
  int64_t per_thread = 0;
  Scratch(int threads, int64_t elems, DType dt) : per_thread(elems) {
    if (elems > 0) buffer = native::empty({threads * elems}, dt);
  }
  T* operator[](int t) const { return static_cast<T*>(buffer.data_ptr()) + t * per_thread; }
};

template <typename T>
void forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const ConvGeom& g, const Tensor& out) {
  const T* in = input.data_ptr<T>();
  const T* w = weight.data_ptr<T>();
  const T* b = bias.defined() ? bias.data_ptr<T>() : nullptr;
  T* o = out.data_ptr<T>();
  const int64_t K = g.K(), P = g.P(), HW = g.H * g.W;
  const bool pointwise = g.pointwise();
  const int64_t tile = tile_cols(g, sizeof(T));
  const int64_t items = g.N * g.groups;
  const int threads = worker_threads(items);
  Scratch<T> cols(threads, pointwise ? 0 : K * tile, out.dtype());
  for_each_item(items, threads, [&](int64_t item, int t, bool serial) {
    const int64_t n = item / g.groups, gi = item % g.groups;
    const T* in_ng = in + (n * g.C + gi * g.Cg) * HW;
    const T* w_g = w + gi * g.Cog * K;
    T* out_ng = o + (n * g.Cout + gi * g.Cog) * P;
    // The bias goes in first and the GEMM adds to it (beta = 1): one pass
    // over the output fewer than adding it afterwards.
    const T beta = b != nullptr ? T(1) : T(0);
    auto fill_bias = [&](int64_t p0, int64_t np) {
      if (b == nullptr) return;
      for (int64_t oc = 0; oc < g.Cog; ++oc) std::fill_n(out_ng + oc * P + p0, np, b[gi * g.Cog + oc]);
    };
    if (pointwise) {
      fill_bias(0, P);
      gemm(false, false, g.Cog, P, K, w_g, K, in_ng, HW, beta, out_ng, P);
      return;
    }
    T* col = cols[t];
    for (int64_t p0 = 0; p0 < P; p0 += tile) {
      const int64_t np = std::min(tile, P - p0);
      im2col(in_ng, g, p0, np, col, serial);
      fill_bias(p0, np);
      gemm(false, false, g.Cog, np, K, w_g, K, col, np, beta, out_ng + p0, P);
    }
  });
}

template <typename T>
void backward_input(const Tensor& grad_out, const Tensor& weight, const ConvGeom& g, const Tensor& grad_input) {
  const T* go = grad_out.data_ptr<T>();
  const T* w = weight.data_ptr<T>();
  T* gi_all = grad_input.data_ptr<T>();
  const int64_t K = g.K(), P = g.P(), HW = g.H * g.W;
  const bool pointwise = g.pointwise();
  const int64_t tile = tile_cols(g, sizeof(T));
  const int64_t items = g.N * g.groups;
  const int threads = worker_threads(items);
  Scratch<T> cols(threads, pointwise ? 0 : K * tile, grad_input.dtype());
  for_each_item(items, threads, [&](int64_t item, int t, bool serial) {
    const int64_t n = item / g.groups, gi = item % g.groups;
    const T* go_ng = go + (n * g.Cout + gi * g.Cog) * P;
    const T* w_g = w + gi * g.Cog * K;
    T* gin_ng = gi_all + (n * g.C + gi * g.Cg) * HW;
    if (pointwise) {
      gemm(true, false, g.Cg, HW, g.Cog, w_g, K, go_ng, P, T(0), gin_ng, HW);
      return;
    }
    std::fill(gin_ng, gin_ng + g.Cg * HW, T(0));
    T* col = cols[t];
    for (int64_t p0 = 0; p0 < P; p0 += tile) {
      const int64_t np = std::min(tile, P - p0);
      gemm(true, false, K, np, g.Cog, w_g, K, go_ng + p0, P, T(0), col, np);
      col2im(col, g, p0, np, gin_ng, serial);
    }
  });
}

// grad_bias[oc] = sum over n and positions of grad_out[n, oc].
template <typename T>
void bias_grad(const T* go, const ConvGeom& g, T* gb) {
  const int64_t P = g.P();
  parallel_for(g.Cout, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(g.N * P, 1)), [&](int64_t c0, int64_t c1) {
    for (int64_t oc = c0; oc < c1; ++oc) {
      T total = 0;
      for (int64_t n = 0; n < g.N; ++n) total += lane_sum(go + (n * g.Cout + oc) * P, P);
      gb[oc] = total;
    }
  });
}

// Each thread sums its items into its own partial gradient, stored
// transposed (per group, K x Cog): the GEMM col (K x np) @ grad_out^T reads
// the column tile without BLAS transposing it while packing, which measured
// faster than grad_out @ col^T. The partials are added and transposed into
// grad_weight at the end (a pass over weight-sized buffers only).
template <typename T>
void backward_weight(const Tensor& grad_out, const Tensor& input, const ConvGeom& g, const Tensor& grad_weight) {
  const T* go = grad_out.data_ptr<T>();
  const T* in = input.data_ptr<T>();
  const int64_t K = g.K(), P = g.P(), HW = g.H * g.W;
  const int64_t wnumel = g.Cout * K;
  const bool pointwise = g.pointwise();
  const int64_t tile = tile_cols(g, sizeof(T));
  const int64_t items = g.N * g.groups;
  const int threads = worker_threads(items);
  Scratch<T> cols(threads, pointwise ? 0 : K * tile, grad_weight.dtype());
  Scratch<T> partials(threads, wnumel, grad_weight.dtype());
  std::fill(partials[0], partials[0] + threads * wnumel, T(0));
  for_each_item(items, threads, [&](int64_t item, int t, bool serial) {
    const int64_t n = item / g.groups, gi = item % g.groups;
    const T* go_ng = go + (n * g.Cout + gi * g.Cog) * P;
    const T* in_ng = in + (n * g.C + gi * g.Cg) * HW;
    T* part_g = partials[t] + gi * K * g.Cog;
    if (pointwise) {
      gemm(false, true, K, g.Cog, P, in_ng, HW, go_ng, P, T(1), part_g, g.Cog);
      return;
    }
    T* col = cols[t];
    for (int64_t p0 = 0; p0 < P; p0 += tile) {
      const int64_t np = std::min(tile, P - p0);
      im2col(in_ng, g, p0, np, col, serial);
      gemm(false, true, K, g.Cog, np, col, np, go_ng + p0, P, T(1), part_g, g.Cog);
    }
  });
  T* gw = grad_weight.data_ptr<T>();
  for (int64_t gi = 0; gi < g.groups; ++gi) {
    for (int64_t o = 0; o < g.Cog; ++o) {
      T* dst = gw + (gi * g.Cog + o) * K;
      for (int64_t k = 0; k < K; ++k) {
        T total = 0;
        for (int t = 0; t < threads; ++t) total += partials[t][(gi * K + k) * g.Cog + o];
        dst[k] = total;
      }
    }
  }
}

// The AVX-512 path for float32 where the build has it; false: use BLAS.
template <typename T>
bool packed_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const ConvGeom& g,
                    const Tensor& out) {
  if constexpr (std::is_same_v<T, float>) {
    if (packed_conv_available()) {
      packed_conv_forward(input.data_ptr<float>(), weight.data_ptr<float>(),
                          bias.defined() ? bias.data_ptr<float>() : nullptr, g, out.data_ptr<float>());
      return true;
    }
  }
  return false;
}

template <typename T>
bool packed_backward_input(const Tensor& grad_out, const Tensor& weight, const ConvGeom& g, const Tensor& grad_input) {
  if constexpr (std::is_same_v<T, float>) {
    return packed_conv_available() && packed_conv_backward_input(grad_out.data_ptr<float>(), weight.data_ptr<float>(),
                                                                 g, grad_input.data_ptr<float>());
  }
  return false;
}

template <typename T>
bool packed_backward_weight(const Tensor& grad_out, const Tensor& input, const ConvGeom& g,
                            const Tensor& grad_weight) {
  if constexpr (std::is_same_v<T, float>) {
    if (packed_conv_available()) {
      packed_conv_backward_weight(grad_out.data_ptr<float>(), input.data_ptr<float>(), g,
                                  grad_weight.data_ptr<float>());
      return true;
    }
  }
  return false;
}

void check_operand(const char* op, const char* name, const Tensor& t, DType dt) {
  KILN_CHECK(t.dim() == 4 && t.is_contiguous() && t.dtype() == dt, op, " (CPU kernel): expected a contiguous 4-D ",
             dtype_name(dt), " ", name, ", got ", dtype_name(t.dtype()), " of size ", t.sizes());
}

void check_dtype(const char* op, DType dt) {
  KILN_CHECK(dt == kFloat32 || dt == kFloat64, op,
             " (CPU kernel): only float32 and float64 are computed here (16-bit floats are converted by the caller), "
             "got ",
             dtype_name(dt));
}

}  // namespace

ConvGeom conv_geometry(const char* op, const Tensor& input, IntArrayRef weight, const Tensor& out,
                       const Conv2dParams& p) {
  ConvGeom g;
  g.N = input.size(0);
  g.C = input.size(1);
  g.H = input.size(2);
  g.W = input.size(3);
  g.Cout = weight[0];
  g.Cg = weight[1];
  g.kh = weight[2];
  g.kw = weight[3];
  g.groups = p.groups;
  g.Cog = g.Cout / g.groups;
  g.Ho = out.size(2);
  g.Wo = out.size(3);
  g.sh = p.stride[0];
  g.sw = p.stride[1];
  g.ph = p.padding[0];
  g.pw = p.padding[1];
  g.dh = p.dilation[0];
  g.dw = p.dilation[1];
  KILN_CHECK(g.C == g.Cg * g.groups && g.Cout == g.Cog * g.groups && out.size(0) == g.N && out.size(1) == g.Cout &&
                 g.Ho == (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1 &&
                 g.Wo == (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1,
             op, " (CPU kernel): inconsistent shapes: input ", input.sizes(), ", weight ", weight, ", output ",
             out.sizes(), ", groups ", p.groups);
  return g;
}

void CpuBackend::conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                        const Tensor& out) {
  const DType dt = out.dtype();
  check_dtype("conv2d", dt);
  check_operand("conv2d", "input", input, dt);
  check_operand("conv2d", "weight", weight, dt);
  check_operand("conv2d", "output", out, dt);
  KILN_CHECK(!bias.defined() || (bias.dim() == 1 && bias.is_contiguous() && bias.dtype() == dt &&
                                 bias.size(0) == weight.size(0)),
             "conv2d (CPU kernel): bad bias of size ", bias.sizes());
  const ConvGeom g = conv_geometry("conv2d", input, weight.sizes(), out, p);
  if (out.numel() == 0) return;
  dispatch_floating(dt, "conv2d", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      if (g.depthwise()) {
        depthwise_forward<T>(input, weight, bias, g, out);
      } else if (!packed_forward<T>(input, weight, bias, g, out)) {
        forward<T>(input, weight, bias, g, out);
      }
    }
  });
}

void CpuBackend::conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Conv2dParams& p,
                                       const Tensor& grad_input) {
  const DType dt = grad_input.dtype();
  check_dtype("conv2d_backward_input", dt);
  check_operand("conv2d_backward_input", "grad_out", grad_out, dt);
  check_operand("conv2d_backward_input", "weight", weight, dt);
  check_operand("conv2d_backward_input", "grad_input", grad_input, dt);
  const ConvGeom g = conv_geometry("conv2d_backward_input", grad_input, weight.sizes(), grad_out, p);
  if (grad_input.numel() == 0) return;
  dispatch_floating(dt, "conv2d_backward_input", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      if (g.depthwise()) {
        depthwise_backward_input<T>(grad_out, weight, g, grad_input);
      } else if (!packed_backward_input<T>(grad_out, weight, g, grad_input)) {
        backward_input<T>(grad_out, weight, g, grad_input);
      }
    }
  });
}

void CpuBackend::conv2d_backward_weight(const Tensor& grad_out, const Tensor& input, const Conv2dParams& p,
                                        const Tensor& grad_weight, const Tensor& grad_bias) {
  const DType dt = grad_weight.dtype();
  check_dtype("conv2d_backward_weight", dt);
  check_operand("conv2d_backward_weight", "grad_out", grad_out, dt);
  check_operand("conv2d_backward_weight", "input", input, dt);
  check_operand("conv2d_backward_weight", "grad_weight", grad_weight, dt);
  KILN_CHECK(!grad_bias.defined() || (grad_bias.dim() == 1 && grad_bias.is_contiguous() && grad_bias.dtype() == dt &&
                                      grad_bias.size(0) == grad_weight.size(0)),
             "conv2d_backward_weight (CPU kernel): bad grad_bias of size ", grad_bias.sizes());
  const ConvGeom g = conv_geometry("conv2d_backward_weight", input, grad_weight.sizes(), grad_out, p);
  dispatch_floating(dt, "conv2d_backward_weight", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      if (grad_weight.numel() > 0) {
        if (g.N == 0) {
          std::fill(grad_weight.data_ptr<T>(), grad_weight.data_ptr<T>() + grad_weight.numel(), T(0));
        } else if (g.depthwise()) {
          depthwise_backward_weight<T>(grad_out, input, g, grad_weight);
        } else if (!packed_backward_weight<T>(grad_out, input, g, grad_weight)) {
          backward_weight<T>(grad_out, input, g, grad_weight);
        }
      }
      if (grad_bias.defined()) bias_grad<T>(grad_out.data_ptr<T>(), g, grad_bias.data_ptr<T>());
    }
  });
}

}  // namespace kiln::cpu
