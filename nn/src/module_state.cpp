// state_dict() and load_state_dict(): checkpoints by dotted name, with
// torch's rules for which tensors are saved and how mismatches are reported.
#include <sstream>

#include "kiln/autograd/grad_mode.h"
#include "kiln/core/error.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

void Module::collect_state(const std::string& prefix, bool keep_vars, StateDict& out) const {
  auto add = [&](const std::string& name, const Tensor& t) {
    if (t.defined()) out.insert(prefix + name, keep_vars ? t : t.detach());
  };
  for (const auto& item : parameters_) add(item.key, item.value);
  for (const auto& item : buffers_) {
    if (is_persistent_buffer(item.key)) add(item.key, item.value);
  }
  // No de-duplication: a shared module or tied weight is saved under every
  // name, so a checkpoint loads into a model that does not share it.
  for (const auto& item : children_) item.value->collect_state(prefix + item.key + ".", keep_vars, out);
}

StateDict Module::state_dict(const std::string& prefix, bool keep_vars) const {
  StateDict out;
  collect_state(prefix, keep_vars, out);
  return out;
}

namespace {
std::string quoted_list(const std::vector<std::string>& keys) {
  std::ostringstream os;
  for (size_t i = 0; i < keys.size(); ++i) os << (i ? ", " : "") << '"' << keys[i] << '"';
  return os.str();
}
}  // namespace

LoadStateDictResult Module::load_state_dict(const StateDict& state_dict, bool strict) {
  const StateDict targets = this->state_dict("", /*keep_vars=*/true);
  LoadStateDictResult result;
  std::vector<std::string> problems;  // shape mismatches and undefined values
  for (const auto& item : targets) {
    const Tensor* source = state_dict.find(item.key);
    if (source == nullptr) {
      result.missing_keys.push_back(item.key);
    } else if (!source->defined()) {
      problems.push_back(detail::str("undefined tensor for ", item.key, " in the checkpoint"));
    } else if (!source->sizes().equals(item.value.sizes())) {
      problems.push_back(detail::str("size mismatch for ", item.key, ": copying a param with shape ",
                                     source->sizes(), " from checkpoint, the shape in current model is ",
                                     item.value.sizes(), "."));
    }
  }
  for (const auto& item : state_dict) {
    if (!targets.contains(item.key)) result.unexpected_keys.push_back(item.key);
  }

  std::vector<std::string> errors;
  if (strict && !result.missing_keys.empty()) {
    errors.push_back("Missing key(s) in state_dict: " + quoted_list(result.missing_keys) + ". ");
  }
  if (strict && !result.unexpected_keys.empty()) {
    errors.push_back("Unexpected key(s) in state_dict: " + quoted_list(result.unexpected_keys) + ". ");
  }
  errors.insert(errors.end(), problems.begin(), problems.end());
  if (!errors.empty()) {
    std::ostringstream os;
    os << "Error(s) in loading state_dict for " << name() << ":";
    for (const auto& e : errors) os << "\n\t" << e;
    KILN_ERROR(os.str());
  }

  // Only now write anything, so a failed load leaves the module as it was.
  NoGradGuard no_grad;
  for (const auto& item : targets) {
    const Tensor* source = state_dict.find(item.key);
    if (source == nullptr || source->is_same(item.value)) continue;
    Tensor target = item.value;
    target.copy_(*source);
  }
  return result;
}

}  // namespace kiln::nn
