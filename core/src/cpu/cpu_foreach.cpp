// Multi-tensor norms and in-place scaling on the CPU: Backend::foreach_norm,
// foreach_mul and amp_unscale (contracts in core/include/kiln/core/backend.h).
//
// A list is cut into work items, each tensor into chunks of kChunk elements
// (a small tensor is one item), and the items run in parallel: many small
// gradients spread over the threads as well as one big one does. A tensor's
// norm combines its chunks' partial results in chunk order, so the result
// never depends on the number of threads.
//
// Elements are visited in memory order, a tensor's dims sorted by stride
// first: a norm and an in-place scale do not care about the order, and that
// way a transposed tensor is one contiguous run and a slice contiguous rows.
//
// Accuracy: as kiln::native::norm (sqrt(sum(x * x)) with x in the stat
// dtype), each |x| or x * x is computed in the compute type (float for
// f32/f16/bf16, so a square overflows to inf exactly where torch's does) and
// added in double, over 32 independent lanes folded as a tree: vectorised,
// and a chunk's error is that of ~1K-term sums. inf and NaN need no special
// case in the sums (terms are never negative, so inf - inf cannot occur);
// the max carries NaN through explicitly.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_loops.h"
#include "kiln/core/native/view.h"

namespace kiln::cpu {

namespace {

constexpr int64_t kChunk = 1 << 15;  // elements per work item
constexpr int kLanes = 32;

// ---- the list cut into work items ----

// t with its dims reordered outermost = largest stride (a view).
Tensor memory_order(const Tensor& t) {
  if (t.is_contiguous()) return t;
  DimVector order(static_cast<size_t>(t.dim()));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return t.stride(a) > t.stride(b); });
  return native::permute(t, order);
}

class ListPlan {
 public:
  struct Item {
    size_t tensor;
    int64_t begin, end;
  };

  explicit ListPlan(const std::vector<Tensor>& tensors) {
    loops_.reserve(tensors.size());
    first_.reserve(tensors.size() + 1);
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Tensor v = memory_order(tensors[i]);
      loops_.emplace_back(std::array<const Tensor*, 1>{&v});
      first_.push_back(items_.size());
      const int64_t n = v.numel();
      total_ += n;
      for (int64_t b = 0; b < n; b += kChunk) items_.push_back({i, b, std::min(n, b + kChunk)});
    }
    first_.push_back(items_.size());
  }

  size_t num_items() const { return items_.size(); }
  // Items of tensor i: [first(i), first(i + 1)).
  size_t first(size_t i) const { return first_[i]; }

  // Calls run(k, body) for every item k: it walks the item's elements as
  // body(char* ptr, int64_t byte_stride, int64_t n) runs. Items are shared
  // among the threads when there is enough work; run must not throw.
  template <typename Run>
  void for_each_item(const Run& run) const {
    const int64_t n = static_cast<int64_t>(items_.size());
    const int threads =
        static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, total_ / kParallelGrain)));
    if (threads <= 1 || omp_in_parallel()) {
      for (int64_t k = 0; k < n; ++k) run_item(k, run);
      return;
    }
    // Dynamic: items range from one element to a whole chunk.
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t k = 0; k < n; ++k) run_item(k, run);
  }

 private:
  template <typename Run>
  void run_item(int64_t k, const Run& run) const {
    const Item& it = items_[static_cast<size_t>(k)];
    const StridedLoop<1>& loop = loops_[it.tensor];
    run(static_cast<size_t>(k), [&](auto&& body) {
      auto runs = [&](char* const* ptr, const int64_t* stride, int64_t m) { body(ptr[0], stride[0], m); };
      loop.run_range(it.begin, it.end, runs);
    });
  }

  std::vector<StridedLoop<1>> loops_;
  std::vector<Item> items_;
  std::vector<size_t> first_;
  int64_t total_ = 0;
};

// ---- norms ----

enum class Norm { L1, L2, Max };

Norm norm_kind(double p) {
  if (p == 1) return Norm::L1;
  if (p == 2) return Norm::L2;
  KILN_CHECK(p == std::numeric_limits<double>::infinity(), "foreach_norm: the backend computes p = 1, 2 or inf, got ",
             p);
  return Norm::Max;
}

// The larger of two |x|, NaN from either side winning (torch's max); for
// combining partials, not in the vectorised loops (see max_terms).
inline double max_nan(double a, double b) { return (b > a || b != b) ? b : a; }

// A work item's running state: kLanes independent lanes, so the loops
// vectorise and pipeline while the order of every addition stays fixed by
// the source (never by the vectoriser or the threads).
template <typename C>
struct Lanes {
  double sum[kLanes] = {};
  C max[kLanes] = {};    // of |x|, NaN aside
  int nan[kLanes] = {};  // saw a NaN: kept apart, as a NaN-propagating select does not vectorise
};

// Calls f(j, v) for the n elements at p (byte stride `stride`), each as a
// C value v with its lane j. A contiguous run is read as four streams, its
// quarters side by side, each feeding four of the lanes: one thread reading
// one stream is ~30% slower here (as cpu_reduce.cpp's sum_run found); the
// rest, and strided runs, go to lane i % kLanes.
constexpr int kStreams = 4, kWidth = kLanes / kStreams;
template <typename E, typename C, typename F>
inline void for_lanes(const char* p, int64_t stride, int64_t n, const F& f) {
  int64_t i = 0;
  if (stride == static_cast<int64_t>(sizeof(E))) {
    const E* x = reinterpret_cast<const E*>(p);
    const int64_t q = n / kLanes * kWidth;  // each stream's length
    for (int64_t k = 0; k < q; k += kWidth)
      for (int s = 0; s < kStreams; ++s)
        for (int j = 0; j < kWidth; ++j) f(s * kWidth + j, static_cast<C>(load(x[s * q + k + j])));
    i = kStreams * q;
  }
  for (; i < n; ++i) f(static_cast<int>(i % kLanes), static_cast<C>(load(*reinterpret_cast<const E*>(p + i * stride))));
}

// Adds |x| (L1) or x * x (L2), each computed in C and then widened, to the
// sum lanes; the lanes are copied to locals so that they stay in registers.
template <Norm K, typename E, typename C>
inline void sum_terms(const char* p, int64_t stride, int64_t n, Lanes<C>& l) {
  double s[kLanes];
  for (int j = 0; j < kLanes; ++j) s[j] = l.sum[j];
  for_lanes<E, C>(p, stride, n, [&](int j, C v) { s[j] += static_cast<double>(K == Norm::L1 ? std::abs(v) : v * v); });
  for (int j = 0; j < kLanes; ++j) l.sum[j] = s[j];
}

// The max of |x| into the max lanes, NaNs flagged apart.
template <typename E, typename C>
inline void max_terms(const char* p, int64_t stride, int64_t n, Lanes<C>& l) {
  C m[kLanes];
  int f[kLanes];
  for (int j = 0; j < kLanes; ++j) {
    m[j] = l.max[j];
    f[j] = l.nan[j];
  }
  for_lanes<E, C>(p, stride, n, [&](int j, C v) {
    const C a = std::abs(v);
    m[j] = a > m[j] ? a : m[j];
    f[j] |= a != a;
  });
  for (int j = 0; j < kLanes; ++j) {
    l.max[j] = m[j];
    l.nan[j] = f[j];
  }
}

template <Norm K, typename E, typename C>
inline void add_run(const char* p, int64_t stride, int64_t n, Lanes<C>& l) {
  if constexpr (K == Norm::Max) {
    max_terms<E>(p, stride, n, l);
  } else {
    sum_terms<K, E>(p, stride, n, l);
  }
}

// One item's partial result: the sum of its terms (the lanes folded as a
// tree), or the max of its |x| (NaN if it saw one).
template <typename T, Norm K, typename Walk>
double norm_item(const Walk& walk) {
  using C = compute_t<T>;
  Lanes<C> l;
  walk([&](char* p, int64_t stride, int64_t n) {
    if (kStaged<T> && stride == static_cast<int64_t>(sizeof(T))) {  // converted a block at a time (cpu_loops.h)
      C buf[kStage];
      const T* x = reinterpret_cast<const T*>(p);
      for (int64_t b = 0; b < n; b += kStage) {
        const int64_t m = std::min(kStage, n - b);
        load_block(x + b, buf, m);
        add_run<K, C>(reinterpret_cast<const char*>(buf), sizeof(C), m, l);
      }
    } else {
      add_run<K, T>(p, stride, n, l);
    }
  });
  if constexpr (K == Norm::Max) {
    double m = 0;
    for (int j = 0; j < kLanes; ++j) {
      if (l.nan[j]) return std::numeric_limits<double>::quiet_NaN();
      m = std::max(m, static_cast<double>(l.max[j]));
    }
    return m;
  } else {
    for (int w = kLanes / 2; w > 0; w /= 2)
      for (int j = 0; j < w; ++j) l.sum[j] += l.sum[j + w];
    return l.sum[0];
  }
}

template <typename T, Norm K>
void norm_list(const ListPlan& plan, size_t count, double* result) {
  std::vector<double> partial(plan.num_items());
  plan.for_each_item([&](size_t k, const auto& walk) { partial[k] = norm_item<T, K>(walk); });
  for (size_t i = 0; i < count; ++i) {
    double r = 0;  // an empty tensor's norm (the native layer rejects inf norms of empty tensors)
    for (size_t k = plan.first(i); k < plan.first(i + 1); ++k) {
      r = K == Norm::Max ? max_nan(r, partial[k]) : r + partial[k];
    }
    result[i] = K == Norm::L2 ? std::sqrt(r) : r;
  }
}

// ---- scaling ----

// x[0, n) *= s in place (x contiguous when stride is sizeof(T)); returns
// whether any element was inf or NaN before scaling (only when Check).
template <typename T, bool Check>
bool scale_run(char* p, int64_t stride, int64_t n, compute_t<T> s) {
  using C = compute_t<T>;
  T* x = reinterpret_cast<T*>(p);
  int bad = 0;
  // v - v is 0 for finite v and NaN for inf or NaN: a branch-free test that vectorises.
  if (stride != static_cast<int64_t>(sizeof(T))) {
    for (int64_t i = 0; i < n; ++i) {
      T* e = reinterpret_cast<T*>(p + i * stride);
      const C v = load(*e);
      if constexpr (Check) bad |= static_cast<int>((v - v) != C(0));
      *e = store<T>(v * s);
    }
  } else if constexpr (kStaged<T>) {
    C buf[kStage];
    for (int64_t b = 0; b < n; b += kStage) {
      const int64_t m = std::min(kStage, n - b);
      load_block(x + b, buf, m);
      for (int64_t i = 0; i < m; ++i) {
        if constexpr (Check) bad |= static_cast<int>((buf[i] - buf[i]) != C(0));
        buf[i] *= s;
      }
      store_block(buf, x + b, m);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const C v = load(x[i]);
      if constexpr (Check) bad |= static_cast<int>((v - v) != C(0));
      x[i] = store<T>(v * s);
    }
  }
  return bad != 0;
}

// Multiplies every tensor by `scale` (converted once from double to the
// compute type, as torch converts a scalar operand); returns whether any
// element was non-finite (only when Check).
template <bool Check>
bool scale_list(const std::vector<Tensor>& tensors, double scale, const char* op) {
  const ListPlan plan(tensors);
  std::vector<uint8_t> bad(plan.num_items(), 0);
  dispatch_floating(tensors[0].dtype(), op, [&]<typename T>() {
    const compute_t<T> s = static_cast<compute_t<T>>(scale);
    plan.for_each_item([&](size_t k, const auto& walk) {
      bool any = false;
      walk([&](char* p, int64_t stride, int64_t n) { any = scale_run<T, Check>(p, stride, n, s) || any; });
      bad[k] = any;
    });
  });
  return std::any_of(bad.begin(), bad.end(), [](uint8_t b) { return b != 0; });
}

void check_list(const std::vector<Tensor>& tensors, const char* op) {
  for (const Tensor& t : tensors) {
    KILN_CHECK(t.dtype() == tensors[0].dtype() && t.device() == tensors[0].device(), op,
               ": the tensors of one backend call must share a device and a dtype, got ", tensors[0].dtype(), " on ",
               tensors[0].device(), " and ", t.dtype(), " on ", t.device());
  }
}

// The value of a 1-element floating tensor.
double scalar_value(const Tensor& t, const char* op) {
  KILN_CHECK(t.numel() == 1, op, ": expected a 1-element scale tensor, got shape ", t.sizes());
  return dispatch_floating(t.dtype(), op, [&]<typename S>() { return static_cast<double>(load(*t.data_ptr<S>())); });
}

}  // namespace

void CpuBackend::foreach_norm(const std::vector<Tensor>& tensors, double p, const Tensor& out) {
  KILN_CHECK(out.is_contiguous() && out.numel() == static_cast<int64_t>(tensors.size()),
             "foreach_norm: out must be contiguous with one element per tensor, got shape ", out.sizes(), " for ",
             tensors.size(), " tensors");
  if (tensors.empty()) return;
  check_list(tensors, "foreach_norm");
  const Norm kind = norm_kind(p);
  const ListPlan plan(tensors);
  std::vector<double> result(tensors.size());
  dispatch_floating(tensors[0].dtype(), "foreach_norm", [&]<typename T>() {
    switch (kind) {
      case Norm::L1: norm_list<T, Norm::L1>(plan, tensors.size(), result.data()); break;
      case Norm::L2: norm_list<T, Norm::L2>(plan, tensors.size(), result.data()); break;
      case Norm::Max: norm_list<T, Norm::Max>(plan, tensors.size(), result.data()); break;
    }
  });
  // Rounded once, from double, into the stat dtype.
  dispatch_floating(out.dtype(), "foreach_norm", [&]<typename S>() {
    S* o = out.data_ptr<S>();
    for (size_t i = 0; i < result.size(); ++i) o[i] = store<S>(result[i]);
  });
}

void CpuBackend::foreach_mul(const std::vector<Tensor>& tensors, const Tensor& scale) {
  if (tensors.empty()) return;
  check_list(tensors, "foreach_mul");
  scale_list<false>(tensors, scalar_value(scale, "foreach_mul"), "foreach_mul");
}

void CpuBackend::amp_unscale(const std::vector<Tensor>& tensors, const Tensor& inv_scale, const Tensor& found_inf) {
  if (tensors.empty()) return;
  check_list(tensors, "amp_unscale");
  KILN_CHECK(inv_scale.dtype() == kFloat32 && found_inf.dtype() == kFloat32 && found_inf.numel() == 1,
             "amp_unscale: inv_scale and found_inf must be 1-element float32 tensors");
  KILN_CHECK(inv_scale.numel() == 1, "amp_unscale: inv_scale must be a 1-element tensor");
  const double inv = static_cast<double>(*inv_scale.data_ptr<float>());
  if (scale_list<true>(tensors, inv, "amp_unscale")) *found_inf.data_ptr<float>() = 1.0f;
}

}  // namespace kiln::cpu
