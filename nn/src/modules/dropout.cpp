#include "kiln/nn/modules/dropout.h"

#include <cmath>
#include <cstdio>

#include "kiln/nn/repr.h"

namespace kiln::nn {

DropoutImpl::DropoutImpl(const DropoutOptions& options_) : options(options_) {
  KILN_CHECK(options.p() >= 0.0 && options.p() <= 1.0, "Dropout: dropout probability has to be between 0 and 1, but got ",
             options.p());
}

Tensor DropoutImpl::forward(const Tensor& input) { return functional::dropout(input, options.p(), is_training()); }

std::string DropoutImpl::extra_repr() const { return "p=" + repr::number(options.p()); }

DropPathImpl::DropPathImpl(const DropPathOptions& options_) : options(options_) {
  KILN_CHECK(options.drop_prob() >= 0.0 && options.drop_prob() <= 1.0,
             "DropPath: drop_prob has to be between 0 and 1, but got ", options.drop_prob());
}

Tensor DropPathImpl::forward(const Tensor& input) {
  return functional::drop_path(input, options.drop_prob(), is_training(), options.scale_by_keep());
}

std::string DropPathImpl::extra_repr() const {
  // timm prints round(p, 3) with three decimals.
  char buf[64];
  std::snprintf(buf, sizeof(buf), "drop_prob=%.3f", options.drop_prob());
  return buf;
}

}  // namespace kiln::nn
