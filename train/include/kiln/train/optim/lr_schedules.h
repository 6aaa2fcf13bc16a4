#pragma once
// The schedules. Each lr_at is a closed form of the step s, written with the
// same floating-point operations, in the same order, as the reference it
// names, so the lrs agree to the bit.
//
// Warm-up (every *WithWarmup schedule, W = warmup_steps, as Hugging Face):
//   s < W:  factor = s / max(1, W)
// so step 0 runs with lr 0 when W > 0 (its update still moves Adam's
// moments), and step W is the first at the full base lr. Kiln keeps this
// rather than starting at base_lr / W, so runs match HF's Trainer.
//
// min_lr (linear and cosine, T = total_steps): the decay goes from base_lr
// down to min_lr instead of 0, as timm's lr_min and HF's
// get_cosine_with_min_lr_schedule_with_warmup:
//   rate = min_lr / base_lr,  factor' = factor * (1 - rate) + rate
// (min_lr = 0 gives exactly HF's schedules without a minimum).
#include <cstdint>
#include <vector>

#include "kiln/train/optim/lr_scheduler.h"

namespace kiln::optim {

// HF get_constant_schedule_with_warmup:
//   lr = base_lr * (s < W ? s / max(1, W) : 1)
class ConstantWithWarmupLR : public LRScheduler {
 public:
  explicit ConstantWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps = 0);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  int64_t warmup_;
};

// torch.optim.lr_scheduler.StepLR's closed form:
//   lr = base_lr * gamma ^ floor(s / step_size)
// times the linear warm-up factor s / max(1, W) while s < W (W = 0: none,
// exactly torch's StepLR).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1, int64_t warmup_steps = 0);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  int64_t step_size_, warmup_;
  double gamma_;
};

// torch.optim.lr_scheduler.MultiStepLR's closed form:
//   lr = base_lr * gamma ^ (number of milestones <= s)
// (milestones in any order; a repeated milestone counts twice, as torch),
// times the linear warm-up factor s / max(1, W) while s < W: with W > 0 this
// is BiT-HyperRule's schedule (warm-up, then /10 at 30%, 60%, 90%).
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1, int64_t warmup_steps = 0);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  std::vector<int64_t> milestones_;  // sorted
  int64_t warmup_;
  double gamma_;
};

// HF get_linear_schedule_with_warmup, with min_lr:
//   s >= W:  factor = max(0, (T - s) / max(1, T - W))
// then min_lr as in the file comment; past T the lr stays at min_lr.
class LinearWithWarmupLR : public LRScheduler {
 public:
  LinearWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double min_lr = 0.0);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  int64_t warmup_, total_;
  double min_lr_;
};

// HF get_cosine_schedule_with_warmup (num_cycles 0.5: one half cosine), with min_lr:
//   s >= W:  progress = (s - W) / max(1, T - W)
//            factor = max(0, 0.5 * (1 + cos(pi * num_cycles * 2 * progress)))
// then min_lr as in the file comment (HF's min-lr variant clamps at 0 after
// adding the floor; identical results). As in HF, progress is not clamped:
// past T the cosine goes on (rising again for num_cycles = 0.5), so
// total_steps should be the run's length.
class CosineWithWarmupLR : public LRScheduler {
 public:
  CosineWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double min_lr = 0.0,
                     double num_cycles = 0.5);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  int64_t warmup_, total_;
  double min_lr_, num_cycles_;
};

// HF get_polynomial_decay_schedule_with_warmup (lr_init = the group's base lr):
//   W <= s <= T:  pct_remaining = 1 - (s - W) / (T - W)
//                 factor = ((lr_init - lr_end) * pct_remaining ^ power + lr_end) / lr_init
//   s > T:        factor = lr_end / lr_init
// power 1 is linear decay to lr_end. Requires T > W and every base lr > lr_end.
class PolynomialWithWarmupLR : public LRScheduler {
 public:
  PolynomialWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double lr_end = 1e-7,
                         double power = 1.0);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  int64_t warmup_, total_;
  double lr_end_, power_;
};

}  // namespace kiln::optim
