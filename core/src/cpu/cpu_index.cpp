// Index-driven kernels: index_select, gather, scatter(_add), index_add, flip.
//
// Each is one StridedLoop over the output (or index) shape, with the indexed
// tensor "restrided": its stride along `dim` set to 0 so the loop hands the
// body a pointer to the start of the indexed line, to which the body adds
// index * stride. Indices are validated before any thread starts, so an out
// of range index is a kiln::Error, never a stray write (and never an
// exception thrown inside an OpenMP region).
#include <atomic>
#include <cstring>
#include <mutex>

#include "cpu/cpu_backend.h"
#include "cpu/strided_loop.h"
#include "kiln/core/index_views.h"

namespace kiln::cpu {

namespace {

using index_views::dispatch_bits;
using index_views::restride;
using index_views::with;

// Throws naming the first index (in row-major order) outside [0, size).
void check_indices(const char* op, const Tensor& index, int64_t dim, int64_t size) {
  KILN_CHECK(index.dtype() == kInt64, op, " (CPU kernel): index must be int64, got ", dtype_name(index.dtype()));
  std::atomic<bool> bad{false};
  std::mutex m;
  int64_t bad_value = 0;
  StridedLoop<1> loop({&index});
  loop.run([&](char* const* p, const int64_t* s, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = *reinterpret_cast<const int64_t*>(p[0] + i * s[0]);
      if (v < 0 || v >= size) {
        std::lock_guard<std::mutex> lock(m);
        if (!bad.exchange(true)) bad_value = v;
        return;
      }
    }
  });
  KILN_CHECK(!bad.load(), op, "(): index ", bad_value, " is out of bounds for dimension ", dim, " with size ", size);
}

// Calls body(i, begin, end) for every i in [0, n) over base elements
// [begin, end) of `loop`. Threads own disjoint base ranges and walk all i in
// order, so writes that differ only in i never race and land in i order.
template <size_t N, typename Body>
void for_each_line(const StridedLoop<N>& loop, int64_t n, Body&& body) {
  const int64_t base = loop.numel();
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1));
  parallel_for(base, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = 0; i < n; ++i) body(i, begin, end);
  });
}

}  // namespace

void CpuBackend::index_select(const Tensor& in, int64_t dim, const Tensor& index, const Tensor& out) {
  KILN_CHECK(index.dim() == 1 && index.is_contiguous(), "index_select (CPU kernel): index must be contiguous 1-D");
  if (out.numel() == 0) return;
  check_indices("index_select", index, dim, in.size(dim));
  const Tensor src = restride(in, out.sizes(), with(in.strides(), dim, 0));
  DimVector idx_strides(out.dim(), 0);
  idx_strides[dim] = 1;
  const Tensor idx = restride(index, out.sizes(), idx_strides);
  StridedLoop<3> loop({&out, &src, &idx});
  const int64_t step = in.stride(dim) * static_cast<int64_t>(in.element_size());
  dispatch_bits(in.element_size(), [&]<typename T>() {
    loop.run([step](char* const* p, const int64_t* s, int64_t n) {
      if (s[2] == 0 && s[0] == sizeof(T) && s[1] == sizeof(T)) {
        // One index for the whole run: a contiguous row copy (embedding lookups).
        std::memcpy(p[0], p[1] + *reinterpret_cast<const int64_t*>(p[2]) * step, n * sizeof(T));
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = *reinterpret_cast<const int64_t*>(p[2] + i * s[2]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const T*>(p[1] + i * s[1] + k * step);
      }
    });
  });
}

void CpuBackend::gather(const Tensor& in, int64_t dim, const Tensor& index, const Tensor& out) {
  KILN_CHECK(index.sizes().equals(out.sizes()), "gather (CPU kernel): index ", index.sizes(), " and out ",
             out.sizes(), " differ");
  if (out.numel() == 0) return;
  check_indices("gather", index, dim, in.size(dim));
  const Tensor src = restride(in, out.sizes(), with(in.strides(), dim, 0));
  StridedLoop<3> loop({&out, &src, &index});
  const int64_t step = in.stride(dim) * static_cast<int64_t>(in.element_size());
  dispatch_bits(in.element_size(), [&]<typename T>() {
    loop.run([step](char* const* p, const int64_t* s, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = *reinterpret_cast<const int64_t*>(p[2] + i * s[2]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const T*>(p[1] + i * s[1] + k * step);
      }
    });
  });
}

void CpuBackend::scatter(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                         ScatterReduce reduce) {
  KILN_CHECK(src.dtype() == out.dtype(), "scatter (CPU kernel): src dtype ", dtype_name(src.dtype()),
             " differs from self dtype ", dtype_name(out.dtype()));
  if (index.numel() == 0) return;
  check_indices("scatter", index, dim, out.size(dim));
  // Base elements: index's shape with `dim` collapsed; the body walks dim.
  const DimVector base = with(index.sizes(), dim, 1);
  const Tensor dst = restride(out, base, with(out.strides(), dim, 0));
  const Tensor idx = restride(index, base, index.strides());
  const Tensor val = restride(src, base, src.strides());
  StridedLoop<3> loop({&dst, &idx, &val});
  const int64_t n = index.size(dim);
  const int64_t out_step = out.stride(dim) * static_cast<int64_t>(out.element_size());
  const int64_t idx_step = index.stride(dim) * 8;
  const int64_t src_step = src.stride(dim) * static_cast<int64_t>(src.element_size());
  auto run = [&]<typename T, typename Op>(Op op) {
    for_each_line(loop, n, [&](int64_t i, int64_t begin, int64_t end) {
      auto body = [&](char* const* p, const int64_t* s, int64_t len) {
        const char* ip = p[1] + i * idx_step;
        const char* sp = p[2] + i * src_step;
        for (int64_t j = 0; j < len; ++j) {
          const int64_t k = *reinterpret_cast<const int64_t*>(ip + j * s[1]);
          op(*reinterpret_cast<T*>(p[0] + j * s[0] + k * out_step), *reinterpret_cast<const T*>(sp + j * s[2]));
        }
      };
      loop.run_range(begin, end, body);
    });
  };
  if (reduce == ScatterReduce::None) {
    dispatch_bits(out.element_size(), [&]<typename T>() { run.template operator()<T>([](T& d, T v) { d = v; }); });
  } else {
    dispatch_all(out.dtype(), "scatter_add", [&]<typename T>() {
      using C = compute_t<T>;
      run.template operator()<T>([](T& d, T v) {
        if constexpr (std::is_same_v<T, bool>) {
          d = d || v;
        } else {
          d = static_cast<T>(static_cast<C>(d) + static_cast<C>(v));
        }
      });
    });
  }
}

void CpuBackend::index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                           const Scalar& alpha) {
  KILN_CHECK(index.dim() == 1 && index.is_contiguous(), "index_add (CPU kernel): index must be contiguous 1-D");
  KILN_CHECK(src.dtype() == out.dtype(), "index_add (CPU kernel): source dtype ", dtype_name(src.dtype()),
             " differs from self dtype ", dtype_name(out.dtype()));
  if (src.numel() == 0) return;
  check_indices("index_add", index, dim, out.size(dim));
  const DimVector base = with(src.sizes(), dim, 1);
  const Tensor dst = restride(out, base, with(out.strides(), dim, 0));
  const Tensor val = restride(src, base, src.strides());
  StridedLoop<2> loop({&dst, &val});
  const int64_t n = src.size(dim);
  const int64_t* idx = index.data_ptr<int64_t>();
  const int64_t out_step = out.stride(dim) * static_cast<int64_t>(out.element_size());
  const int64_t src_step = src.stride(dim) * static_cast<int64_t>(src.element_size());
  dispatch_all(out.dtype(), "index_add", [&]<typename T>() {
    using C = compute_t<T>;
    const C a = alpha.to<C>();
    for_each_line(loop, n, [&](int64_t i, int64_t begin, int64_t end) {
      const int64_t o = idx[i] * out_step, sofs = i * src_step;
      auto body = [&](char* const* p, const int64_t* s, int64_t len) {
        char* d = p[0] + o;
        const char* v = p[1] + sofs;
        if (s[0] == sizeof(T) && s[1] == sizeof(T)) {
          T* dt = reinterpret_cast<T*>(d);
          const T* vt = reinterpret_cast<const T*>(v);
          for (int64_t j = 0; j < len; ++j) dt[j] = static_cast<T>(static_cast<C>(dt[j]) + a * static_cast<C>(vt[j]));
        } else {
          for (int64_t j = 0; j < len; ++j) {
            T& x = *reinterpret_cast<T*>(d + j * s[0]);
            x = static_cast<T>(static_cast<C>(x) + a * static_cast<C>(*reinterpret_cast<const T*>(v + j * s[1])));
          }
        }
      };
      loop.run_range(begin, end, body);
    });
  });
}

void CpuBackend::flip(const Tensor& in, IntArrayRef dims, const Tensor& out) {
  // Read `in` through a view walking the flipped dims backwards, then copy.
  DimVector strides = in.strides().dims();
  int64_t offset = in.storage_offset();
  for (int64_t d : dims) {
    if (in.size(d) == 0) return;
    offset += (in.size(d) - 1) * strides[d];
    strides[d] = -strides[d];
  }
  copy(restride(in, in.sizes(), strides, offset), out, false);
}

}  // namespace kiln::cpu
