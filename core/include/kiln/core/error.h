#pragma once
// kiln::Error and KILN_CHECK: every bad input becomes an exception whose
// message names the op, the shapes and the values involved.
#include <sstream>
#include <stdexcept>
#include <string>

namespace kiln {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void throw_error(const std::string& message);
}  // namespace detail

}  // namespace kiln

#define KILN_CHECK(cond, ...)                                    \
  do {                                                           \
    if (!(cond)) ::kiln::detail::throw_error(::kiln::detail::str(__VA_ARGS__)); \
  } while (0)

#define KILN_ERROR(...) ::kiln::detail::throw_error(::kiln::detail::str(__VA_ARGS__))
