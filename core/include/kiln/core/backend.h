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
#include <vector>

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

// Geometry of a 2-D convolution (NCHW), already validated by the native layer.
struct Conv2dParams {
  int64_t stride[2] = {1, 1};
  int64_t padding[2] = {0, 0};  // zeros, symmetric per spatial dim
  int64_t dilation[2] = {1, 1};
  int64_t groups = 1;
};

// Geometry of a 2-D pooling window (NCHW), already validated.
struct Pool2dParams {
  int64_t kernel[2] = {1, 1};
  int64_t stride[2] = {1, 1};
  int64_t padding[2] = {0, 0};
  int64_t dilation[2] = {1, 1};  // max pooling only
  bool count_include_pad = true;  // avg pooling only
  int64_t divisor_override = 0;   // avg pooling only; 0: none
};

enum class InterpolationMode : uint8_t { Nearest, Bilinear };

struct RandomSpec {
  RandomKind kind;
  double a = 0.0;  // Uniform: from;  Normal: mean;  Bernoulli: p;  RandInt: low
  double b = 1.0;  // Uniform: to;    Normal: std;   RandInt: high (exclusive)
  Tensor probabilities;  // Bernoulli with per-element p (same shape as out), else undefined
};

// One optimizer step's hyper-parameters, as torch.optim's single-tensor
// SGD and Adam/AdamW compute them (the rounding contract is in
// train/src/optim/fused_update.h).
struct SGDStep {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize;
  // First update of the momentum buffers: they become the gradient (after
  // weight decay), with no dampening, as torch.
  bool init_buffer;
};

struct AdamStep {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, maximize, decoupled;  // decoupled: AdamW's weight decay
  double step;  // the count after this update's increment, as torch's step tensor holds it
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
  // floating, same dtype (f16/bf16 only off the CPU, accumulating in f32).
  // Transposed operands (either of the last two strides
  // equal to 1) are passed to BLAS as flags, not copied. beta == 0 ignores out's contents.
  virtual void bmm(const Tensor& a, const Tensor& b, const Tensor& out, const Scalar& beta,
                   const Scalar& alpha) = 0;
  // out = a @ b + bias[n] on every row: a linear layer's matmul with its
  // bias (contiguous 1-D [N] of out's dtype); operands as bmm's. The default
  // writes the bias into out and runs bmm with beta 1; a device may add it
  // in the matmul's epilogue instead (CUDA: cuBLASLt's BIAS epilogue).
  virtual void bmm_bias(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& out);

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
  // All tensors contiguous, one floating dtype (f16/bf16 only on devices
  // other than the CPU, whose native layer widens them to f32 first). input [N, Cin, H, W], weight
  // [Cout, Cin/groups, kH, kW], out [N, Cout, Ho, Wo] (shape computed by the
  // native layer); bias [Cout] or undefined.
  virtual void conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                      const Tensor& out) = 0;
  // grad_input (overwritten) = d(conv2d)/d(input) applied to grad_out.
  virtual void conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Conv2dParams& p,
                                     const Tensor& grad_input) = 0;
  // grad_weight (overwritten) = d(conv2d)/d(weight) applied to grad_out;
  // grad_bias, when defined, = grad_out summed over N, Ho, Wo.
  virtual void conv2d_backward_weight(const Tensor& grad_out, const Tensor& input, const Conv2dParams& p,
                                      const Tensor& grad_weight, const Tensor& grad_bias) = 0;

  // ---- pooling ----
  // in [N, C, H, W] and out [N, C, Ho, Wo], contiguous, same floating dtype;
  // output sizes (ceil_mode included) computed by the native layer.
  // indices (int64, out's shape): flat h * W + w of each maximum in its plane.
  virtual void max_pool2d(const Tensor& in, const Pool2dParams& p, const Tensor& out, const Tensor& indices) = 0;
  // grad_in (overwritten, zero where no maximum came from).
  virtual void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_in) = 0;
  virtual void avg_pool2d(const Tensor& in, const Pool2dParams& p, const Tensor& out) = 0;
  virtual void avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_in) = 0;
  virtual void adaptive_avg_pool2d(const Tensor& in, const Tensor& out) = 0;
  virtual void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_in) = 0;

  // ---- interpolation ----
  // in [N, C, H, W] -> out [N, C, Ho, Wo], contiguous, same floating dtype.
  // scale_h/scale_w > 0: the user's scale factors, used for source
  // coordinates as torch does; 0: use the size ratio.
  virtual void upsample2d(InterpolationMode mode, const Tensor& in, bool align_corners, double scale_h,
                          double scale_w, const Tensor& out) = 0;
  // grad_in (overwritten) = adjoint of upsample2d applied to grad_out.
  virtual void upsample2d_backward(InterpolationMode mode, const Tensor& grad_out, bool align_corners,
                                   double scale_h, double scale_w, const Tensor& grad_in) = 0;

  // ---- normalization ----
  // Statistics (mean, rstd) are f32 for f32/f16/bf16 inputs and f64 for f64,
  // contiguous; in/out/grads contiguous; weight and bias may be undefined.
  // With an f16/bf16 input, weight, bias, running statistics and their
  // gradients may be f32 (as torch allows); parameter gradients come back in
  // the parameters' dtype.
  // Layer norm: in viewed as [M, D] rows; mean/rstd [M]; weight/bias [D].
  virtual void layer_norm(const Tensor& in, const Tensor& weight, const Tensor& bias, double eps, const Tensor& out,
                          const Tensor& mean, const Tensor& rstd) = 0;
  // Any of grad_in / grad_weight / grad_bias may be undefined (not needed); all overwritten.
  virtual void layer_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& weight, const Tensor& grad_in, const Tensor& grad_weight,
                                   const Tensor& grad_bias) = 0;
  // Group norm: in [N, C, *] with HxW = prod(*); mean/rstd [N, groups]; weight/bias [C].
  virtual void group_norm(const Tensor& in, const Tensor& weight, const Tensor& bias, int64_t groups, double eps,
                          const Tensor& out, const Tensor& mean, const Tensor& rstd) = 0;
  virtual void group_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& weight, int64_t groups, const Tensor& grad_in,
                                   const Tensor& grad_weight, const Tensor& grad_bias) = 0;
  // Batch norm statistics over (N, *) per channel of in [N, C, *]: mean [C]
  // and biased variance var [C] (stat dtype as above).
  virtual void batch_norm_stats(const Tensor& in, const Tensor& mean, const Tensor& var) = 0;
  // out = (in - mean[c]) * invstd[c] * weight[c] + bias[c]; mean/invstd [C].
  virtual void batch_norm_apply(const Tensor& in, const Tensor& mean, const Tensor& invstd, const Tensor& weight,
                                const Tensor& bias, const Tensor& out) = 0;
  // Training-mode backward (batch statistics): grads of in, weight, bias
  // (each may be undefined), given the forward's mean and invstd. Eval mode
  // calls it with grad_in undefined for the parameter gradients only; its
  // grad_in is batch_norm_apply of grad_out with a zero mean.
  virtual void batch_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean,
                                   const Tensor& invstd, const Tensor& weight, const Tensor& grad_in,
                                   const Tensor& grad_weight, const Tensor& grad_bias) = 0;

  // ---- optimizers ----
  // In place, one update of every tuple (params[i], grads[i], state[i]...):
  // the lists have one length; a tuple's tensors share a shape and a
  // floating dtype but may be strided. bufs entries are undefined when
  // momentum == 0; max_exp_avg_sqs entries are undefined unless amsgrad.
  // A device may run the whole list as one fused launch.
  virtual void sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                          const std::vector<Tensor>& bufs, const SGDStep& s) = 0;
  virtual void adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                           const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                           const std::vector<Tensor>& max_exp_avg_sqs, const AdamStep& s) = 0;

  // ---- multi-tensor reductions and scaling (gradient clipping, loss scaling) ----
  // The tensors of one call share a device and one floating dtype and may be
  // strided; "stat dtype" is f32 for f32/f16/bf16 and f64 for f64.
  // out[i] = the p-norm (p = 1, 2 or inf) of all elements of tensors[i], each
  // summed in a fixed order; out is contiguous 1-D of tensors.size() elements
  // in the stat dtype, on the tensors' device.
  virtual void foreach_norm(const std::vector<Tensor>& tensors, double p, const Tensor& out) = 0;
  // In place, tensors[i] *= scale[0]. scale is a 1-element tensor on the
  // tensors' device, read there, so a norm computed on the device is never
  // copied to the host.
  virtual void foreach_mul(const std::vector<Tensor>& tensors, const Tensor& scale) = 0;
  // GradScaler's unscale: tensors[i] *= inv_scale[0] in place, and found_inf[0]
  // is set to 1 if any element (before scaling) is inf or NaN, else left as it
  // was. inv_scale and found_inf are 1-element f32 tensors on the device.
  virtual void amp_unscale(const std::vector<Tensor>& tensors, const Tensor& inv_scale, const Tensor& found_inf) = 0;

  // ---- losses ----
  // Cross-entropy fused with log-softmax, per row i of logits [N, C]
  // (contiguous; f32/f64, and f16/bf16 off the CPU). With t = target[i]
  // (int64, contiguous [N], already checked to be in [0, C) or ignore_index),
  // w = weight (contiguous [C] in the stat dtype, or undefined: all ones),
  // ls = label_smoothing and lse = logsumexp of the row:
  //   loss[i] = (1 - ls) * w[t] * (lse - x[t]) + (ls / C) * sum_c w[c] * (lse - x[c])
  // and loss[i] = 0 where t == ignore_index. loss and lse are contiguous [N]
  // in the stat dtype.
  virtual void cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                             double label_smoothing, const Tensor& loss, const Tensor& lse) = 0;
  // grad_logits [N, C] (logits' dtype, contiguous, overwritten) = the gradient
  // of sum_i grad_loss[i] * loss[i], given the forward's lse; grad_loss is
  // contiguous [N] in the stat dtype.
  virtual void cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                                      const Tensor& weight, const Tensor& lse, int64_t ignore_index,
                                      double label_smoothing, const Tensor& grad_logits) = 0;
};

Backend& backend(DeviceType type);
inline Backend& backend(Device device) { return backend(device.type()); }
inline Backend& backend_of(const Tensor& t) { return backend(t.device().type()); }
// Backends register themselves at load time (the CPU one always; CUDA when built).
void register_backend(DeviceType type, Backend* backend);
bool has_backend(DeviceType type);

}  // namespace kiln
