#pragma once
// LayerNorm and GroupNorm, as torch.nn's (including the `bias` switch torch
// added for norms: affine with a weight only).
#include <cstdint>
#include <vector>

#include "kiln/nn/functional/normalization.h"
#include "kiln/nn/functional/options.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

struct LayerNormOptions {
  LayerNormOptions(std::vector<int64_t> normalized_shape) : normalized_shape_(std::move(normalized_shape)) {}  // NOLINT
  KILN_FUNC_ARG(std::vector<int64_t>, normalized_shape, {});
  KILN_FUNC_ARG(double, eps, 1e-5);
  KILN_FUNC_ARG(bool, elementwise_affine, true);
  KILN_FUNC_ARG(bool, bias, true);  // with elementwise_affine: learn a bias too
};

class LayerNormImpl : public Module {
 public:
  // LayerNorm(LayerNormOptions({768}).eps(1e-12)), or LayerNorm(std::vector<int64_t>{768}).
  explicit LayerNormImpl(LayerNormOptions options);

  // Normalises over the trailing normalized_shape dims.
  Tensor forward(const Tensor& input);
  void reset_parameters();  // weight = 1, bias = 0
  std::string extra_repr() const override;

  LayerNormOptions options;
  Tensor weight;  // normalized_shape, undefined without elementwise_affine
  Tensor bias;    // normalized_shape, undefined without elementwise_affine or bias
};
KILN_MODULE(LayerNorm);

struct GroupNormOptions {
  GroupNormOptions(int64_t num_groups, int64_t num_channels) : num_groups_(num_groups), num_channels_(num_channels) {}
  KILN_FUNC_ARG(int64_t, num_groups, 1);
  KILN_FUNC_ARG(int64_t, num_channels, 1);
  KILN_FUNC_ARG(double, eps, 1e-5);
  KILN_FUNC_ARG(bool, affine, true);
  KILN_FUNC_ARG(bool, bias, true);  // with affine: learn a bias too
};

class GroupNormImpl : public Module {
 public:
  GroupNormImpl(int64_t num_groups, int64_t num_channels) : GroupNormImpl(GroupNormOptions(num_groups, num_channels)) {}
  explicit GroupNormImpl(const GroupNormOptions& options);

  // input [N, num_channels, *].
  Tensor forward(const Tensor& input);
  void reset_parameters();  // weight = 1, bias = 0
  std::string extra_repr() const override;

  GroupNormOptions options;
  Tensor weight;  // [num_channels], undefined without affine
  Tensor bias;    // [num_channels], undefined without affine or bias
};
KILN_MODULE(GroupNorm);

}  // namespace kiln::nn
