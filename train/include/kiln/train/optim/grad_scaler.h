#pragma once
// Dynamic loss scaling for 16-bit training, as torch.amp.GradScaler:
//
//   kiln::optim::GradScaler scaler;
//   scaler.scale(loss).backward();   // gradients of loss * scale
//   scaler.unscale_(opt);            // optional: before clipping gradients
//   scaler.step(opt);                // unscales if needed; skips opt.step() on inf/NaN
//   scaler.update();                 // backoff after an inf/NaN, growth after a clean run
//
// unscale_ multiplies every gradient of the optimizer by 1/scale (the
// reciprocal taken in double and rounded to float32, as torch) and records,
// per device, whether any gradient held an inf or NaN before scaling. The
// check runs on the gradients' device with tensor ops; step() reads the
// result back once per device, and update() reuses that value.
//
// update(): after a step that found an inf/NaN the scale is multiplied by
// backoff_factor and the count of clean steps restarts at 0; otherwise the
// count goes up by one, and when it reaches growth_interval the scale is
// multiplied by growth_factor (kept only if finite) and the count restarts.
// The scale is a float32 value; each new one is computed in double and
// rounded to float32, as torch's kernel does.
//
// Misuse is an error, with torch's messages: step/update/unscale_ before
// any scale(), unscale_ twice or after step before update(), step twice
// before update(), update with no recorded inf checks, float16 gradients
// (whose unscaled values torch refuses to produce).
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/nn/ordered_dict.h"
#include "kiln/train/optim/optimizer.h"

namespace kiln::optim {

struct GradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;   // must be > 1
  double backoff_factor = 0.5;  // must be < 1
  int64_t growth_interval = 2000;
  bool enabled = true;  // false: scale() returns the loss, step() just steps
};

class GradScaler {
 public:
  explicit GradScaler(const GradScalerOptions& options = {});

  // outputs * scale, differentiable (a 0-dim float32 scale tensor on the
  // outputs' device, so a 0-dim 16-bit loss comes back float32, as torch).
  Tensor scale(const Tensor& outputs);
  void unscale_(Optimizer& optimizer);
  // Runs optimizer.step() unless an inf/NaN was found; returns its result
  // (undefined when skipped or when it returned none).
  Tensor step(Optimizer& optimizer);
  void update();
  // Sets the scale outright (torch's update(new_scale)), keeping the growth count.
  void update(double new_scale);

  // The current scale: 1 when disabled; init_scale before the first scale().
  double get_scale() const;
  int64_t get_growth_tracker() const;
  double get_growth_factor() const { return growth_factor_; }
  void set_growth_factor(double v) { growth_factor_ = v; }
  double get_backoff_factor() const { return backoff_factor_; }
  void set_backoff_factor(double v) { backoff_factor_ = v; }
  int64_t get_growth_interval() const { return growth_interval_; }
  void set_growth_interval(int64_t v) { growth_interval_ = v; }
  bool is_enabled() const { return enabled_; }

  // torch's keys, each a 0-dim tensor: scale, growth_factor, backoff_factor
  // (float64), growth_interval, _growth_tracker (int64). Empty when disabled.
  nn::StateDict state_dict() const;
  // A no-op when disabled; an empty dict is an error (saved while disabled).
  void load_state_dict(const nn::StateDict& dict);

 private:
  enum class Stage { Ready, Unscaled, Stepped };
  struct OptimizerState {
    Stage stage = Stage::Ready;
    // One 0-dim float32 flag per device that had gradients: 1 when any held an inf/NaN.
    std::vector<std::pair<Device, Tensor>> found_inf;
    std::optional<bool> found_inf_host;  // read back by step()
  };

  void check_initialized(const char* what) const;
  bool found_inf(OptimizerState& st);

  bool enabled_;
  double growth_factor_, backoff_factor_;
  int64_t growth_interval_;
  // torch keeps the scale and the count on the device; here they live on
  // the host (the found-inf flags are read there anyway) and the scale is
  // made a tensor where scale() needs it.
  double init_scale_;
  int64_t init_growth_tracker_ = 0;
  bool initialized_ = false;
  float scale_ = 0.0f;
  int32_t growth_tracker_ = 0;
  std::unordered_map<const Optimizer*, OptimizerState> per_optimizer_;
};

}  // namespace kiln::optim
