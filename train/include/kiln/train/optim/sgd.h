#pragma once
// Stochastic gradient descent with momentum, dampening, Nesterov momentum,
// L2 weight decay and maximize, as torch.optim.SGD on CPU tensors (the
// single-tensor path): the same operations in the same order, rounded the
// same way, so results agree with torch to the bit.
//
// Per parameter with gradient g (d = -g when maximize):
//   d = d + weight_decay * p                      if weight_decay != 0
//   buf = d (first step: a copy, no dampening)    if momentum != 0
//   buf = momentum * buf + (1 - dampening) * d    later steps
//   d = nesterov ? d + momentum * buf : buf
//   p = p - lr * d
#include <vector>

#include "kiln/train/optim/optimizer.h"

namespace kiln::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options = {});
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options = {});

  const char* name() const override { return "SGD"; }

 protected:
  void step_group(ParamGroup& group) override;
  std::vector<std::string> state_names(const ParamGroup& group) const override;
  void check_options(const ParamGroup& group, const std::string& where) const override;
};

}  // namespace kiln::optim
