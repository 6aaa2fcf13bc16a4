#pragma once
// The cuDNN algorithm chosen for each convolution problem, kept for the
// process: choosing costs a heuristic query (or, in benchmark mode, timing
// every algorithm), and keeping the choice makes a problem always run the
// same algorithm. A problem is everything that can change the answer:
// direction, dtype, all three shapes, the geometry, the TF32 and benchmark
// switches, and the device.
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

#include "kiln/core/backend.h"

namespace kiln::cuda {

enum class ConvDirection : uint8_t { Forward, BackwardData, BackwardFilter };

inline const char* conv_direction_name(ConvDirection d) {
  switch (d) {
    case ConvDirection::Forward: return "forward";
    case ConvDirection::BackwardData: return "backward-data";
    case ConvDirection::BackwardFilter: return "backward-filter";
  }
  return "?";
}

struct ConvAlgo {
  int algo = 0;          // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  int math = 0;          // cudnnMathType_t to set on the descriptor
  size_t workspace = 0;  // bytes
};

using ConvPlanKey = std::array<int64_t, 24>;

inline ConvPlanKey make_conv_plan_key(ConvDirection dir, DType dt, IntArrayRef x, IntArrayRef w, IntArrayRef y,
                                      const Conv2dParams& p, bool tf32, bool benchmark, int device) {
  return {static_cast<int64_t>(dir), static_cast<int64_t>(dt), x[0], x[1], x[2], x[3], w[0], w[1], w[2], w[3],
          y[0], y[1], y[2], y[3], p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0],
          p.dilation[1], p.groups, tf32, benchmark, device};
}

namespace detail {
struct ConvPlanCache {
  std::mutex mutex;
  std::map<ConvPlanKey, ConvAlgo> plans;
};
inline ConvPlanCache& conv_plan_cache() {
  static ConvPlanCache cache;
  return cache;
}
// A model meets few distinct geometries; a run that keeps inventing new
// ones (varying image sizes) starts over rather than grow without bound.
inline constexpr size_t kMaxConvPlans = 4096;
}  // namespace detail

inline bool conv_plan_lookup(const ConvPlanKey& key, ConvAlgo* out) {
  auto& c = detail::conv_plan_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.plans.find(key);
  if (it == c.plans.end()) return false;
  *out = it->second;
  return true;
}

inline void conv_plan_store(const ConvPlanKey& key, const ConvAlgo& algo) {
  auto& c = detail::conv_plan_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (c.plans.size() >= detail::kMaxConvPlans) c.plans.clear();
  c.plans[key] = algo;
}

}  // namespace kiln::cuda
