#include "kiln/core/error.h"

#include "kiln/core/int_array_ref.h"

namespace kiln {
namespace detail {
void throw_error(const std::string& message) { throw Error(message); }
}  // namespace detail

std::ostream& operator<<(std::ostream& os, IntArrayRef a) {
  os << '[';
  for (size_t i = 0; i < a.size(); ++i) os << (i ? ", " : "") << a[i];
  return os << ']';
}
}  // namespace kiln
