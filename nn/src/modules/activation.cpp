#include "kiln/nn/modules/activation.h"

namespace kiln::nn {

GELUImpl::GELUImpl(const GELUOptions& options_) : options(options_) {
  KILN_CHECK(options.approximate() == "none" || options.approximate() == "tanh",
             "GELU: approximate must be 'none' or 'tanh', got '", options.approximate(), "'");
}

}  // namespace kiln::nn
