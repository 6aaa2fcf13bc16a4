#pragma once
// Adam (with L2 weight decay added to the gradient, and AMSGrad) and AdamW
// (decoupled weight decay), as torch.optim.Adam / AdamW on CPU tensors (the
// single-tensor path): the same operations in the same order, rounded the
// same way, with the bias corrections computed in double as Python floats.
//
// Per parameter with gradient g (d = -g when maximize), t = step count:
//   p = p * (1 - lr * weight_decay)          AdamW
//   d = d + weight_decay * p                 Adam, weight_decay != 0
//   m = lerp(m, d, 1 - beta1)
//   v = beta2 * v + (1 - beta2) * d * d
//   vmax = max(vmax, v); use vmax for v      amsgrad
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p = p - lr / (1 - beta1^t) * m / denom
//
// The one known difference from torch: torch builds with MKL take sqrt from
// MKL's vector library, which rounds differently from a correctly rounded
// sqrt in under 1% of elements (by one ulp); Kiln's sqrt is correctly
// rounded, as torch's is without MKL.
#include <vector>

#include "kiln/train/optim/optimizer.h"

namespace kiln::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options = {});
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options = {});

  const char* name() const override { return decoupled_ ? "AdamW" : "Adam"; }

 protected:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options, bool decoupled);
  void step_group(ParamGroup& group) override;
  std::vector<std::string> state_names(const ParamGroup& group) const override;
  void check_options(const ParamGroup& group, const std::string& where) const override;

 private:
  bool decoupled_;
};

// AdamOptions with torch's AdamW default weight decay, 1e-2 (a separate
// aggregate so designated initializers work for both).
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = {});
};

}  // namespace kiln::optim
