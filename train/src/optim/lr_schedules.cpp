// The schedules' closed forms. Each line follows the reference's Python
// expression operation by operation (ints converted to double where Python
// converts them), so the lrs agree to the bit; see lr_schedules.h.
#include "kiln/train/optim/lr_schedules.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace kiln::optim {

namespace {

// float(s) / float(max(1, W)): the warm-up ramp shared by the HF schedules.
double warmup_factor(int64_t step, int64_t warmup) {
  return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
}

// factor * (1 - rate) + rate with rate = min_lr / base_lr: the decay ends at
// min_lr instead of 0 (HF's min_lr_rate; a zero base lr stays zero).
double with_floor(double factor, double min_lr, double base_lr) {
  const double rate = base_lr == 0.0 ? 0.0 : min_lr / base_lr;
  return factor * (1 - rate) + rate;
}

void check_steps(const char* name, int64_t warmup, int64_t total) {
  KILN_CHECK(warmup >= 0, name, ": warmup_steps must be non-negative, got ", warmup);
  KILN_CHECK(total >= 0, name, ": total_steps must be non-negative, got ", total);
}

void check_step(const char* name, int64_t step) { KILN_CHECK(step >= 0, name, ": step must be non-negative, got ", step); }

}  // namespace

ConstantWithWarmupLR::ConstantWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps)
    : LRScheduler(optimizer), warmup_(warmup_steps) {
  check_steps("ConstantWithWarmupLR", warmup_steps, 0);
  apply();
}

double ConstantWithWarmupLR::lr_at(int64_t step, double base_lr) const {
  check_step("ConstantWithWarmupLR", step);
  return base_lr * (step < warmup_ ? warmup_factor(step, warmup_) : 1.0);
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma, int64_t warmup_steps)
    : LRScheduler(optimizer), step_size_(step_size), warmup_(warmup_steps), gamma_(gamma) {
  KILN_CHECK(step_size > 0, "StepLR: step_size must be positive, got ", step_size);
  check_steps("StepLR", warmup_steps, 0);
  apply();
}

double StepLR::lr_at(int64_t step, double base_lr) const {
  check_step("StepLR", step);
  const double lr = base_lr * std::pow(gamma_, static_cast<double>(step / step_size_));
  return step < warmup_ ? lr * warmup_factor(step, warmup_) : lr;
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma, int64_t warmup_steps)
    : LRScheduler(optimizer), milestones_(std::move(milestones)), warmup_(warmup_steps), gamma_(gamma) {
  check_steps("MultiStepLR", warmup_steps, 0);
  std::sort(milestones_.begin(), milestones_.end());
  apply();
}

double MultiStepLR::lr_at(int64_t step, double base_lr) const {
  check_step("MultiStepLR", step);
  // bisect_right: milestones at or before the step.
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
  const double lr = base_lr * std::pow(gamma_, static_cast<double>(passed));
  return step < warmup_ ? lr * warmup_factor(step, warmup_) : lr;
}

LinearWithWarmupLR::LinearWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps,
                                       double min_lr)
    : LRScheduler(optimizer), warmup_(warmup_steps), total_(total_steps), min_lr_(min_lr) {
  check_steps("LinearWithWarmupLR", warmup_steps, total_steps);
  KILN_CHECK(min_lr >= 0.0, "LinearWithWarmupLR: min_lr must be non-negative, got ", min_lr);
  apply();
}

double LinearWithWarmupLR::lr_at(int64_t step, double base_lr) const {
  check_step("LinearWithWarmupLR", step);
  if (step < warmup_) return base_lr * warmup_factor(step, warmup_);
  const double factor = std::max(0.0, static_cast<double>(total_ - step) /
                                          static_cast<double>(std::max<int64_t>(1, total_ - warmup_)));
  return base_lr * with_floor(factor, min_lr_, base_lr);
}

CosineWithWarmupLR::CosineWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps,
                                       double min_lr, double num_cycles)
    : LRScheduler(optimizer), warmup_(warmup_steps), total_(total_steps), min_lr_(min_lr), num_cycles_(num_cycles) {
  check_steps("CosineWithWarmupLR", warmup_steps, total_steps);
  KILN_CHECK(min_lr >= 0.0, "CosineWithWarmupLR: min_lr must be non-negative, got ", min_lr);
  apply();
}

double CosineWithWarmupLR::lr_at(int64_t step, double base_lr) const {
  check_step("CosineWithWarmupLR", step);
  if (step < warmup_) return base_lr * warmup_factor(step, warmup_);
  const double progress =
      static_cast<double>(step - warmup_) / static_cast<double>(std::max<int64_t>(1, total_ - warmup_));
  const double factor = 0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles_ * 2.0 * progress));
  return base_lr * std::max(0.0, with_floor(factor, min_lr_, base_lr));
}

PolynomialWithWarmupLR::PolynomialWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps,
                                               double lr_end, double power)
    : LRScheduler(optimizer), warmup_(warmup_steps), total_(total_steps), lr_end_(lr_end), power_(power) {
  check_steps("PolynomialWithWarmupLR", warmup_steps, total_steps);
  KILN_CHECK(total_steps > warmup_steps, "PolynomialWithWarmupLR: total_steps (", total_steps,
             ") must exceed warmup_steps (", warmup_steps, ")");
  for (size_t g = 0; g < base_lrs().size(); ++g)
    KILN_CHECK(base_lrs()[g] > lr_end, "PolynomialWithWarmupLR: lr_end (", lr_end,
               ") must be smaller than initial lr (", base_lrs()[g], ") of parameter group ", g);
  apply();
}

double PolynomialWithWarmupLR::lr_at(int64_t step, double base_lr) const {
  check_step("PolynomialWithWarmupLR", step);
  KILN_CHECK(base_lr > lr_end_, "PolynomialWithWarmupLR: lr_end (", lr_end_, ") must be smaller than initial lr (",
             base_lr, ")");
  if (step < warmup_) return base_lr * warmup_factor(step, warmup_);
  if (step > total_) return base_lr * (lr_end_ / base_lr);
  const double lr_range = base_lr - lr_end_;
  const int64_t decay_steps = total_ - warmup_;
  const double pct_remaining = 1 - static_cast<double>(step - warmup_) / static_cast<double>(decay_steps);
  const double decay = lr_range * std::pow(pct_remaining, power_) + lr_end_;
  return base_lr * (decay / base_lr);
}

}  // namespace kiln::optim
