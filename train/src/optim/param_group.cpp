// ParamGroup's constructors and the checked option lookup.
#include "kiln/train/optim/param_group.h"

namespace kiln::optim {

ParamGroup::ParamGroup(std::vector<Tensor> params_in, std::initializer_list<Option> options)
    : params(std::move(params_in)) {
  for (const auto& [key, value] : options) set(key, value);
}

ParamGroup::ParamGroup(std::vector<Tensor> params_in, const std::vector<Option>& options)
    : params(std::move(params_in)) {
  for (const auto& [key, value] : options) set(key, value);
}

double ParamGroup::get(const std::string& key) const {
  const double* v = options_.find(key);
  if (v == nullptr) {
    std::string known;
    for (const auto& item : options_) known += (known.empty() ? "" : ", ") + item.key;
    KILN_ERROR("ParamGroup: no option '", key, "' (the group has: ", known.empty() ? "none" : known, ")");
  }
  return *v;
}

}  // namespace kiln::optim
