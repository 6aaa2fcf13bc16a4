#pragma once
// The random numbers one example's augmentation draws: Philox4x32-10 keyed
// by (seed, epoch, index), so an example gets the same crop and flip whatever
// thread decodes it, how many workers there are, and whether the run was
// stopped and resumed in between.
#include <cstdint>
#include <vector>

namespace kiln::data {

class SampleRng {
 public:
  SampleRng(uint64_t seed, int64_t epoch, int64_t index);
  uint32_t next_u32();
  // Uniform in [0, 1), 53-bit resolution.
  double uniform();
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi] (inclusive, as Python's random.randint).
  int64_t randint(int64_t lo, int64_t hi);

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
  uint32_t lanes_[4] = {0, 0, 0, 0};
  int used_ = 4;
};

// A permutation of [0, n) drawn from (seed, epoch): the epoch's shuffle.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace kiln::data
