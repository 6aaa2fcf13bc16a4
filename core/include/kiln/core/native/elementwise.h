#pragma once
// Pointwise ops with broadcasting and type promotion. `out` variants write
// into an existing tensor of the broadcast shape (used by the in-place forms).
#include <optional>

#include "kiln/core/backend.h"
#include "kiln/core/tensor.h"

namespace kiln::native {

// Promotes, broadcasts, allocates and calls the backend. Division of integers
// gives floats (true division) as torch.div.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary(BinaryOp op, const Tensor& a, const Scalar& b);
Tensor binary(BinaryOp op, const Scalar& a, const Tensor& b);
// out op= b, in place: the result dtype must cast to out's dtype (as torch's in-place rules).
void binary_(BinaryOp op, const Tensor& out, const Tensor& b);
void binary_(BinaryOp op, const Tensor& out, const Scalar& b);
// Float ops (exp, log, ...) on integer inputs compute in the default float dtype.
Tensor unary(UnaryOp op, const Tensor& a);
void unary_(UnaryOp op, const Tensor& a);

Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha = 1);
Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha = 1);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Scalar& b);
Tensor add(const Tensor& a, const Scalar& b);
Tensor pow(const Tensor& a, const Scalar& exponent);
Tensor pow(const Tensor& a, const Tensor& exponent);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Scalar& b);
Tensor where(const Tensor& cond, const Scalar& a, const Tensor& b);
Tensor masked_fill(const Tensor& t, const Tensor& mask, const Scalar& value);
Tensor clamp(const Tensor& t, const std::optional<Scalar>& min, const std::optional<Scalar>& max);
void clamp_(const Tensor& t, const std::optional<Scalar>& min, const std::optional<Scalar>& max);
void fill_(const Tensor& t, const Scalar& value);

}  // namespace kiln::native
