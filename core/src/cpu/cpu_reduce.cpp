// Reductions (sum, prod, max, min, all, any) and argmax/argmin.
//
// A reduction is planned once: size-1 dims dropped, kept dims merged where
// input and output step evenly across them, reduced dims ordered by stride
// and merged, so contiguous data always reaches the inner loop as one long
// run. Three strategies follow from the innermost dims:
//   - the innermost reduced dim is contiguous: each output reduces contiguous
//     runs (an `omp simd` reduction);
//   - the innermost kept dim is contiguous: each block of outputs accumulates
//     whole input rows, vectorised across the kept dim;
//   - otherwise each output walks its inputs by stride.
// The work is split over outputs, or, for a single output, over fixed chunks
// of the reduced range combined in order, so results never depend on the
// thread count. Floating sums and products accumulate in double (float sums
// through short float partial sums first: see sum_run and SumOp::rows).
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_loops.h"

namespace kiln::cpu {

namespace {

// A single output's reduction is split into chunks of this many elements.
constexpr int64_t kChunk = 1 << 15;
// Outputs accumulated together in the row strategy: wide blocks stream whole
// rows, but there must be enough blocks to share among the threads. Each
// output is reduced in the same order whatever the block, so the choice never
// changes results.
int64_t row_block(int64_t outer, int64_t inner) {
  const int64_t want_blocks = (2 * get_num_threads() + outer - 1) / outer;
  const int64_t b = (inner + want_blocks - 1) / want_blocks;
  return std::clamp<int64_t>((b + 15) / 16 * 16, 64, 4096);
}

struct Plan {
  // Kept dims, outer to inner: size, input and output byte strides.
  DimVector k_size, k_in, k_out;
  // Reduced dims, outer to inner: size, input byte stride.
  DimVector r_size, r_in;
  int64_t num_out = 1, num_red = 1;
};

Plan make_plan(const Tensor& in, const Tensor& out) {
  KILN_CHECK(in.dim() == out.dim(), "reduce: output rank ", out.dim(), " != input rank ", in.dim());
  Plan p;
  const int64_t ei = static_cast<int64_t>(in.element_size()), eo = static_cast<int64_t>(out.element_size());
  struct RDim {
    int64_t size, stride;
  };
  std::vector<RDim> red;
  for (int64_t d = 0; d < in.dim(); ++d) {
    const int64_t n = in.size(d);
    const bool reduced = out.size(d) == 1 && n != 1;
    KILN_CHECK(reduced || out.size(d) == n, "reduce: output shape ", out.sizes(), " does not fit input shape ",
               in.sizes());
    if (n == 1) continue;
    if (reduced) {
      red.push_back({n, in.stride(d) * ei});
      continue;
    }
    const int64_t si = in.stride(d) * ei, so = out.stride(d) * eo;
    const size_t m = p.k_size.size();
    if (m > 0 && p.k_in[m - 1] == si * n && p.k_out[m - 1] == so * n) {
      p.k_size[m - 1] *= n;
      p.k_in[m - 1] = si;
      p.k_out[m - 1] = so;
    } else {
      p.k_size.push_back(n);
      p.k_in.push_back(si);
      p.k_out.push_back(so);
    }
  }
  // Reduction order is free, so walk the reduced dims largest stride first.
  std::stable_sort(red.begin(), red.end(), [](const RDim& a, const RDim& b) { return a.stride > b.stride; });
  for (const RDim& r : red) {
    const size_t m = p.r_size.size();
    if (m > 0 && p.r_in[m - 1] == r.stride * r.size) {
      p.r_size[m - 1] *= r.size;
      p.r_in[m - 1] = r.stride;
    } else {
      p.r_size.push_back(r.size);
      p.r_in.push_back(r.stride);
    }
  }
  if (p.r_size.empty()) {  // nothing reduced: each output sees one element
    p.r_size.push_back(1);
    p.r_in.push_back(ei);
  }
  for (int64_t s : p.k_size) p.num_out *= s;
  for (int64_t s : p.r_size) p.num_red *= s;
  return p;
}

// ---- the ops: identity, combine, a strided run, a row update ----

// A contiguous run of Half reduced by converting blocks to float and handing
// them to FloatOp (the same op on compute_t), whose loops vectorise.
template <typename FloatOp, typename A, typename Combine>
A staged(const char* p, int64_t n, A acc, Combine combine) {
  const Half* x = reinterpret_cast<const Half*>(p);
  float buf[kStage];
  for (int64_t b = 0; b < n; b += kStage) {
    const int64_t m = std::min(kStage, n - b);
    load_block(x + b, buf, m);
    acc = combine(acc, FloatOp::run(reinterpret_cast<const char*>(buf), sizeof(float), m));
  }
  return acc;
}

// Sum of a contiguous float or double run, in double. One accumulator (or
// double lanes for float) would cap the loop at one add latency per vector
// and halve its width; instead 64 (float) or 32 (double) independent partial
// sums in T vectorise and pipeline. The run is read as four streams, its
// quarters side by side, each feeding a quarter of the lanes: one thread
// reading one stream gets ~10 GB/s here, four get ~40% more. Float lanes
// only ever add up 16 values before being flushed into double lanes, so the
// error stays a few float roundings of a short sum. The order of every
// addition is fixed by the source and by n (never by the vectoriser, the
// alignment or the threads); the lanes fold as a tree at the end.
template <typename T>
double sum_run(const T* x, int64_t n) {
  constexpr int kStreams = 4, kWidth = 64 / sizeof(T), kLanes = kStreams * kWidth;
  constexpr int64_t kBlock = 16 * kWidth;  // per stream between flushes
  const int64_t q = n / kLanes * kWidth;   // each stream's length
  // The rest (all of a short run): eight double lanes, so that short rows
  // (many outputs of a few elements) are not one add latency per element.
  double part[8] = {}, tail = 0;
  int64_t i = kStreams * q;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += static_cast<double>(x[i + j]);
  for (; i < n; ++i) tail += static_cast<double>(x[i]);
  tail += ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  if (q == 0) return tail;
  double wide[kLanes] = {};
  for (int64_t b = 0; b < q; b += kBlock) {
    const int64_t m = std::min(kBlock, q - b);
    T lane[kLanes] = {};
    for (int64_t i = 0; i < m; i += kWidth)
      for (int s = 0; s < kStreams; ++s)
        for (int j = 0; j < kWidth; ++j) lane[s * kWidth + j] += x[s * q + b + i + j];
    for (int j = 0; j < kLanes; ++j) wide[j] += static_cast<double>(lane[j]);
  }
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) wide[j] += wide[j + w];
  return wide[0] + tail;
}

template <typename T, typename A>
struct SumOp {
  static A init() { return A(0); }
  static A combine(A a, A b) { return a + b; }
  static A run(const char* p, int64_t s, int64_t n) {
    A acc = 0;
    if constexpr (kStaged<T>) {
      if (s == sizeof(T)) return staged<SumOp<compute_t<T>, A>>(p, n, acc, combine);
    }
    if constexpr ((std::is_same_v<T, float> || std::is_same_v<T, double>) && std::is_same_v<A, double>) {
      if (s == sizeof(T)) return sum_run(reinterpret_cast<const T*>(p), n);
    }
    if (s == sizeof(T)) {
      const T* x = reinterpret_cast<const T*>(p);
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < n; ++i) acc += static_cast<A>(load(x[i]));
    } else {
      for (int64_t i = 0; i < n; ++i) acc += static_cast<A>(load(*reinterpret_cast<const T*>(p + i * s)));
    }
    return acc;
  }
  static void row(A* acc, const T* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) acc[i] += static_cast<A>(load(x[i]));
  }
  // Rows taken kRowBatch at a time (see reduce_typed): float rows are added
  // as a pairwise tree in float, one rounding per level, and only the batch
  // sum goes into the double accumulators, which cuts their load/store and
  // conversion traffic eightfold and keeps the vectors full width.
  static constexpr int kRowBatch =
      (std::is_same_v<T, float> || std::is_same_v<T, double>) && std::is_same_v<A, double> ? 8 : 1;
  static void rows(A* __restrict acc, const T* const* x, int64_t n) {
    const T* __restrict x0 = x[0];
    const T* __restrict x1 = x[1];
    const T* __restrict x2 = x[2];
    const T* __restrict x3 = x[3];
    const T* __restrict x4 = x[4];
    const T* __restrict x5 = x[5];
    const T* __restrict x6 = x[6];
    const T* __restrict x7 = x[7];
    for (int64_t i = 0; i < n; ++i) {
      const T s = ((x0[i] + x1[i]) + (x2[i] + x3[i])) + ((x4[i] + x5[i]) + (x6[i] + x7[i]));
      acc[i] += static_cast<A>(s);
    }
  }
};

template <typename A>
inline A mul_wrapping(A a, A b) {
  if constexpr (std::is_integral_v<A>) {
    return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  } else {
    return a * b;
  }
}

template <typename T, typename A>
struct ProdOp {
  static A init() { return A(1); }
  static A combine(A a, A b) { return mul_wrapping(a, b); }
  static A run(const char* p, int64_t s, int64_t n) {
    A acc = 1;
    for (int64_t i = 0; i < n; ++i) acc = mul_wrapping(acc, static_cast<A>(load(*reinterpret_cast<const T*>(p + i * s))));
    return acc;
  }
  static void row(A* acc, const T* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) acc[i] = mul_wrapping(acc[i], static_cast<A>(load(x[i])));
  }
};

// Max (IsMax) or min; NaN wins, as torch.
template <typename T, bool IsMax>
struct ExtremeOp {
  using A = compute_t<T>;
  static A init() {
    if constexpr (std::is_same_v<A, bool>) {
      return !IsMax;
    } else if constexpr (std::numeric_limits<A>::has_infinity) {
      return IsMax ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::infinity();
    } else {
      return IsMax ? std::numeric_limits<A>::lowest() : std::numeric_limits<A>::max();
    }
  }
  static A pick(A a, A b) {
    if constexpr (IsMax) {
      return b > a ? b : a;
    } else {
      return b < a ? b : a;
    }
  }
  static A combine(A a, A b) { return is_nan(a) ? a : is_nan(b) ? b : pick(a, b); }
  static A run(const char* p, int64_t s, int64_t n) {
    A m = init();
    if constexpr (kStaged<T>) {
      if (s == sizeof(T)) return staged<ExtremeOp<A, IsMax>>(p, n, m, combine);
    }
    if (s == sizeof(T)) {
      const T* x = reinterpret_cast<const T*>(p);
      if constexpr (std::is_floating_point_v<A> && std::is_same_v<T, A>) {
        // Vectorised: the extreme ignoring NaN, plus whether a NaN was seen.
        int nan = 0;
        if constexpr (IsMax) {
#pragma omp simd reduction(max : m) reduction(| : nan)
          for (int64_t i = 0; i < n; ++i) {
            m = x[i] > m ? x[i] : m;
            nan |= x[i] != x[i];
          }
        } else {
#pragma omp simd reduction(min : m) reduction(| : nan)
          for (int64_t i = 0; i < n; ++i) {
            m = x[i] < m ? x[i] : m;
            nan |= x[i] != x[i];
          }
        }
        return nan ? std::numeric_limits<A>::quiet_NaN() : m;
      } else if constexpr (std::is_integral_v<A> && !std::is_same_v<A, bool>) {
        for (int64_t i = 0; i < n; ++i) m = pick(m, x[i]);
        return m;
      }
    }
    for (int64_t i = 0; i < n; ++i) m = combine(m, load(*reinterpret_cast<const T*>(p + i * s)));
    return m;
  }
  static void row(A* acc, const T* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) acc[i] = combine(acc[i], load(x[i]));
  }
};

template <typename T, bool IsAll>
struct LogicalOp {
  using A = bool;
  static A init() { return IsAll; }
  static A combine(A a, A b) { return IsAll ? (a && b) : (a || b); }
  static A run(const char* p, int64_t s, int64_t n) {
    // Stops at the first element that decides the answer.
    for (int64_t i = 0; i < n; ++i) {
      const bool v = load(*reinterpret_cast<const T*>(p + i * s)) != compute_t<T>(0);
      if (v != IsAll) return !IsAll;
    }
    return IsAll;
  }
  static void row(A* acc, const T* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) acc[i] = combine(acc[i], load(x[i]) != compute_t<T>(0));
  }
};

// How many input rows Op::rows takes at once in the row strategy (1: none, Op::row only).
template <typename Op>
constexpr int kRowBatch = [] {
  if constexpr (requires { Op::kRowBatch; }) {
    return Op::kRowBatch;
  } else {
    return 1;
  }
}();

// Reduces reduced-space elements [begin, end) starting from input byte offset `base`.
template <typename Op, typename A>
A reduce_range(const char* base, const Plan& p, int64_t begin, int64_t end) {
  const int64_t nr = static_cast<int64_t>(p.r_size.size());
  const int64_t inner_n = p.r_size[nr - 1], inner_s = p.r_in[nr - 1];
  DimWalker<1> outer(p.r_size, {&p.r_in});
  outer.seek(begin);
  A acc = Op::init();
  int64_t pos = begin;
  while (pos < end) {
    const int64_t i0 = outer.idx[nr - 1];
    const int64_t n = std::min(inner_n - i0, end - pos);
    acc = Op::combine(acc, Op::run(base + outer.off[0], inner_s, n));
    pos += n;
    // Jump to the start of the next inner run.
    outer.off[0] += (inner_n - 1 - outer.idx[nr - 1]) * inner_s;
    outer.idx[nr - 1] = inner_n - 1;
    outer.next();
  }
  return acc;
}

template <typename Op, typename T, typename O>
void reduce_typed(const Tensor& in, const Tensor& out) {
  using A = decltype(Op::init());
  const Plan p = make_plan(in, out);
  if (p.num_out == 0) return;
  const char* src = static_cast<const char*>(in.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  const int64_t nr = static_cast<int64_t>(p.r_size.size()), nk = static_cast<int64_t>(p.k_size.size());

  if (p.num_red == 0) {  // empty reduction: every output is the identity
    DimWalker<1> w(p.k_size, {&p.k_out});
    w.seek(0);
    for (int64_t o = 0; o < p.num_out; ++o, w.next()) *reinterpret_cast<O*>(dst + w.off[0]) = store<O>(Op::init());
    return;
  }

  if (p.num_out == 1 && p.num_red > kChunk) {
    const int64_t chunks = (p.num_red + kChunk - 1) / kChunk;
    std::unique_ptr<A[]> partial(new A[chunks]);  // not vector: threads write neighbouring bools
    parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        partial[c] = reduce_range<Op, A>(src, p, c * kChunk, std::min(p.num_red, (c + 1) * kChunk));
    });
    A acc = Op::init();
    for (int64_t c = 0; c < chunks; ++c) acc = Op::combine(acc, partial[c]);
    *reinterpret_cast<O*>(dst) = store<O>(acc);
    return;
  }

  const bool inner_contiguous = p.r_in[nr - 1] == static_cast<int64_t>(sizeof(T)) && p.r_size[nr - 1] > 1;
  if (!inner_contiguous && nk > 0 && p.k_in[nk - 1] == static_cast<int64_t>(sizeof(T))) {
    // Row strategy: outputs along the contiguous kept dim accumulate together.
    const int64_t inner = p.k_size[nk - 1], outer = p.num_out / inner;
    const int64_t block = row_block(outer, inner), blocks = (inner + block - 1) / block;
    const int64_t in_step = p.k_in[nk - 1], out_step = p.k_out[nk - 1];
    const DimVector os(p.k_size.data(), nk - 1), oin(p.k_in.data(), nk - 1), oout(p.k_out.data(), nk - 1);
    const int64_t grain = std::max<int64_t>(1, kParallelGrain / (p.num_red * block));
    parallel_for(outer * blocks, grain, [&](int64_t i0, int64_t i1) {
      std::unique_ptr<A[]> acc_buf(new A[block]);  // not vector: A may be bool
      A* acc = acc_buf.get();
      DimWalker<2> ow(os, {&oin, &oout});
      DimWalker<1> rw(p.r_size, {&p.r_in});
      for (int64_t item = i0; item < i1; ++item) {
        ow.seek(item / blocks);
        const int64_t j0 = (item % blocks) * block, len = std::min(block, inner - j0);
        std::fill(acc, acc + len, Op::init());
        const char* row0 = src + ow.off[0] + j0 * in_step;
        rw.seek(0);
        int64_t r = 0;
        // Batches start at row 0 whatever the block or thread, so each
        // output's order of additions is fixed.
        if constexpr (kRowBatch<Op> > 1) {
          const T* rows[kRowBatch<Op>];
          for (; r + kRowBatch<Op> <= p.num_red; r += kRowBatch<Op>) {
            for (int k = 0; k < kRowBatch<Op>; ++k, rw.next()) rows[k] = reinterpret_cast<const T*>(row0 + rw.off[0]);
            Op::rows(acc, rows, len);
          }
        }
        for (; r < p.num_red; ++r, rw.next()) Op::row(acc, reinterpret_cast<const T*>(row0 + rw.off[0]), len);
        char* o = dst + ow.off[1] + j0 * out_step;
        for (int64_t j = 0; j < len; ++j) *reinterpret_cast<O*>(o + j * out_step) = store<O>(acc[j]);
      }
    });
    return;
  }

  // Output strategy: each output reduces its own (strided or contiguous) range.
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / p.num_red);
  parallel_for(p.num_out, grain, [&](int64_t o0, int64_t o1) {
    DimWalker<2> w(p.k_size, {&p.k_in, &p.k_out});
    w.seek(o0);
    for (int64_t o = o0; o < o1; ++o, w.next())
      *reinterpret_cast<O*>(dst + w.off[1]) = store<O>(reduce_range<Op, A>(src + w.off[0], p, 0, p.num_red));
  });
}

// Sum and prod may write a wider dtype than they read (int -> int64, half -> float).
template <template <typename, typename> class Op, typename T>
void reduce_arith(const Tensor& in, const Tensor& out, const char* name) {
  auto go = [&]<typename O>() {
    using A = std::conditional_t<std::is_floating_point_v<compute_t<O>>, double, int64_t>;
    reduce_typed<Op<T, A>, T, O>(in, out);
  };
  const DType od = out.dtype();
  if (od == dtype_v<T>) return go.template operator()<T>();
  switch (od) {
    case kInt64: return go.template operator()<int64_t>();
    case kFloat32: return go.template operator()<float>();
    case kFloat64: return go.template operator()<double>();
    default: KILN_ERROR(name, ": cannot reduce ", dtype_name(in.dtype()), " into ", dtype_name(od));
  }
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& in, const Tensor& out) {
  static const char* names[] = {"sum", "prod", "max", "min", "all", "any"};
  const char* name = names[static_cast<int>(op)];
  dispatch_all(in.dtype(), name, [&]<typename T>() {
    switch (op) {
      case ReduceOp::Sum: return reduce_arith<SumOp, T>(in, out, name);
      case ReduceOp::Prod: return reduce_arith<ProdOp, T>(in, out, name);
      case ReduceOp::Max:
      case ReduceOp::Min:
        KILN_CHECK(out.dtype() == in.dtype(), name, ": output dtype ", dtype_name(out.dtype()),
                   " must equal the input dtype ", dtype_name(in.dtype()));
        if (op == ReduceOp::Max) return reduce_typed<ExtremeOp<T, true>, T, T>(in, out);
        return reduce_typed<ExtremeOp<T, false>, T, T>(in, out);
      case ReduceOp::All:
      case ReduceOp::Any:
        KILN_CHECK(out.dtype() == kBool, name, ": output must be bool, got ", dtype_name(out.dtype()));
        if (op == ReduceOp::All) return reduce_typed<LogicalOp<T, true>, T, bool>(in, out);
        return reduce_typed<LogicalOp<T, false>, T, bool>(in, out);
    }
  });
}

namespace {

// Whether v replaces the current best: the first NaN wins and then stays;
// ties keep the earlier index.
template <typename C, bool IsMax>
inline bool better(C v, C best) {
  if (is_nan(best)) return false;
  if (is_nan(v)) return true;
  if constexpr (IsMax) {
    return v > best;
  } else {
    return v < best;
  }
}

template <typename T, bool IsMax>
void arg_reduce_typed(const Tensor& in, int64_t dim, const Tensor& values, const Tensor& indices) {
  using C = compute_t<T>;
  const bool has_values = values.defined();
  const int64_t len = in.dim() == 0 ? 1 : in.size(dim);
  const int64_t step = in.dim() == 0 ? 0 : in.stride(dim) * static_cast<int64_t>(sizeof(T));
  KILN_CHECK(len > 0, "arg_reduce: cannot reduce over an empty dim of shape ", in.sizes());
  // Kept dims (every dim but `dim`, size-1 dims dropped): input, index and value strides.
  DimVector size, s_in, s_idx, s_val;
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (d == dim || in.size(d) == 1) continue;
    size.push_back(in.size(d));
    s_in.push_back(in.stride(d) * static_cast<int64_t>(sizeof(T)));
    s_idx.push_back(indices.stride(d) * 8);
    s_val.push_back(has_values ? values.stride(d) * static_cast<int64_t>(sizeof(T)) : 0);
  }
  const int64_t num_out = indices.numel();
  const char* src = static_cast<const char*>(in.data_ptr());
  char* idx_dst = static_cast<char*>(indices.data_ptr());
  char* val_dst = has_values ? static_cast<char*>(values.data_ptr()) : nullptr;
  const int64_t nk = static_cast<int64_t>(size.size());

  if (step != static_cast<int64_t>(sizeof(T)) && nk > 0 && s_in[nk - 1] == static_cast<int64_t>(sizeof(T))) {
    // Row strategy: a block of neighbouring outputs scans the rows together.
    const int64_t inner = size[nk - 1], outer = num_out / inner;
    const int64_t block = row_block(outer, inner), blocks = (inner + block - 1) / block;
    const DimVector os(size.data(), nk - 1), oin(s_in.data(), nk - 1);
    const DimVector oidx(s_idx.data(), nk - 1), oval(s_val.data(), nk - 1);
    parallel_for(outer * blocks, std::max<int64_t>(1, kParallelGrain / (len * block)), [&](int64_t i0, int64_t i1) {
      std::unique_ptr<C[]> best_buf(new C[block]);  // not vector: C may be bool
      std::unique_ptr<int64_t[]> arg_buf(new int64_t[block]);
      C* best = best_buf.get();
      int64_t* arg = arg_buf.get();
      DimWalker<3> w(os, {&oin, &oidx, &oval});
      for (int64_t item = i0; item < i1; ++item) {
        w.seek(item / blocks);
        const int64_t j0 = (item % blocks) * block, n = std::min(block, inner - j0);
        const T* row = reinterpret_cast<const T*>(src + w.off[0]) + j0;
        for (int64_t j = 0; j < n; ++j) {
          best[j] = load(row[j]);
          arg[j] = 0;
        }
        for (int64_t r = 1; r < len; ++r) {
          row = reinterpret_cast<const T*>(reinterpret_cast<const char*>(row) + step);
          for (int64_t j = 0; j < n; ++j) {
            const C v = load(row[j]);
            if (better<C, IsMax>(v, best[j])) {
              best[j] = v;
              arg[j] = r;
            }
          }
        }
        for (int64_t j = 0; j < n; ++j) {
          *reinterpret_cast<int64_t*>(idx_dst + w.off[1] + (j0 + j) * s_idx[nk - 1]) = arg[j];
          if (has_values) *reinterpret_cast<T*>(val_dst + w.off[2] + (j0 + j) * s_val[nk - 1]) = store<T>(best[j]);
        }
      }
    });
    return;
  }

  const bool fast_scan = std::is_same_v<T, C> && !std::is_same_v<T, bool> && step == static_cast<int64_t>(sizeof(T));
  parallel_for(num_out, std::max<int64_t>(1, kParallelGrain / len), [&](int64_t o0, int64_t o1) {
    DimWalker<3> w(size, {&s_in, &s_idx, &s_val});
    w.seek(o0);
    for (int64_t o = o0; o < o1; ++o, w.next()) {
      const char* p = src + w.off[0];
      C best;
      int64_t arg = 0;
      if (fast_scan) {
        // The extreme by a vectorised pass, then the first index holding it.
        const T* x = reinterpret_cast<const T*>(p);
        best = ExtremeOp<T, IsMax>::run(p, step, len);
        if (is_nan(best)) {
          while (!is_nan(x[arg])) ++arg;
        } else {
          while (x[arg] != best) ++arg;
        }
      } else {
        best = load(*reinterpret_cast<const T*>(p));
        for (int64_t r = 1; r < len && !is_nan(best); ++r) {
          const C v = load(*reinterpret_cast<const T*>(p + r * step));
          if (better<C, IsMax>(v, best)) {
            best = v;
            arg = r;
          }
        }
      }
      *reinterpret_cast<int64_t*>(idx_dst + w.off[1]) = arg;
      if (has_values) *reinterpret_cast<T*>(val_dst + w.off[2]) = store<T>(best);
    }
  });
}

}  // namespace

void CpuBackend::arg_reduce(ArgReduceOp op, const Tensor& in, int64_t dim, const Tensor& values,
                            const Tensor& indices) {
  const char* name = op == ArgReduceOp::Max ? "argmax" : "argmin";
  KILN_CHECK(indices.dtype() == kInt64, name, ": indices must be int64");
  KILN_CHECK(!values.defined() || values.dtype() == in.dtype(), name, ": values must have the input's dtype");
  if (indices.numel() == 0) return;
  dispatch_all(in.dtype(), name, [&]<typename T>() {
    if (op == ArgReduceOp::Max) {
      arg_reduce_typed<T, true>(in, dim, values, indices);
    } else {
      arg_reduce_typed<T, false>(in, dim, values, indices);
    }
  });
}

}  // namespace kiln::cpu
