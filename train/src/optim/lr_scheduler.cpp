// LRScheduler: the step counter, base lrs, applying lrs to the groups, and
// the state dict.
#include "kiln/train/optim/lr_scheduler.h"

#include <cmath>

#include "kiln/core/native.h"

namespace kiln::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(&optimizer) {
  for (const auto& g : optimizer.param_groups()) base_lrs_.push_back(g.lr());
}

std::vector<double> LRScheduler::lrs_at(int64_t step) const {
  KILN_CHECK(step >= 0, "LRScheduler: step must be non-negative, got ", step);
  const auto& groups = optimizer_->param_groups();
  KILN_CHECK(groups.size() == base_lrs_.size(), "LRScheduler: the optimizer has ", groups.size(),
             " parameter groups but the scheduler was made for ", base_lrs_.size());
  std::vector<double> lrs;
  lrs.reserve(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) lrs.push_back(lr_at(step, base_lrs_[g]) * groups[g].get("lr_scale"));
  return lrs;
}

void LRScheduler::step() {
  ++step_;
  apply();
}

void LRScheduler::apply() {
  const std::vector<double> lrs = lrs_at(step_);
  auto& groups = optimizer_->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) groups[g].set_lr(lrs[g]);
}

nn::StateDict LRScheduler::state_dict() const {
  nn::StateDict out;
  out.insert("step", native::scalar_tensor(step_, TensorOptions().dtype(kInt64)));
  out.insert("base_lrs", native::tensor(base_lrs_, TensorOptions().dtype(kFloat64)));
  return out;
}

void LRScheduler::load_state_dict(const nn::StateDict& dict) {
  for (const auto& item : dict)
    KILN_CHECK(item.key == "step" || item.key == "base_lrs", "LRScheduler.load_state_dict: unexpected key '",
               item.key, "' (expected step, base_lrs)");
  const Tensor* step = dict.find("step");
  const Tensor* base = dict.find("base_lrs");
  KILN_CHECK(step != nullptr, "LRScheduler.load_state_dict: missing key 'step'");
  KILN_CHECK(base != nullptr, "LRScheduler.load_state_dict: missing key 'base_lrs'");
  KILN_CHECK(step->numel() == 1, "LRScheduler.load_state_dict: 'step' must hold a single number, got shape ",
             step->sizes());
  const double s = step->item<double>();
  KILN_CHECK(s >= 0 && std::floor(s) == s, "LRScheduler.load_state_dict: 'step' must be a non-negative whole number, got ",
             s);
  const size_t groups = optimizer_->param_groups().size();
  KILN_CHECK(base->dim() == 1 && static_cast<size_t>(base->numel()) == groups,
             "LRScheduler.load_state_dict: 'base_lrs' has shape ", base->sizes(), " but the optimizer has ", groups,
             " parameter groups");
  const Tensor b = native::contiguous(native::to(native::to(*base, Device(kCPU)), kFloat64));
  const double* v = b.data_ptr<double>();
  base_lrs_.assign(v, v + groups);
  step_ = static_cast<int64_t>(s);
  apply();
}

}  // namespace kiln::optim
