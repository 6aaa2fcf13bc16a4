#include "kiln/core/generator.h"

namespace kiln {

RandomLayout random_layout(RandomKind kind, DType dtype) {
  // Which 32-bit lanes of a Philox block feed element i:
  //  - 4 elements per block, one lane each: float32/16 uniform, normal and
  //    Bernoulli (normals pair lanes (0,1) and (2,3) through Box-Muller);
  //  - 2 elements per block, two lanes each: anything that needs 64 bits
  //    (float64 uniform/normal, randint).
  switch (kind) {
    case RandomKind::Uniform:
    case RandomKind::Normal:
      return {dtype == kFloat64 ? 2 : 4};
    case RandomKind::Bernoulli:
      return {4};
    case RandomKind::RandInt:
      return {2};
  }
  return {4};
}

uint64_t random_blocks(RandomKind kind, DType dtype, int64_t numel) {
  const int64_t per = random_layout(kind, dtype).elements_per_block;
  return static_cast<uint64_t>((numel + per - 1) / per);
}

Generator& default_generator() {
  static Generator gen;
  return gen;
}

}  // namespace kiln
