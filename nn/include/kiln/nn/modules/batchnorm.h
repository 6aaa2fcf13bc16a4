#pragma once
// BatchNorm1d / BatchNorm2d, as torch.nn's: batch statistics when training
// (updating the running ones), running statistics in eval mode. Buffers keep
// torch's names so checkpoints load: running_mean, running_var and the int64
// counter num_batches_tracked.
#include <cstdint>
#include <optional>

#include "kiln/nn/functional/normalization.h"
#include "kiln/nn/functional/options.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

struct BatchNormOptions {
  BatchNormOptions(int64_t num_features) : num_features_(num_features) {}  // NOLINT
  KILN_FUNC_ARG(int64_t, num_features, 0);
  KILN_FUNC_ARG(double, eps, 1e-5);
  // Weight of the new batch in the running averages; nullopt: a cumulative
  // average (1 / num_batches_tracked).
  KILN_FUNC_ARG(std::optional<double>, momentum, 0.1);
  KILN_FUNC_ARG(bool, affine, true);
  KILN_FUNC_ARG(bool, bias, true);  // with affine: learn a bias too
  KILN_FUNC_ARG(bool, track_running_stats, true);
};
using BatchNorm1dOptions = BatchNormOptions;
using BatchNorm2dOptions = BatchNormOptions;

// The shared implementation; the 1d/2d classes only check the input rank.
class BatchNormImplBase : public Module {
 public:
  explicit BatchNormImplBase(const BatchNormOptions& options);

  Tensor forward(const Tensor& input);
  void reset_running_stats();  // mean 0, var 1, count 0
  void reset_parameters();     // running stats, and weight = 1, bias = 0
  std::string extra_repr() const override;

  BatchNormOptions options;
  Tensor weight;               // [num_features], undefined without affine
  Tensor bias;                 // [num_features], undefined without affine or bias
  Tensor running_mean;         // [num_features], undefined without track_running_stats
  Tensor running_var;          // [num_features], likewise
  Tensor num_batches_tracked;  // int64 scalar, likewise

 protected:
  virtual void check_input_dim(const Tensor& input) const = 0;
};

class BatchNorm1dImpl : public BatchNormImplBase {
 public:
  explicit BatchNorm1dImpl(const BatchNormOptions& options) : BatchNormImplBase(options) {}
  explicit BatchNorm1dImpl(int64_t num_features) : BatchNormImplBase(BatchNormOptions(num_features)) {}

 protected:
  void check_input_dim(const Tensor& input) const override;  // [N, C] or [N, C, L]
};
KILN_MODULE(BatchNorm1d);

class BatchNorm2dImpl : public BatchNormImplBase {
 public:
  explicit BatchNorm2dImpl(const BatchNormOptions& options) : BatchNormImplBase(options) {}
  explicit BatchNorm2dImpl(int64_t num_features) : BatchNormImplBase(BatchNormOptions(num_features)) {}

 protected:
  void check_input_dim(const Tensor& input) const override;  // [N, C, H, W]
};
KILN_MODULE(BatchNorm2d);

}  // namespace kiln::nn
