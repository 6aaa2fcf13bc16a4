#pragma once
// Loops over the [H, W] planes of contiguous [N, C, H, W] tensors, shared by
// the pooling and resize kernels. Forward kernels split output rows of all
// planes across threads; backward kernels scatter into input planes, so each
// plane belongs to one thread and accumulates without atomics.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "cpu/cpu_loops.h"

namespace kiln::cpu {

// N * C of a 4-D tensor.
inline int64_t plane_count(const Tensor& t) { return t.size(0) * t.size(1); }

// body(row_begin, row_end) over the `rows` output rows (plane * Ho + oh),
// each costing about `row_work` element visits.
template <typename Body>
void for_output_rows(int64_t rows, int64_t row_work, Body&& body) {
  parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(row_work, 1)), body);
}

// For each plane p of grad_in (plane_size elements each), zeroes an
// accumulator of compute_t<T>, calls scatter(p, acc) and stores it into the
// plane. 16-bit floats accumulate in a float buffer and are rounded once.
template <typename T, typename F>
void scatter_planes(T* grad_in, int64_t planes, int64_t plane_size, int64_t plane_work, F&& scatter) {
  using C = compute_t<T>;
  constexpr bool direct = std::is_same_v<T, C>;
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(plane_work + plane_size, 1));
  parallel_for(planes, grain, [&](int64_t b, int64_t e) {
    std::vector<C> buf(direct ? 0 : plane_size);
    for (int64_t p = b; p < e; ++p) {
      T* out = grad_in + p * plane_size;
      C* acc;
      if constexpr (direct) {
        acc = out;
      } else {
        acc = buf.data();
      }
      std::fill(acc, acc + plane_size, C(0));
      scatter(p, acc);
      if constexpr (!direct) store_block(acc, out, plane_size);
    }
  });
}

}  // namespace kiln::cpu
