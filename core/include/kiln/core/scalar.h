#pragma once
// A number passed by value to an op (the `2` in x * 2): a double, an int64 or
// a bool, which matters for type promotion exactly as Python numbers do.
#include <cstdint>
#include <ostream>
#include <type_traits>

#include "kiln/core/dtype.h"

namespace kiln {

class Scalar {
 public:
  enum class Kind : uint8_t { Double, Int, Bool };

  Scalar() : Scalar(int64_t{0}) {}
  Scalar(double v) : kind_(Kind::Double), d_(v) {}  // NOLINT
  Scalar(float v) : kind_(Kind::Double), d_(v) {}  // NOLINT
  Scalar(Half v) : kind_(Kind::Double), d_(static_cast<float>(v)) {}  // NOLINT
  Scalar(BFloat16 v) : kind_(Kind::Double), d_(static_cast<float>(v)) {}  // NOLINT
  Scalar(bool v) : kind_(Kind::Bool), i_(v) {}  // NOLINT
  template <typename I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  Scalar(I v) : kind_(Kind::Int), i_(static_cast<int64_t>(v)) {}  // NOLINT

  Kind kind() const { return kind_; }
  bool is_floating_point() const { return kind_ == Kind::Double; }
  bool is_integral() const { return kind_ == Kind::Int; }
  bool is_bool() const { return kind_ == Kind::Bool; }

  template <typename T>
  T to() const {
    if constexpr (std::is_same_v<T, bool>) {
      return kind_ == Kind::Double ? d_ != 0.0 : i_ != 0;
    } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      return T(static_cast<float>(to<double>()));
    } else {
      return kind_ == Kind::Double ? static_cast<T>(d_) : static_cast<T>(i_);
    }
  }
  double toDouble() const { return to<double>(); }
  int64_t toLong() const { return to<int64_t>(); }
  bool toBool() const { return to<bool>(); }

  // The dtype a tensor made from this number alone would have.
  DType dtype() const {
    return kind_ == Kind::Double ? default_dtype() : kind_ == Kind::Int ? kInt64 : kBool;
  }

  Scalar operator-() const {
    if (kind_ == Kind::Double) return Scalar(-d_);
    return Scalar(-i_);
  }

 private:
  Kind kind_;
  union {
    double d_;
    int64_t i_;
  };
};

std::ostream& operator<<(std::ostream& os, const Scalar& s);

}  // namespace kiln
