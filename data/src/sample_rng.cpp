// Per-example random streams and the epoch shuffle.
//
// The key is a hash of (seed, epoch, index) rather than, say, seed + index,
// so that neighbouring examples, epochs and seeds never share or shift into
// each other's streams; the counter then walks Philox blocks 0, 1, 2, ...
#include "kiln/data/sample_rng.h"

#include <limits>
#include <utility>

#include "kiln/core/error.h"
#include "kiln/core/philox.h"

namespace kiln::data {
namespace {

// splitmix64's finaliser: a bijection with full avalanche.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

// Each field passes through the bijection before the next is folded in, so
// (seed, epoch, index) tuples differing anywhere give unrelated keys.
uint64_t stream_key(uint64_t seed, int64_t epoch, int64_t index) {
  uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ull);
  h = mix64(h ^ static_cast<uint64_t>(epoch) * 0xD6E8FEB86659FD93ull);
  h = mix64(h ^ static_cast<uint64_t>(index) * 0xA0761D6478BD642Full);
  return h;
}

// The index the epoch shuffle's stream uses: never an example's.
constexpr int64_t kPermutationStream = -1;

}  // namespace

SampleRng::SampleRng(uint64_t seed, int64_t epoch, int64_t index) : key_(stream_key(seed, epoch, index)) {}

uint32_t SampleRng::next_u32() {
  if (used_ == 4) {
    const PhiloxBlock block = philox4x32_10(key_, counter_++);
    for (int i = 0; i < 4; ++i) lanes_[i] = block.v[i];
    used_ = 0;
  }
  return lanes_[used_++];
}

double SampleRng::uniform() {
  const uint32_t lo = next_u32();
  const uint32_t hi = next_u32();
  return philox_uniform_double(lo, hi);
}

int64_t SampleRng::randint(int64_t lo, int64_t hi) {
  KILN_CHECK(lo <= hi, "SampleRng::randint: empty range [", lo, ", ", hi, "]");
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);  // values - 1
  auto next_u64 = [this] {
    const uint64_t lo32 = next_u32();
    return (static_cast<uint64_t>(next_u32()) << 32) | lo32;
  };
  if (span == std::numeric_limits<uint64_t>::max()) return static_cast<int64_t>(next_u64());
  const uint64_t range = span + 1;
  // Rejection keeps every value equally likely: draws at or above the
  // largest multiple of range are retried (rarely: at most half the time).
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % range;
  uint64_t x = next_u64();
  while (x >= limit) x = next_u64();
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + x % range);
}

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  KILN_CHECK(n >= 0, "epoch_permutation: n must be >= 0, got ", n);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  SampleRng rng(seed, epoch, kPermutationStream);
  // Fisher-Yates from the back: position i takes a uniform pick of [0, i].
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng.randint(0, i)]);
  return perm;
}

}  // namespace kiln::data
