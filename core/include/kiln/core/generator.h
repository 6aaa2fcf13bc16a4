#pragma once
// The random-number generator state: a seed and an offset counting the
// Philox blocks already used. Saving a generator means saving two integers.
//
// How many blocks an op uses, and which block/lane feeds element i, is fixed
// by RandomKind (see random_layout) so every backend agrees bit for bit.
#include <cstdint>
#include <mutex>

#include "kiln/core/dtype.h"

namespace kiln {

enum class RandomKind : uint8_t {
  Uniform,    // a + (b - a) * u
  Normal,     // mean + std * Box-Muller
  Bernoulli,  // u < p (p a number, or a tensor of probabilities)
  RandInt,    // low + r64 mod (high - low)
};

struct RandomLayout {
  int64_t elements_per_block;  // 4: one 32-bit lane each; 2: two lanes (64 bits) each
};
RandomLayout random_layout(RandomKind kind, DType dtype);
// Blocks an op filling numel elements consumes; the generator's offset advances by this.
uint64_t random_blocks(RandomKind kind, DType dtype, int64_t numel);

class Generator {
 public:
  explicit Generator(uint64_t seed = 67280421310721ull) : seed_(seed) {}

  void manual_seed(uint64_t seed) {
    std::lock_guard<std::mutex> lock(mutex_);
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  // Restore a saved state.
  void set_state(uint64_t seed, uint64_t offset) {
    std::lock_guard<std::mutex> lock(mutex_);
    seed_ = seed;
    offset_ = offset;
  }
  // Reserve `blocks` blocks; returns the offset the op starts at.
  uint64_t advance(uint64_t blocks) {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t start = offset_;
    offset_ += blocks;
    return start;
  }

 private:
  std::mutex mutex_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
inline void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace kiln
