// Pointwise ops: torch's type promotion and broadcasting, then one backend
// call. Scalars become 0-dim tensors of the computation dtype, expanded with
// stride 0, which the kernels treat as a constant operand.
#include "kiln/core/native/elementwise.h"

#include "kiln/core/native/factory.h"
#include "kiln/core/native/shape_util.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {

bool is_float_op(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: case UnaryOp::Abs: case UnaryOp::Sign: case UnaryOp::Relu:
    case UnaryOp::Floor: case UnaryOp::Ceil: case UnaryOp::Round: case UnaryOp::LogicalNot:
      return false;
    default:
      return true;
  }
}

// torch.can_cast: no floating -> integral and nothing but bool -> bool.
bool can_cast(DType from, DType to) {
  if (is_floating_point(from) && is_integral(to, true)) return false;
  if (from != kBool && to == kBool) return false;
  return true;
}

int category(DType t) { return t == kBool ? 0 : is_integral(t, false) ? 1 : 2; }
int category(const Scalar& s) { return s.is_bool() ? 0 : s.is_integral() ? 1 : 2; }

// A plain number only changes a tensor's dtype when it is of a higher category.
DType promote_with(DType t, const Scalar& s) {
  if (category(s) <= category(t)) return t;
  return s.is_floating_point() ? default_dtype() : kInt64;
}

// The dtype the kernel computes in, given the promoted dtype.
DType compute_dtype(BinaryOp op, DType promoted) {
  if (op == BinaryOp::Div && !is_floating_point(promoted)) return default_dtype();  // true division
  return promoted;
}

void check_bool_sub(BinaryOp op, DType t) {
  KILN_CHECK(!(op == BinaryOp::Sub && t == kBool), "sub: Subtraction, the `-` operator, with two bool tensors is "
             "not supported. Use the `^` or `logical_xor()` operator instead.");
}

// A 0-dim CPU tensor may meet tensors on another device (torch treats it as
// a number) and is moved there; any other mix is an error naming both devices.
bool movable(const Tensor& t) { return t.dim() == 0 && t.is_cpu(); }

Device common_device(std::initializer_list<const Tensor*> ts, const char* op) {
  const Tensor* ref = nullptr;
  for (const Tensor* t : ts)
    if (!ref || (movable(*ref) && !movable(*t))) ref = t;
  for (const Tensor* t : ts) {
    KILN_CHECK(t->device() == ref->device() || movable(*t), op,
               ": expected all tensors to be on the same device, but found at least two devices, ", ref->device(),
               " and ", t->device());
  }
  return ref->device();
}

Tensor on(const Tensor& t, Device d) { return t.device() == d ? t : to(t, d); }

// A 0-dim tensor holding `s` in dtype `d` on `device`.
Tensor wrap_scalar(const Scalar& s, DType d, Device device) { return scalar_tensor(s, dtype(d).device(device)); }

// torch refuses in-place writes where several elements share one location.
void check_writable(const Tensor& out, const char* op) {
  for (int64_t d = 0; d < out.dim(); ++d) {
    KILN_CHECK(out.stride(d) != 0 || out.size(d) <= 1, op,
               ": unsupported operation: more than one element of the written-to tensor refers to a single memory "
               "location. Please clone() the tensor before performing the operation.");
  }
}

// An operand reading the output's memory through a different view would see
// half-updated values; give it its own copy.
Tensor unalias(const Tensor& in, const Tensor& out) {
  if (in.storage() != out.storage()) return in;
  if (in.storage_offset() == out.storage_offset() && in.sizes().equals(out.sizes()) &&
      in.strides().equals(out.strides()))
    return in;
  return clone(in);
}

void check_cast(DType result, const Tensor& out, const char* op) {
  KILN_CHECK(can_cast(result, out.dtype()), op, "_: result type ", dtype_name(result),
             " can't be cast to the desired output type ", dtype_name(out.dtype()));
}

}  // namespace

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = op_name(op);
  const Device dev = common_device({&a_in, &b_in}, name);
  const Tensor a2 = on(a_in, dev), b = on(b_in, dev);
  const DType promoted = result_type(a2, b);
  check_bool_sub(op, promoted);
  const DType ct = compute_dtype(op, promoted);
  const DimVector shape = broadcast_shapes(a2.sizes(), b.sizes(), name);
  const Tensor x = expand(to(a2, ct), shape), y = expand(to(b, ct), shape);
  Tensor out = empty(shape, x.options().dtype(produces_bool(op) ? kBool : ct));
  backend_of(out).binary(op, x, y, out);
  return out;
}

namespace {
// torch applies a number to a 16-bit float tensor in float (its opmath type):
// x * 0.1 rounds once, from x * 0.1f. Numbers the 16-bit dtype holds exactly
// give that result directly; others take the float32 route.
bool needs_float_route(DType t, const Scalar& s) {
  if (!is_reduced_float(t) || !s.is_floating_point()) return false;
  const double v = s.toDouble();
  const float f = static_cast<float>(v);
  const float back = t == kFloat16 ? static_cast<float>(Half(f)) : static_cast<float>(BFloat16(f));
  return static_cast<double>(back) != v && !(v != v);
}

Tensor scalar_binary(BinaryOp op, const Tensor& t, const Scalar& s, bool scalar_first) {
  const DType r = result_type(t, s);
  if (needs_float_route(r, s)) {
    const Tensor x = to(t, kFloat32), w = wrap_scalar(s, kFloat32, t.device());
    const Tensor out = scalar_first ? binary(op, w, x) : binary(op, x, w);
    return produces_bool(op) ? out : to(out, r);
  }
  const Tensor w = wrap_scalar(s, r, t.device());
  return scalar_first ? binary(op, w, t) : binary(op, t, w);
}
}  // namespace

Tensor binary(BinaryOp op, const Tensor& a, const Scalar& b) { return scalar_binary(op, a, b, false); }

Tensor binary(BinaryOp op, const Scalar& a, const Tensor& b) { return scalar_binary(op, b, a, true); }

void binary_(BinaryOp op, const Tensor& out, const Tensor& b_in) {
  const char* name = op_name(op);
  KILN_CHECK(b_in.device() == out.device() || movable(b_in), name,
             "_: expected all tensors to be on the same device, but found at least two devices, ", out.device(),
             " and ", b_in.device());
  const Tensor b = on(b_in, out.device());
  check_writable(out, name);
  const DType promoted = result_type(out, b);
  check_bool_sub(op, promoted);
  const DType ct = compute_dtype(op, promoted);
  const DType result = produces_bool(op) ? kBool : ct;
  check_cast(result, out, name);
  const DimVector shape = broadcast_shapes(out.sizes(), b.sizes(), name);
  KILN_CHECK(IntArrayRef(shape).equals(out.sizes()), name, "_: output with shape ", out.sizes(),
             " doesn't match the broadcast shape ", shape);
  const Tensor x = to(out, ct);  // out itself when no conversion is needed
  const Tensor y = expand(unalias(to(b, ct), out), shape);
  Backend& be = backend_of(out);
  if (result == out.dtype()) {
    be.binary(op, x, y, out);
  } else {
    Tensor tmp = empty(shape, out.options().dtype(result));
    be.binary(op, x, y, tmp);
    be.copy(tmp, out, false);
  }
  bump_version(out);
}

void binary_(BinaryOp op, const Tensor& out, const Scalar& b) {
  const DType r = result_type(out, b);
  if (needs_float_route(r, b)) {
    check_writable(out, op_name(op));
    check_cast(produces_bool(op) ? kBool : r, out, op_name(op));
    copy_(out, binary(op, out, b));  // bumps the version
    return;
  }
  binary_(op, out, wrap_scalar(b, r, out.device()));
}

Tensor unary(UnaryOp op, const Tensor& a) {
  KILN_CHECK(!(op == UnaryOp::Neg && a.dtype() == kBool),
             "neg: Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a "
             "mask, use the `~` or `logical_not()` operator instead.");
  if (op == UnaryOp::LogicalNot) {
    Tensor out = empty(a.sizes(), a.options().dtype(kBool));
    backend_of(a).unary(op, a, out);
    return out;
  }
  const DType ct = is_float_op(op) && !is_floating_point(a.dtype()) ? default_dtype() : a.dtype();
  const Tensor x = to(a, ct);
  Tensor out = empty(a.sizes(), x.options());
  backend_of(x).unary(op, x, out);
  return out;
}

void unary_(UnaryOp op, const Tensor& a) {
  const char* name = op_name(op);
  check_writable(a, name);
  KILN_CHECK(!(op == UnaryOp::Neg && a.dtype() == kBool),
             "neg_: Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a "
             "mask, use the `~` or `logical_not()` operator instead.");
  Backend& be = backend_of(a);
  if (op == UnaryOp::LogicalNot) {  // keeps a's dtype, writing 0/1
    Tensor tmp = empty(a.sizes(), a.options().dtype(kBool));
    be.unary(op, a, tmp);
    be.copy(tmp, a, false);
  } else {
    if (is_float_op(op)) check_cast(default_dtype(), a, name);
    be.unary(op, a, a);
  }
  bump_version(a);
}

Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  const DType promoted = result_type(a, b);
  KILN_CHECK(!(is_integral(promoted, true) && alpha.is_floating_point()),
             "add: For integral input tensors, argument alpha must not be a floating point number.");
  KILN_CHECK(promoted == kBool || !alpha.is_bool(), "add: Boolean alpha only supported for Boolean results.");
  if (alpha.to<double>() == 1.0) return binary(BinaryOp::Add, a, b);
  // b * alpha in b's promoted dtype keeps the dtype the unscaled sum would have.
  const Tensor scaled = binary(BinaryOp::Mul, to(b, promoted), alpha);
  return binary(BinaryOp::Add, a, scaled);
}

Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  check_bool_sub(BinaryOp::Sub, result_type(a, b));
  if (alpha.to<double>() == 1.0 && !alpha.is_bool()) return binary(BinaryOp::Sub, a, b);
  return add(a, b, -alpha);  // validates alpha against the result dtype
}

Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
Tensor mul(const Tensor& a, const Scalar& b) { return binary(BinaryOp::Mul, a, b); }
Tensor add(const Tensor& a, const Scalar& b) { return binary(BinaryOp::Add, a, b); }

Tensor pow(const Tensor& a, const Scalar& exponent) {
  KILN_CHECK(!(is_integral(a.dtype(), true) && exponent.is_integral() && exponent.toLong() < 0),
             "pow: Integers to negative integer powers are not allowed.");
  return binary(BinaryOp::Pow, a, exponent);
}

Tensor pow(const Tensor& a, const Tensor& exponent) { return binary(BinaryOp::Pow, a, exponent); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  KILN_CHECK(cond.dtype() == kBool, "where: expected condition to be a boolean tensor, but got a tensor with dtype ",
             dtype_name(cond.dtype()));
  const Device dev = common_device({&cond, &a, &b}, "where");
  const Tensor c = on(cond, dev), x = on(a, dev), y = on(b, dev);
  const DType r = result_type({x, y});
  const DimVector shape = broadcast_shapes(broadcast_shapes(c.sizes(), x.sizes(), "where"), y.sizes(), "where");
  Tensor out = empty(shape, x.options().dtype(r));
  backend_of(out).where(expand(c, shape), expand(to(x, r), shape), expand(to(y, r), shape), out);
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Scalar& b) {
  return where(cond, a, wrap_scalar(b, result_type(a, b), a.device()));
}

Tensor where(const Tensor& cond, const Scalar& a, const Tensor& b) {
  return where(cond, wrap_scalar(a, result_type(b, a), b.device()), b);
}

Tensor masked_fill(const Tensor& t, const Tensor& mask, const Scalar& value) {
  KILN_CHECK(mask.dtype() == kBool, "masked_fill: only supports boolean masks, but got mask with dtype ",
             dtype_name(mask.dtype()));
  KILN_CHECK(mask.device() == t.device() || movable(mask), "masked_fill: expected all tensors to be on the same "
             "device, but found at least two devices, ", t.device(), " and ", mask.device());
  const Tensor m = on(mask, t.device());
  // The value is cast to t's dtype (torch does not promote here).
  const DimVector shape = broadcast_shapes(t.sizes(), m.sizes(), "masked_fill");
  Tensor out = empty(shape, t.options());
  backend_of(out).where(expand(m, shape), expand(wrap_scalar(value, t.dtype(), t.device()), shape),
                        expand(t, shape), out);
  return out;
}

namespace {
DType clamp_dtype(const Tensor& t, const std::optional<Scalar>& min, const std::optional<Scalar>& max) {
  KILN_CHECK(min.has_value() || max.has_value(), "clamp: At least one of 'min' or 'max' must not be None");
  DType r = t.dtype();
  if (min) r = promote_with(r, *min);
  if (max) r = promote_with(r, *max);
  return r;
}
}  // namespace

Tensor clamp(const Tensor& t, const std::optional<Scalar>& min, const std::optional<Scalar>& max) {
  const DType r = clamp_dtype(t, min, max);
  const Tensor x = to(t, r);
  Tensor out = empty(t.sizes(), x.options());
  backend_of(x).clamp(x, min, max, out);
  return out;
}

void clamp_(const Tensor& t, const std::optional<Scalar>& min, const std::optional<Scalar>& max) {
  const DType r = clamp_dtype(t, min, max);
  check_writable(t, "clamp");
  check_cast(r, t, "clamp");
  backend_of(t).clamp(t, min, max, t);
  bump_version(t);
}

void fill_(const Tensor& t, const Scalar& value) {
  check_writable(t, "fill");
  backend_of(t).fill(t, value);
  bump_version(t);
}

}  // namespace kiln::native
