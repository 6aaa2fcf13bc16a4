#pragma once
// Multi-tensor launches (optim.cu, foreach.cu): a list of tensors is cut
// into chunks of a fixed size, one block per (tensor, chunk), and the table
// saying which is which travels in the kernel's argument struct, so a list
// takes one launch per table that fits rather than one per tensor.
#include <cstdint>
#include <utility>
#include <vector>

#include "kiln/core/native.h"
#include "kiln/core/tensor.h"

namespace kiln::cuda {

// Args has block_tensor[MaxBlocks] (uint8) and block_chunk[MaxBlocks] (int32);
// set_tensor(args, slot) stores one tensor's pointers and size in its slot.
// launch(args, blocks, first) runs whenever the table is full and once at
// flush(); `first` numbers the launch's first block among all blocks so far.
// A tensor whose chunks do not fit continues as the first tensor of the next
// table.
template <typename Args, int MaxTensors, int MaxBlocks, int64_t Chunk>
class ChunkTable {
 public:
  template <typename SetTensor, typename Launch>
  void add(int64_t numel, const SetTensor& set_tensor, const Launch& launch) {
    if (numel == 0) return;
    if (tensors_ == MaxTensors) flush(launch);
    set_tensor(args_, tensors_++);
    const int64_t chunks = (numel + Chunk - 1) / Chunk;
    for (int64_t ch = 0; ch < chunks; ++ch) {
      if (blocks_ == MaxBlocks) {
        flush(launch);
        set_tensor(args_, tensors_++);
      }
      args_.block_tensor[blocks_] = static_cast<uint8_t>(tensors_ - 1);
      args_.block_chunk[blocks_] = static_cast<int32_t>(ch);
      ++blocks_;
    }
  }

  template <typename Launch>
  void flush(const Launch& launch) {
    if (blocks_ > 0) launch(args_, blocks_, launched_);
    launched_ += blocks_;
    tensors_ = 0;
    blocks_ = 0;
  }

 private:
  Args args_{};
  int tensors_ = 0;
  int blocks_ = 0;
  int64_t launched_ = 0;
};

// Operands the kernels cannot address directly (`direct` false) are worked
// on through contiguous copies; written ones get their values back in
// finish() (stream order keeps the copies after the kernels). Read-only
// copies are held until the end too: the kernels reading them launch only
// once a table is full.
template <bool (*Direct)(const Tensor&)>
class WorkingCopies {
 public:
  Tensor in(const Tensor& t) {
    if (Direct(t)) return t;
    return held_.emplace_back(native::contiguous(t));
  }
  Tensor inout(const Tensor& t) {
    if (Direct(t)) return t;
    Tensor work = native::contiguous(t);
    written_.emplace_back(t, work);
    return work;
  }
  void finish() {
    for (auto& [orig, work] : written_) native::copy_(orig, work);
  }

 private:
  std::vector<Tensor> held_;
  std::vector<std::pair<Tensor, Tensor>> written_;
};

inline bool is_contiguous_tensor(const Tensor& t) { return t.is_contiguous(); }

}  // namespace kiln::cuda
