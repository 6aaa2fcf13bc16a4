#pragma once
// Loss functions with torch.nn.functional semantics, composed from the
// differentiable kiln:: ops (so autograd, double backward included, comes for
// free). Options structs mirror libtorch's F::*FuncOptions with chained
// setters:
//   F::cross_entropy(x, y, F::CrossEntropyFuncOptions().ignore_index(0).label_smoothing(0.1));
#include <cstdint>

#include "kiln/autograd/functions.h"
#include "kiln/nn/functional/options.h"

namespace kiln::nn::functional {

enum class Reduction { None, Mean, Sum };


struct CrossEntropyFuncOptions {
  KILN_FUNC_ARG(Tensor, weight, Tensor());  // [C] per-class rescaling; undefined = all ones
  KILN_FUNC_ARG(int64_t, ignore_index, -100);
  KILN_FUNC_ARG(Reduction, reduction, Reduction::Mean);
  KILN_FUNC_ARG(double, label_smoothing, 0.0);
};

struct NLLLossFuncOptions {
  KILN_FUNC_ARG(Tensor, weight, Tensor());
  KILN_FUNC_ARG(int64_t, ignore_index, -100);
  KILN_FUNC_ARG(Reduction, reduction, Reduction::Mean);
};

struct BinaryCrossEntropyWithLogitsFuncOptions {
  KILN_FUNC_ARG(Tensor, weight, Tensor());      // broadcast against the loss
  KILN_FUNC_ARG(Tensor, pos_weight, Tensor());  // broadcast over the last (class) dim
  KILN_FUNC_ARG(Reduction, reduction, Reduction::Mean);
};

struct MSELossFuncOptions {
  MSELossFuncOptions() = default;
  MSELossFuncOptions(Reduction r) : reduction_(r) {}  // NOLINT: F::mse_loss(x, y, Reduction::Sum)
  KILN_FUNC_ARG(Reduction, reduction, Reduction::Mean);
};

struct L1LossFuncOptions {
  L1LossFuncOptions() = default;
  L1LossFuncOptions(Reduction r) : reduction_(r) {}  // NOLINT
  KILN_FUNC_ARG(Reduction, reduction, Reduction::Mean);
};

struct SmoothL1LossFuncOptions {
  SmoothL1LossFuncOptions() = default;
  SmoothL1LossFuncOptions(Reduction r) : reduction_(r) {}  // NOLINT
  KILN_FUNC_ARG(Reduction, reduction, Reduction::Mean);
  KILN_FUNC_ARG(double, beta, 1.0);
};

// input: logits [N, C, d1...] or unbatched [C]. target: class indices (int64,
// [N, d1...] or 0-dim) or, when its shape equals input's, class probabilities
// (floating point).
Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyFuncOptions& options = {});
// input: log-probabilities [N, C, d1...] or [C]; target: int64 class indices.
Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossFuncOptions& options = {});
// target has input's shape; log(1 + exp(-|x|)) form, stable for any logit.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const BinaryCrossEntropyWithLogitsFuncOptions& options = {});
// input and target broadcast (as torch does, which only warns).
Tensor mse_loss(const Tensor& input, const Tensor& target, const MSELossFuncOptions& options = {});
Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossFuncOptions& options = {});
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossFuncOptions& options = {});

}  // namespace kiln::nn::functional
