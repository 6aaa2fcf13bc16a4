// Philox-driven fills. Element i of the (row-major) output always draws from
// block offset + i / per_block, whatever the thread count; see generator.h.
#include <cmath>

#include "cpu/cpu_backend.h"
#include "cpu/strided_loop.h"
#include "kiln/core/philox.h"

namespace kiln::cpu {

namespace {
constexpr double kTwoPi = 6.283185307179586476925286766559;

// Value of element i (in row-major order) for the given spec.
template <typename T>
struct Drawer {
  RandomSpec spec;
  uint64_t seed, offset;
  int64_t per_block;

  double draw(int64_t i, double p_elem) const {
    const PhiloxBlock blk = philox4x32_10(seed, offset + static_cast<uint64_t>(i / per_block));
    const int lane = static_cast<int>(i % per_block);
    switch (spec.kind) {
      case RandomKind::Uniform: {
        double u;
        if (per_block == 2) {
          u = philox_uniform_double(blk.v[2 * lane], blk.v[2 * lane + 1]);
        } else if constexpr (std::is_same_v<T, Half>) {
          u = philox_uniform_bits(blk.v[lane], 11);
        } else if constexpr (std::is_same_v<T, BFloat16>) {
          u = philox_uniform_bits(blk.v[lane], 8);
        } else {
          u = philox_uniform_float(blk.v[lane]);
        }
        return spec.a + (spec.b - spec.a) * u;
      }
      case RandomKind::Normal: {
        // Box-Muller on a pair of uniforms; the pair's two elements take cos and sin.
        double u1, u2;
        int which;
        if (per_block == 2) {
          u1 = philox_uniform_double(blk.v[0], blk.v[1]);
          u2 = philox_uniform_double(blk.v[2], blk.v[3]);
          which = lane;
        } else {
          const int pair = lane / 2;
          u1 = philox_uniform_float(blk.v[2 * pair]);
          u2 = philox_uniform_float(blk.v[2 * pair + 1]);
          which = lane % 2;
        }
        const double r = std::sqrt(-2.0 * std::log(1.0 - u1));
        const double z = which == 0 ? r * std::cos(kTwoPi * u2) : r * std::sin(kTwoPi * u2);
        return spec.a + spec.b * z;
      }
      case RandomKind::Bernoulli:
        return static_cast<double>(philox_uniform_float(blk.v[lane])) < p_elem ? 1.0 : 0.0;
      case RandomKind::RandInt: {
        const uint64_t r = (static_cast<uint64_t>(blk.v[2 * lane + 1]) << 32) | blk.v[2 * lane];
        const auto range = static_cast<uint64_t>(static_cast<int64_t>(spec.b) - static_cast<int64_t>(spec.a));
        return static_cast<double>(static_cast<int64_t>(spec.a) + static_cast<int64_t>(r % range));
      }
    }
    return 0.0;
  }
};
}  // namespace

void CpuBackend::random(const Tensor& out, const RandomSpec& spec, uint64_t seed, uint64_t offset) {
  KILN_CHECK(out.is_contiguous(), "random: output must be contiguous");
  const bool per_element_p = spec.kind == RandomKind::Bernoulli && spec.probabilities.defined();
  Tensor probs;
  if (per_element_p) {
    KILN_CHECK(spec.probabilities.numel() == out.numel(), "bernoulli: probabilities have ",
               spec.probabilities.numel(), " elements but the output has ", out.numel());
    KILN_CHECK(spec.probabilities.dtype() == kFloat64 && spec.probabilities.is_contiguous(),
               "bernoulli: backend expects contiguous float64 probabilities");
    probs = spec.probabilities;
  }
  const int64_t per = random_layout(spec.kind, out.dtype()).elements_per_block;
  const double* p = per_element_p ? probs.data_ptr<double>() : nullptr;
  dispatch_all(out.dtype(), "random", [&]<typename T>() {
    Drawer<T> drawer{spec, seed, offset, per};
    T* o = out.data_ptr<T>();
    // RandInt keeps exact 64-bit integers; everything else goes through double.
    parallel_for(out.numel(), 16384, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if (spec.kind == RandomKind::RandInt) {
            const PhiloxBlock blk = philox4x32_10(seed, offset + static_cast<uint64_t>(i / per));
            const int lane = static_cast<int>(i % per);
            const uint64_t r = (static_cast<uint64_t>(blk.v[2 * lane + 1]) << 32) | blk.v[2 * lane];
            const auto low = static_cast<int64_t>(spec.a);
            const auto range = static_cast<uint64_t>(static_cast<int64_t>(spec.b) - low);
            o[i] = static_cast<T>(low + static_cast<int64_t>(r % range));
            continue;
          }
        }
        const double v = drawer.draw(i, p ? p[i] : spec.a);
        if constexpr (std::is_same_v<T, bool>) {
          o[i] = v != 0.0;
        } else if constexpr (std::is_integral_v<T>) {
          o[i] = static_cast<T>(v);
        } else {
          o[i] = T(static_cast<compute_t<T>>(v));
        }
      }
    });
  });
}

}  // namespace kiln::cpu
