#pragma once
// The pointwise launcher: out[i] = f(in0[i], in1[i], ...) for inputs of
// out's shape with any strides (0 along broadcast dims).
//
// Two kernels per (functor, element types): when, after ordering dims by
// out's strides and merging, out is one dense run and every input is either
// dense in step with it or a single broadcast value (x * scalar, the most
// common case), a flat loop moving 16 bytes per operand per access where the
// pointers allow it; anything else walks offsets through a StridedIndexer.
// Functors carry the op as a runtime value and switch on it (the branch is
// uniform across the grid), so a file instantiates one kernel per dtype per
// arity per path rather than one per op.
//
// Out and In... are device element types (common.cuh); F is trivially
// copyable with `__device__ Out operator()(In...) const`. Callers hold a
// DeviceGuard for out's device; out may be the same view as an input (in
// place) but must not otherwise overlap one.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <tuple>
#include <utility>

#include "kernels/common.cuh"

namespace kiln::cuda {

namespace ew {

// A minimal tuple for device code: one loaded vector per input.
template <typename... Ts> struct Tup;
template <> struct Tup<> {};
template <typename T, typename... Ts>
struct Tup<T, Ts...> {
  T first;
  Tup<Ts...> rest;
};

template <size_t I, typename T, typename... Ts>
__device__ __forceinline__ auto& get(Tup<T, Ts...>& t) {
  if constexpr (I == 0) {
    return t.first;
  } else {
    return get<I - 1>(t.rest);
  }
}

// V elements moved as one aligned access (16 bytes for the widest operand).
template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

template <typename Out, typename... In>
inline constexpr int kVecWidth = 16 / static_cast<int>(std::max({sizeof(Out), sizeof(In)...}));

template <int N>
struct Ptrs {
  const void* p[N];
};

template <typename T, int V>
__device__ __forceinline__ Vec<T, V> load_vec(const void* p, int64_t v, bool broadcast) {
  const T* q = static_cast<const T*>(p);
  if (broadcast) {
    Vec<T, V> r;
    const T s = q[0];
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = s;
    return r;
  }
  return reinterpret_cast<const Vec<T, V>*>(q)[v];
}

template <int V, typename F, typename Out, typename... In, size_t... I>
__device__ __forceinline__ void contiguous_body(int64_t n, Out* out, const Ptrs<sizeof...(In)>& in, unsigned bcast,
                                                bool vectorised, const F& f, std::index_sequence<I...>) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vectorised) {
    const int64_t nv = n / V;
    for (int64_t v = tid; v < nv; v += step) {
      Tup<Vec<In, V>...> x;
      ((get<I>(x) = load_vec<In, V>(in.p[I], v, (bcast >> I) & 1u)), ...);
      Vec<Out, V> o;
#pragma unroll
      for (int j = 0; j < V; ++j) o.v[j] = f(get<I>(x).v[j]...);
      reinterpret_cast<Vec<Out, V>*>(out)[v] = o;
    }
    done = nv * V;
  }
  // The tail after the last full vector, or everything when misaligned.
  for (int64_t i = done + tid; i < n; i += step) {
    out[i] = f(static_cast<const In*>(in.p[I])[((bcast >> I) & 1u) ? 0 : i]...);
  }
}

template <int V, typename F, typename Out, typename... In>
__global__ void __launch_bounds__(kBlock)
    contiguous_kernel(int64_t n, Out* out, Ptrs<sizeof...(In)> in, unsigned bcast, bool vectorised, F f) {
  contiguous_body<V, F, Out, In...>(n, out, in, bcast, vectorised, f, std::index_sequence_for<In...>{});
}

// StridedIndexer::offsets with 32-bit division, for tensors under 2^31
// elements (so is every size): a 64-bit divide costs several times more.
template <int N>
__device__ __forceinline__ void offsets32(const StridedIndexer<N>& ix, uint32_t linear, int64_t (&out)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) out[k] = 0;
  for (int d = ix.ndim - 1; d >= 0; --d) {
    const auto size = static_cast<uint32_t>(ix.sizes[d]);
    const uint32_t q = linear / size;
    const int64_t i = linear - q * size;
    linear = q;
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] += i * ix.strides[k][d];
  }
}

template <typename F, typename Out, typename... In, size_t... I>
__device__ __forceinline__ void strided_body(int64_t n, Out* out, const Ptrs<sizeof...(In)>& in,
                                             const StridedIndexer<sizeof...(In) + 1>& ix, const F& f,
                                             std::index_sequence<I...>) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t off[sizeof...(In) + 1];
  if (n <= INT32_MAX) {
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
      offsets32(ix, static_cast<uint32_t>(i), off);
      out[off[0]] = f(static_cast<const In*>(in.p[I])[off[I + 1]]...);
    }
  } else {
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
      ix.offsets(i, off);
      out[off[0]] = f(static_cast<const In*>(in.p[I])[off[I + 1]]...);
    }
  }
}

template <typename F, typename Out, typename... In>
__global__ void __launch_bounds__(kBlock)
    strided_kernel(int64_t n, Out* out, Ptrs<sizeof...(In)> in, StridedIndexer<sizeof...(In) + 1> ix, F f) {
  strided_body<F, Out, In...>(n, out, in, ix, f, std::index_sequence_for<In...>{});
}

// How N operands (out first) of one shape are walked.
template <int N>
struct Layout {
  StridedIndexer<N> ix;
  bool contiguous = false;  // out one dense run; each input dense alongside it or one broadcast value
  unsigned bcast = 0;       // bit k: input k (operand k + 1) is one value for every element
};

// Drops size-1 dims, orders the rest by out's strides (largest first: the
// iteration order is free for a pointwise op, and this makes identically
// permuted operands, e.g. all transposed, one dense run), then merges dims
// that step together in every operand.
template <int N>
Layout<N> plan_layout(const char* op, const Tensor* const (&t)[N]) {
  constexpr int kCap = 64;
  const IntArrayRef shape = t[0]->sizes();
  int64_t sizes[kCap];
  int64_t strides[N][kCap];
  int nd = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    KILN_CHECK(nd < kCap, op, " (CUDA): too many dims");
    sizes[nd] = shape[d];
    for (int k = 0; k < N; ++k) strides[k][nd] = t[k]->strides()[d];
    ++nd;
  }
  // Stable insertion sort of the dims by |out stride|, descending.
  int order[kCap];
  for (int d = 0; d < nd; ++d) order[d] = d;
  auto key = [&](int d) { return strides[0][d] < 0 ? -strides[0][d] : strides[0][d]; };
  for (int d = 1; d < nd; ++d) {
    const int cur = order[d];
    int e = d;
    for (; e > 0 && key(order[e - 1]) < key(cur); --e) order[e] = order[e - 1];
    order[e] = cur;
  }
  int64_t ms[kCap];
  int64_t mst[N][kCap];
  int m = 0;
  for (int j = 0; j < nd; ++j) {
    const int d = order[j];
    bool mergeable = m > 0;
    for (int k = 0; k < N && mergeable; ++k) mergeable = mst[k][m - 1] == strides[k][d] * sizes[d];
    if (mergeable) {
      ms[m - 1] *= sizes[d];
      for (int k = 0; k < N; ++k) mst[k][m - 1] = strides[k][d];
    } else {
      ms[m] = sizes[d];
      for (int k = 0; k < N; ++k) mst[k][m] = strides[k][d];
      ++m;
    }
  }
  Layout<N> L;
  if (m == 0) {  // a single element
    L.contiguous = true;
    L.bcast = (1u << (N - 1)) - 1u;
    return L;
  }
  if (m == 1 && mst[0][0] == 1) {
    L.contiguous = true;
    for (int k = 1; k < N && L.contiguous; ++k) {
      if (mst[k][0] == 0) L.bcast |= 1u << (k - 1);
      else L.contiguous = mst[k][0] == 1;
    }
    if (L.contiguous) return L;
    L.bcast = 0;
  }
  KILN_CHECK(m <= kMaxDims, op, " (CUDA): at most ", kMaxDims, " non-mergeable dims are supported, got ", m);
  L.ix.ndim = m;
  for (int d = 0; d < m; ++d) {
    L.ix.sizes[d] = ms[d];
    for (int k = 0; k < N; ++k) L.ix.strides[k][d] = mst[k][d];
  }
  return L;
}

template <int V, typename Out, typename... In, size_t... I>
bool all_aligned(const void* out, const Ptrs<sizeof...(In)>& p, unsigned bcast, std::index_sequence<I...>) {
  auto ok = [](const void* q, size_t bytes) { return reinterpret_cast<uintptr_t>(q) % bytes == 0; };
  return ok(out, V * sizeof(Out)) && ((((bcast >> I) & 1u) != 0 || ok(p.p[I], V * sizeof(In))) && ...);
}

}  // namespace ew

// out = f(ins...) elementwise; ins are tensors of out's shape whose
// elements are In... (in order). Returns without launching when empty.
template <typename Out, typename... In, typename F>
void launch_elementwise(const char* op, const Tensor& out, std::initializer_list<const Tensor*> ins, const F& f) {
  constexpr int NI = sizeof...(In);
  static_assert(NI >= 1 && NI <= 8, "launch_elementwise: 1 to 8 inputs");
  KILN_CHECK(static_cast<int>(ins.size()) == NI, op, " (CUDA): launcher given ", ins.size(), " inputs, expected ",
             NI);
  const Tensor* ops[NI + 1];
  ops[0] = &out;
  int k = 1;
  for (const Tensor* t : ins) {
    KILN_CHECK(t->sizes().equals(out.sizes()), op, " (CUDA): operand shape ", t->sizes(),
               " != output shape ", out.sizes());
    KILN_CHECK(t->device() == out.device(), op, " (CUDA): operand on ", t->device(), " but output on ",
               out.device());
    ops[k++] = t;
  }
  const int64_t n = out.numel();
  if (n == 0) return;
  const ew::Layout<NI + 1> L = ew::plan_layout<NI + 1>(op, ops);
  ew::Ptrs<NI> p;
  for (int i = 0; i < NI; ++i) p.p[i] = ops[i + 1]->data_ptr();
  Out* o = static_cast<Out*>(out.data_ptr());
  const cudaStream_t stream = stream_of(out);
  if (L.contiguous) {
    constexpr int V = ew::kVecWidth<Out, In...>;
    const bool aligned = ew::all_aligned<V, Out, In...>(o, p, L.bcast, std::index_sequence_for<In...>{});
    const int64_t items = aligned ? (n + V - 1) / V : n;
    ew::contiguous_kernel<V, F, Out, In...><<<grid_for(items), kBlock, 0, stream>>>(n, o, p, L.bcast, aligned, f);
  } else {
    ew::strided_kernel<F, Out, In...><<<grid_for(n), kBlock, 0, stream>>>(n, o, p, L.ix, f);
  }
  KILN_CUDA_CHECK_LAUNCH();
}

// True when every dim of size > 1 has stride 0: one value for all elements.
inline bool is_single_value(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.sizes()[d] != 1 && t.strides()[d] != 0) return false;
  return true;
}

}  // namespace kiln::cuda
