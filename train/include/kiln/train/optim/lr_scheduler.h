#pragma once
// Learning-rate schedules as pure functions of the step. A scheduler holds
// only a step counter and each group's base lr; lr_at(step, base_lr) is the
// whole schedule, so resuming needs just those two (state_dict) and never
// replays history.
//
// Usage, as torch and Hugging Face order it: construct after the optimizer
// (this sets the lrs for step 0), then call optimizer.step() and
// scheduler.step() once per training step; update k (counting from 0) runs
// with lr_at(k). A group's lr is lr_at(step, base_lr) * lr_scale, so
// layer-wise lr decay (param_groups_layer_decay) works through any schedule;
// lr_scale has no effect without a scheduler, as in timm and BEiT.
//
// Resuming: the optimizer's restored lrs are already scheduled values, so a
// new scheduler's base lrs are only right once its own state dict is
// loaded. A scheduler refers to its optimizer and must not outlive it.
#include <cstdint>
#include <vector>

#include "kiln/nn/ordered_dict.h"
#include "kiln/train/optim/optimizer.h"

namespace kiln::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // The schedule: the lr at `step` (>= 0) of a group whose base lr is
  // base_lr, before the group's lr_scale.
  virtual double lr_at(int64_t step, double base_lr) const = 0;
  // Each group's lr at `step`: lr_at(step, base_lr) * lr_scale.
  std::vector<double> lrs_at(int64_t step) const;

  // Advances one step and sets the groups' lrs for it.
  void step();
  // Sets the groups' lrs for the current step.
  void apply();

  // Steps taken so far (torch's last_epoch).
  int64_t last_step() const { return step_; }
  // The groups' lrs when the scheduler was made (or loaded).
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  Optimizer& optimizer() const { return *optimizer_; }

  // "step" (0-dim int64) and "base_lrs" (1-D float64, one per group).
  nn::StateDict state_dict() const;
  // Validates the keys and the group count, then applies the loaded step.
  void load_state_dict(const nn::StateDict& dict);

 protected:
  // Takes the groups' current lrs as base lrs. Derived constructors finish
  // with apply(), which calls lr_at (not callable from here).
  explicit LRScheduler(Optimizer& optimizer);

 private:
  Optimizer* optimizer_;
  std::vector<double> base_lrs_;
  int64_t step_ = 0;
};

}  // namespace kiln::optim
