// The arithmetic, comparison and logical operators on tensors, as Python's.
#include "kiln/autograd/functions.h"

namespace kiln {

Tensor operator+(const Tensor& a, const Tensor& b) { return kiln::add(a, b); }
Tensor operator+(const Tensor& a, const Scalar& b) { return kiln::add(a, b); }
Tensor operator+(const Scalar& a, const Tensor& b) { return kiln::add(b, a); }
Tensor operator-(const Tensor& a, const Tensor& b) { return kiln::sub(a, b); }
Tensor operator-(const Tensor& a, const Scalar& b) { return kiln::sub(a, b); }
Tensor operator-(const Scalar& a, const Tensor& b) { return kiln::rsub(b, a); }
Tensor operator*(const Tensor& a, const Tensor& b) { return kiln::mul(a, b); }
Tensor operator*(const Tensor& a, const Scalar& b) { return kiln::mul(a, b); }
Tensor operator*(const Scalar& a, const Tensor& b) { return kiln::mul(b, a); }
Tensor operator/(const Tensor& a, const Tensor& b) { return kiln::div(a, b); }
Tensor operator/(const Tensor& a, const Scalar& b) { return kiln::div(a, b); }
// Python's number / tensor: reciprocal(b) * a.
Tensor operator/(const Scalar& a, const Tensor& b) { return kiln::mul(kiln::reciprocal(b), a); }
Tensor operator-(const Tensor& a) { return kiln::neg(a); }

Tensor& operator+=(Tensor& a, const Tensor& b) { return a.add_(b); }
Tensor& operator+=(Tensor& a, const Scalar& b) { return a.add_(b); }
Tensor& operator-=(Tensor& a, const Tensor& b) { return a.sub_(b); }
Tensor& operator-=(Tensor& a, const Scalar& b) { return a.sub_(b); }
Tensor& operator*=(Tensor& a, const Tensor& b) { return a.mul_(b); }
Tensor& operator*=(Tensor& a, const Scalar& b) { return a.mul_(b); }
Tensor& operator/=(Tensor& a, const Tensor& b) { return a.div_(b); }
Tensor& operator/=(Tensor& a, const Scalar& b) { return a.div_(b); }

Tensor operator==(const Tensor& a, const Tensor& b) { return kiln::eq(a, b); }
Tensor operator==(const Tensor& a, const Scalar& b) { return kiln::eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return kiln::ne(a, b); }
Tensor operator!=(const Tensor& a, const Scalar& b) { return kiln::ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return kiln::lt(a, b); }
Tensor operator<(const Tensor& a, const Scalar& b) { return kiln::lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return kiln::le(a, b); }
Tensor operator<=(const Tensor& a, const Scalar& b) { return kiln::le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return kiln::gt(a, b); }
Tensor operator>(const Tensor& a, const Scalar& b) { return kiln::gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return kiln::ge(a, b); }
Tensor operator>=(const Tensor& a, const Scalar& b) { return kiln::ge(a, b); }
Tensor operator&&(const Tensor& a, const Tensor& b) { return kiln::logical_and(a, b); }
Tensor operator||(const Tensor& a, const Tensor& b) { return kiln::logical_or(a, b); }
Tensor operator!(const Tensor& a) { return kiln::logical_not(a); }

}  // namespace kiln
