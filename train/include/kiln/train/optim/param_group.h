#pragma once
// A parameter group: tensors updated with one set of hyperparameters, as a
// dict in torch.optim's param_groups. Hyperparameters are named numbers
// (booleans as 0/1) rather than a struct per optimizer, so a group built by
// a helper (weight decay off for biases, a layer's lr_scale) fits any
// optimizer, and a state dict stores every one as a 0-dim tensor without
// knowing which optimizer wrote it.
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/nn/ordered_dict.h"

namespace kiln::optim {

class ParamGroup {
 public:
  using Option = std::pair<std::string, double>;

  ParamGroup() = default;
  // Options left out take the optimizer's defaults when the group is added.
  explicit ParamGroup(std::vector<Tensor> params, std::initializer_list<Option> options = {});
  ParamGroup(std::vector<Tensor> params, const std::vector<Option>& options);

  std::vector<Tensor> params;
  // Optional, parallel to params: the dotted names the helpers grouped by,
  // kept for messages and for anyone inspecting a group.
  std::vector<std::string> param_names;

  bool has(const std::string& key) const { return options_.contains(key); }
  // A missing key is an error naming it and the keys the group has.
  double get(const std::string& key) const;
  bool get_bool(const std::string& key) const { return get(key) != 0.0; }
  void set(const std::string& key, double value) { options_.insert_or_assign(key, value); }

  double lr() const { return get("lr"); }
  void set_lr(double lr) { set("lr", lr); }

  const nn::OrderedDict<double>& options() const { return options_; }

 private:
  nn::OrderedDict<double> options_;
};

}  // namespace kiln::optim
