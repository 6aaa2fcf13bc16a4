#pragma once
// Philox4x32-10 (Salmon et al., 2011): a counter-based generator. The numbers
// an op draws are a pure function of (seed, offset, element index), so CPU
// threads and CUDA blocks can each compute any element independently and get
// the same bits.
#include <cstdint>

#include "kiln/core/host_device.h"

namespace kiln {

struct PhiloxBlock {
  uint32_t v[4];
};

KILN_HOST_DEVICE inline uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t product = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(product >> 32);
  return static_cast<uint32_t>(product);
}

// The full Philox4x32-10 block function: a 128-bit counter and a 64-bit
// key (word order as Random123's philox4x32_ctr_t / philox4x32_key_t).
KILN_HOST_DEVICE inline PhiloxBlock philox4x32_10(const uint32_t counter[4], const uint32_t key[2]) {
  uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = philox_mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return PhiloxBlock{{c0, c1, c2, c3}};
}

// Block number `counter` of the stream keyed by `seed`: the counter fills
// the low two counter words, the high two are zero.
KILN_HOST_DEVICE inline PhiloxBlock philox4x32_10(uint64_t seed, uint64_t counter) {
  const uint32_t ctr[4] = {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u};
  const uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  return philox4x32_10(ctr, key);
}

// [0, 1) with 24 random bits, as torch does for float.
KILN_HOST_DEVICE inline float philox_uniform_float(uint32_t x) {
  return static_cast<float>(x & ((1u << 24) - 1)) * (1.0f / 16777216.0f);
}
// [0, 1) with `digits` random bits (11 for float16, 8 for bfloat16): values
// the dtype holds exactly, so rounding can never produce 1, as torch.
KILN_HOST_DEVICE inline float philox_uniform_bits(uint32_t x, int digits) {
  return static_cast<float>(x & ((1u << digits) - 1)) / static_cast<float>(1u << digits);
}
// [0, 1) with 53 random bits.
KILN_HOST_DEVICE inline double philox_uniform_double(uint32_t lo, uint32_t hi) {
  uint64_t bits = ((static_cast<uint64_t>(hi) << 32) | lo) & ((uint64_t{1} << 53) - 1);
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);
}

}  // namespace kiln
