#include "kiln/core/math_mode.h"

#include <atomic>

#include "kiln/core/error.h"

namespace kiln {

namespace {
// 0 highest, 1 high, 2 medium. Atomic: set from one thread, read by kernels' launchers on others.
std::atomic<int> precision_level{0};
}  // namespace

void set_float32_matmul_precision(const std::string& precision) {
  if (precision == "highest") {
    precision_level = 0;
  } else if (precision == "high") {
    precision_level = 1;
  } else if (precision == "medium") {
    precision_level = 2;
  } else {
    KILN_ERROR("set_float32_matmul_precision: expected 'highest', 'high' or 'medium', got '", precision, "'");
  }
}

std::string get_float32_matmul_precision() {
  static const char* names[] = {"highest", "high", "medium"};
  return names[precision_level.load()];
}

bool float32_matmul_allows_tf32() { return precision_level.load() > 0; }

}  // namespace kiln
