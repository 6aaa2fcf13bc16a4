#pragma once
// Linear: y = x W^T + b, as torch.nn.Linear.
#include <cstdint>

#include "kiln/nn/functional/options.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  KILN_FUNC_ARG(int64_t, in_features, 0);
  KILN_FUNC_ARG(int64_t, out_features, 0);
  KILN_FUNC_ARG(bool, bias, true);
};

class LinearImpl : public Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features) : LinearImpl(LinearOptions(in_features, out_features)) {}
  explicit LinearImpl(const LinearOptions& options);

  // x [..., in_features] -> [..., out_features].
  Tensor forward(const Tensor& input);
  // PyTorch's defaults: weight ~ kaiming_uniform_(a = sqrt(5)), i.e.
  // U(-1/sqrt(in), 1/sqrt(in)), and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
  void reset_parameters();
  std::string extra_repr() const override;

  LinearOptions options;
  Tensor weight;  // [out_features, in_features]
  Tensor bias;    // [out_features], undefined without bias
};
KILN_MODULE(Linear);

}  // namespace kiln::nn
