#pragma once
// The CPU backend's one way to walk several same-shaped strided tensors
// together. Dims are coalesced where every operand is contiguous across them,
// so contiguous and broadcast-scalar operands reach the body as one long run
// the compiler vectorises. Large loops are split across OpenMP threads by
// element range, so the split never depends on the strides.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "kiln/core/parallel.h"
#include "kiln/core/tensor.h"

namespace kiln::cpu {

// Below this many elements a loop runs on the calling thread.
inline constexpr int64_t kParallelGrain = 32768;

template <size_t N>
class StridedLoop {
 public:
  // operands[0] is conventionally the output; all share operands[0]'s shape.
  explicit StridedLoop(const std::array<const Tensor*, N>& operands) {
    const Tensor& first = *operands[0];
    numel_ = first.numel();
    for (size_t k = 0; k < N; ++k) {
      base_[k] = static_cast<char*>(operands[k]->data_ptr());
      elem_[k] = static_cast<int64_t>(operands[k]->element_size());
    }
    // Innermost dim first; drop size-1 dims; merge dim d into d-1 (its outer
    // neighbour) when every operand steps across them evenly.
    int64_t nd = first.dim();
    for (int64_t d = nd - 1; d >= 0; --d) {
      int64_t size = first.size(d);
      if (size == 1) continue;
      std::array<int64_t, N> st;
      for (size_t k = 0; k < N; ++k) st[k] = operands[k]->stride(d) * elem_[k];
      if (ndim_ > 0) {
        bool mergeable = true;
        for (size_t k = 0; k < N; ++k)
          if (st[k] != strides_[ndim_ - 1][k] * sizes_[ndim_ - 1]) mergeable = false;
        if (mergeable) {
          sizes_[ndim_ - 1] *= size;
          continue;
        }
      }
      push_dim(size, st);
    }
    if (ndim_ == 0) {
      std::array<int64_t, N> st{};
      push_dim(1, st);
    }
  }

  int64_t numel() const { return numel_; }

  // body(char* const ptrs[N], const int64_t strides_bytes[N], int64_t n) for
  // each run of the innermost dim.
  template <typename Body>
  void run(Body&& body, int64_t grain = kParallelGrain) const {
    if (numel_ == 0) return;
    int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, numel_ / grain)));
    if (threads <= 1 || omp_in_parallel()) {
      run_range(0, numel_, body);
      return;
    }
#pragma omp parallel num_threads(threads)
    {
      int t = omp_get_thread_num(), nt = omp_get_num_threads();
      int64_t begin = numel_ * t / nt, end = numel_ * (t + 1) / nt;
      run_range(begin, end, body);
    }
  }

  // Elements [begin, end) in row-major order of the (coalesced) shape.
  template <typename Body>
  void run_range(int64_t begin, int64_t end, Body& body) const {
    std::array<int64_t, kMaxDims> idx{};
    int64_t rem = begin;
    for (int64_t d = 0; d < ndim_; ++d) {
      idx[d] = rem % sizes_[d];
      rem /= sizes_[d];
    }
    std::array<char*, N> ptr;
    for (size_t k = 0; k < N; ++k) {
      ptr[k] = base_[k];
      for (int64_t d = 0; d < ndim_; ++d) ptr[k] += idx[d] * strides_[d][k];
    }
    std::array<int64_t, N> inner;
    for (size_t k = 0; k < N; ++k) inner[k] = strides_[0][k];
    int64_t pos = begin;
    while (pos < end) {
      int64_t n = std::min(sizes_[0] - idx[0], end - pos);
      body(ptr.data(), inner.data(), n);
      pos += n;
      if (pos >= end) break;
      // Step to the start of the next run: carry through the outer dims.
      for (size_t k = 0; k < N; ++k) ptr[k] += (sizes_[0] - idx[0]) * strides_[0][k] - sizes_[0] * strides_[0][k];
      idx[0] = 0;
      for (int64_t d = 1; d < ndim_; ++d) {
        for (size_t k = 0; k < N; ++k) ptr[k] += strides_[d][k];
        if (++idx[d] < sizes_[d]) break;
        for (size_t k = 0; k < N; ++k) ptr[k] -= sizes_[d] * strides_[d][k];
        idx[d] = 0;
      }
    }
  }

 private:
  static constexpr int64_t kMaxDims = 64;
  void push_dim(int64_t size, const std::array<int64_t, N>& st) {
    KILN_CHECK(ndim_ < kMaxDims, "tensors with more than ", kMaxDims, " dims are not supported");
    sizes_[ndim_] = size;
    strides_[ndim_] = st;
    ++ndim_;
  }

  int64_t numel_ = 0;
  int64_t ndim_ = 0;
  std::array<char*, N> base_{};
  std::array<int64_t, N> elem_{};
  std::array<int64_t, kMaxDims> sizes_{};
  std::array<std::array<int64_t, N>, kMaxDims> strides_{};
};

// Calls body(begin, end) over [0, n) split across threads when n is large.
template <typename Body>
void parallel_for(int64_t n, int64_t grain, Body&& body) {
  if (n <= 0) return;
  int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, n / std::max<int64_t>(grain, 1))));
  if (threads <= 1 || omp_in_parallel()) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    body(n * t / nt, n * (t + 1) / nt);
  }
}

}  // namespace kiln::cpu
