#pragma once
// The CUDA backend. Kernels run on the current stream of the tensors'
// device (kiln/cuda/stream.h) and are asynchronous: results are observed
// through copy() to the CPU. Each family lives in its own file under
// kernels/; the comment above each group names it.
#include "kiln/core/backend.h"

namespace kiln::cuda {

class CudaBackend final : public Backend {
 public:
  DeviceType type() const override { return kCUDA; }
  Storage allocate(size_t nbytes, Device device) override;  // allocator/
  void synchronize(Device device) override;  // backend_registration.cpp

  // kernels/copy.cu (transfers), kernels/fill.cu
  void copy(const Tensor& src, const Tensor& dst, bool non_blocking) override;
  void fill(const Tensor& out, const Scalar& value) override;
  void arange(const Tensor& out, const Scalar& start, const Scalar& step) override;
  void linspace(const Tensor& out, const Scalar& start, const Scalar& end) override;
  // kernels/random.cu
  void random(const Tensor& out, const RandomSpec& spec, uint64_t seed, uint64_t offset) override;
  // kernels/unary.cu, kernels/binary.cu, kernels/where_clamp.cu
  void unary(UnaryOp op, const Tensor& in, const Tensor& out) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void clamp(const Tensor& in, const std::optional<Scalar>& min, const std::optional<Scalar>& max,
             const Tensor& out) override;
  // kernels/reduce.cu, kernels/arg_reduce.cu
  void reduce(ReduceOp op, const Tensor& in, const Tensor& out) override;
  void arg_reduce(ArgReduceOp op, const Tensor& in, int64_t dim, const Tensor& values, const Tensor& indices) override;
  // kernels/softmax.cu
  void softmax(const Tensor& in, int64_t dim, bool log, const Tensor& out) override;
  void softmax_backward(const Tensor& grad_out, const Tensor& out, int64_t dim, bool log,
                        const Tensor& grad_in) override;
  // kernels/matmul_lt.cpp (cuBLASLt)
  void bmm(const Tensor& a, const Tensor& b, const Tensor& out, const Scalar& beta, const Scalar& alpha) override;
  void bmm_bias(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& out) override;
  // kernels/index.cu
  void index_select(const Tensor& in, int64_t dim, const Tensor& index, const Tensor& out) override;
  void gather(const Tensor& in, int64_t dim, const Tensor& index, const Tensor& out) override;
  void scatter(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, ScatterReduce reduce) override;
  void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, const Scalar& alpha) override;
  void flip(const Tensor& in, IntArrayRef dims, const Tensor& out) override;
  // kernels/conv_cudnn.cpp (cuDNN)
  void conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              const Tensor& out) override;
  void conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Conv2dParams& p,
                             const Tensor& grad_input) override;
  void conv2d_backward_weight(const Tensor& grad_out, const Tensor& input, const Conv2dParams& p,
                              const Tensor& grad_weight, const Tensor& grad_bias) override;
  // kernels/pool.cu
  void max_pool2d(const Tensor& in, const Pool2dParams& p, const Tensor& out, const Tensor& indices) override;
  void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_in) override;
  void avg_pool2d(const Tensor& in, const Pool2dParams& p, const Tensor& out) override;
  void avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_in) override;
  void adaptive_avg_pool2d(const Tensor& in, const Tensor& out) override;
  void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_in) override;
  // kernels/interpolate.cu
  void upsample2d(InterpolationMode mode, const Tensor& in, bool align_corners, double scale_h, double scale_w,
                  const Tensor& out) override;
  void upsample2d_backward(InterpolationMode mode, const Tensor& grad_out, bool align_corners, double scale_h,
                           double scale_w, const Tensor& grad_in) override;
  // kernels/layer_norm.cu, kernels/group_norm.cu, kernels/batch_norm.cu
  void layer_norm(const Tensor& in, const Tensor& weight, const Tensor& bias, double eps, const Tensor& out,
                  const Tensor& mean, const Tensor& rstd) override;
  void layer_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean, const Tensor& rstd,
                           const Tensor& weight, const Tensor& grad_in, const Tensor& grad_weight,
                           const Tensor& grad_bias) override;
  void group_norm(const Tensor& in, const Tensor& weight, const Tensor& bias, int64_t groups, double eps,
                  const Tensor& out, const Tensor& mean, const Tensor& rstd) override;
  void group_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean, const Tensor& rstd,
                           const Tensor& weight, int64_t groups, const Tensor& grad_in, const Tensor& grad_weight,
                           const Tensor& grad_bias) override;
  void batch_norm_stats(const Tensor& in, const Tensor& mean, const Tensor& var) override;
  void batch_norm_apply(const Tensor& in, const Tensor& mean, const Tensor& invstd, const Tensor& weight,
                        const Tensor& bias, const Tensor& out) override;
  void batch_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean, const Tensor& invstd,
                           const Tensor& weight, const Tensor& grad_in, const Tensor& grad_weight,
                           const Tensor& grad_bias) override;
  // kernels/optim.cu (multi-tensor)
  void sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                  const std::vector<Tensor>& bufs, const SGDStep& s) override;
  void adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                   const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                   const std::vector<Tensor>& max_exp_avg_sqs, const AdamStep& s) override;
  // kernels/foreach.cu (multi-tensor)
  void foreach_norm(const std::vector<Tensor>& tensors, double p, const Tensor& out) override;
  void foreach_mul(const std::vector<Tensor>& tensors, const Tensor& scale) override;
  void amp_unscale(const std::vector<Tensor>& tensors, const Tensor& inv_scale, const Tensor& found_inf) override;
  // kernels/cross_entropy.cu
  void cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                     double label_smoothing, const Tensor& loss, const Tensor& lse) override;
  void cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                              const Tensor& weight, const Tensor& lse, int64_t ignore_index, double label_smoothing,
                              const Tensor& grad_logits) override;
};

}  // namespace kiln::cuda
