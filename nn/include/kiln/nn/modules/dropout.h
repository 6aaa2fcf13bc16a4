#pragma once
// Dropout and DropPath (stochastic depth, timm's): active in training mode
// only, drawing from Kiln's default generator.
#include "kiln/nn/functional/dropout.h"
#include "kiln/nn/functional/options.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

struct DropoutOptions {
  DropoutOptions(double p = 0.5) : p_(p) {}  // NOLINT
  KILN_FUNC_ARG(double, p, 0.5);
};

class DropoutImpl : public Module {
 public:
  explicit DropoutImpl(const DropoutOptions& options = {});
  explicit DropoutImpl(double p) : DropoutImpl(DropoutOptions(p)) {}

  // Zeroes elements with probability p and scales the rest by 1/(1-p) while
  // training; the identity in eval mode.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;

  DropoutOptions options;
};
KILN_MODULE(Dropout);

struct DropPathOptions {
  DropPathOptions(double drop_prob = 0.0) : drop_prob_(drop_prob) {}  // NOLINT
  KILN_FUNC_ARG(double, drop_prob, 0.0);
  KILN_FUNC_ARG(bool, scale_by_keep, true);
};

class DropPathImpl : public Module {
 public:
  explicit DropPathImpl(const DropPathOptions& options = {});
  explicit DropPathImpl(double drop_prob) : DropPathImpl(DropPathOptions(drop_prob)) {}

  // Drops whole samples (dim 0) with probability drop_prob while training.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;  // timm's: "drop_prob=0.100"

  DropPathOptions options;
};
KILN_MODULE(DropPath);

}  // namespace kiln::nn
