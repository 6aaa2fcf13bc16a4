#pragma once
// The one list of kernels a device provides. Public ops (kiln::native) have
// already checked arguments, broadcast inputs to the output's shape (with
// zero strides), promoted dtypes and allocated outputs; a backend only
// computes. Calls may be asynchronous with respect to the host: nothing
// outside a backend reads or writes tensor memory, and results are observed
// through copy() to the CPU, which synchronises.
//
// Conventions for every kernel: tensors are strided views (any strides,
// including 0 for broadcast dims); outputs never overlap inputs unless the
// kernel says so; "same dtype" means the native layer converted first.
#include <cstdint>
#include <optional>

#include "kiln/core/device.h"
#include "kiln/core/generator.h"
#include "kiln/core/scalar.h"
#include "kiln/core/storage.h"
#include "kiln/core/tensor.h"

namespace kiln {

enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Log1p, Expm1, Sqrt, Rsqrt, Abs, Sign, Tanh, Sigmoid, Relu,
  GeluErf, GeluTanh, Silu, Sin, Cos, Acos, Erf, Reciprocal, Floor, Ceil, Round,
  LogicalNot,  // output bool
};

enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Pow, Minimum, Maximum,
  Eq, Ne, Lt, Le, Gt, Ge,            // output bool
  LogicalAnd, LogicalOr, LogicalXor,  // output bool
  // Fused backward formulas: a is the incoming gradient, b is the forward
  // input x (Gelu*, Silu) or the forward output y (Relu, Sigmoid, Tanh).
  ReluBackward, SigmoidBackward, TanhBackward, GeluErfBackward, GeluTanhBackward, SiluBackward,
};

const char* op_name(UnaryOp op);
const char* op_name(BinaryOp op);
inline bool produces_bool(BinaryOp op) { return op >= BinaryOp::Eq && op <= BinaryOp::LogicalXor; }

enum class ReduceOp : uint8_t { Sum, Prod, Max, Min, All, Any };
enum class ArgReduceOp : uint8_t { Max, Min };
enum class ScatterReduce : uint8_t { None, Add };

struct RandomSpec {
  RandomKind kind;
  double a = 0.0;  // Uniform: from;  Normal: mean;  Bernoulli: p;  RandInt: low
  double b = 1.0;  // Uniform: to;    Normal: std;   RandInt: high (exclusive)
  Tensor probabilities;  // Bernoulli with per-element p (same shape as out), else undefined
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceType type() const = 0;

  // ---- memory ----
  virtual Storage allocate(size_t nbytes, Device device) = 0;
  // Waits for all queued work on the device.
  virtual void synchronize(Device device) = 0;

  // ---- data movement and fills ----
  // dst[i] = convert(src[i]); same shape; dtypes may differ; either tensor may
  // live on another device when one of them is on the CPU. May overlap only if
  // src and dst are the same view.
  virtual void copy(const Tensor& src, const Tensor& dst, bool non_blocking) = 0;
  virtual void fill(const Tensor& out, const Scalar& value) = 0;
  // out[i] = start + i * step over the flattened (contiguous) out.
  virtual void arange(const Tensor& out, const Scalar& start, const Scalar& step) = 0;
  // torch.linspace's formula: the first half counts up from start, the second down from end.
  virtual void linspace(const Tensor& out, const Scalar& start, const Scalar& end) = 0;
  virtual void random(const Tensor& out, const RandomSpec& spec, uint64_t seed, uint64_t offset) = 0;

  // ---- elementwise ----
  // in and out: same shape and dtype (out is bool for LogicalNot; in is any dtype then).
  virtual void unary(UnaryOp op, const Tensor& in, const Tensor& out) = 0;
  // a, b: out's shape, same dtype; out has that dtype, or bool for comparisons/logical ops.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // cond is bool; a, b, out same dtype; all of out's shape.
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  virtual void clamp(const Tensor& in, const std::optional<Scalar>& min, const std::optional<Scalar>& max,
                     const Tensor& out) = 0;

  // ---- reductions ----
  // out has in's rank, with size 1 on every reduced dim (the keepdim shape);
  // a dim is reduced exactly when out.size(d) == 1 && in.size(d) != 1.
  // out may have a wider dtype than in (sum of int32 into int64, f16 into f32).
  virtual void reduce(ReduceOp op, const Tensor& in, const Tensor& out) = 0;
  // Reduces along `dim`; values/indices have in's rank with size 1 at dim.
  // values may be undefined (argmax). Ties pick the first index; NaN wins, as torch.
  virtual void arg_reduce(ArgReduceOp op, const Tensor& in, int64_t dim, const Tensor& values,
                          const Tensor& indices) = 0;
  virtual void softmax(const Tensor& in, int64_t dim, bool log, const Tensor& out) = 0;
  // grad_in = softmax'(grad_out) given the forward output.
  virtual void softmax_backward(const Tensor& grad_out, const Tensor& out, int64_t dim, bool log,
                                const Tensor& grad_in) = 0;

  // ---- linear algebra ----
  // out[b] = beta * out[b] + alpha * a[b] @ b[b]; a [B,M,K], b [B,K,N], out [B,M,N],
  // floating, same dtype. Transposed operands (either of the last two strides
  // equal to 1) are passed to BLAS as flags, not copied. beta == 0 ignores out's contents.
  virtual void bmm(const Tensor& a, const Tensor& b, const Tensor& out, const Scalar& beta,
                   const Scalar& alpha) = 0;

  // ---- indexing ----
  // index is int64 and contiguous 1-D (index_select, index_add) or of out's shape (gather).
  virtual void index_select(const Tensor& in, int64_t dim, const Tensor& index, const Tensor& out) = 0;
  virtual void gather(const Tensor& in, int64_t dim, const Tensor& index, const Tensor& out) = 0;
  // In place on out: out[... index[i] ...] (=|+=) src[i]. src may be 0-stride (a scalar value).
  virtual void scatter(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                       ScatterReduce reduce) = 0;
  // In place on out: out.select(dim, index[i]) += alpha * src.select(dim, i).
  virtual void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                         const Scalar& alpha) = 0;
  virtual void flip(const Tensor& in, IntArrayRef dims, const Tensor& out) = 0;

  // ---- convolution ----

  // ---- pooling ----

  // ---- interpolation ----

  // ---- normalization ----
};

Backend& backend(DeviceType type);
inline Backend& backend(Device device) { return backend(device.type()); }
inline Backend& backend_of(const Tensor& t) { return backend(t.device().type()); }
// Backends register themselves at load time (the CPU one always; CUDA when built).
void register_backend(DeviceType type, Backend* backend);
bool has_backend(DeviceType type);

}  // namespace kiln
