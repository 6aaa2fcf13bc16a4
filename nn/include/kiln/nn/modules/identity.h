#pragma once
// Identity: returns its input; a placeholder where a model has an optional
// layer (a head, a norm) so the structure and names stay the same.
#include "kiln/nn/module.h"

namespace kiln::nn {

class IdentityImpl : public Module {
 public:
  Tensor forward(const Tensor& input) { return input; }
};
KILN_MODULE(Identity);

}  // namespace kiln::nn
