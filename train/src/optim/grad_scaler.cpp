// GradScaler: torch.amp.GradScaler's stages and update rule. The scale and
// the growth count are host numbers; the inf/NaN check and the unscaling
// are one multi-tensor kernel per (device, dtype) of the gradients.
#include "kiln/train/optim/grad_scaler.h"

#include <cmath>

#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln::optim {

namespace {

Tensor f64_scalar(double v) { return native::scalar_tensor(v, TensorOptions().dtype(kFloat64)); }
Tensor i64_scalar(int64_t v) { return native::scalar_tensor(v, TensorOptions().dtype(kInt64)); }

const Tensor& entry(const nn::StateDict& dict, const char* key) {
  const Tensor* t = dict.find(key);
  KILN_CHECK(t != nullptr, "GradScaler.load_state_dict: missing key '", key, "'");
  KILN_CHECK(t->defined() && t->numel() == 1, "GradScaler.load_state_dict: '", key,
             "' must hold a single number, got a tensor of shape ", t->defined() ? t->sizes() : IntArrayRef{});
  return *t;
}

}  // namespace

GradScaler::GradScaler(const GradScalerOptions& options)
    : enabled_(options.enabled),
      growth_factor_(options.growth_factor),
      backoff_factor_(options.backoff_factor),
      growth_interval_(options.growth_interval),
      init_scale_(options.init_scale) {
  if (enabled_) {
    KILN_CHECK(growth_factor_ > 1.0, "GradScaler: The growth factor must be > 1.0. (got ", growth_factor_, ")");
    KILN_CHECK(backoff_factor_ < 1.0, "GradScaler: The backoff factor must be < 1.0. (got ", backoff_factor_, ")");
  }
}

void GradScaler::check_initialized(const char* what) const {
  KILN_CHECK(initialized_, "GradScaler: Attempted ", what,
             " but _scale is None.  This may indicate your script did not use scaler.scale(loss or outputs) "
             "earlier in the iteration.");
}

Tensor GradScaler::scale(const Tensor& outputs) {
  if (!enabled_) return outputs;
  KILN_CHECK(outputs.defined(), "GradScaler.scale: outputs is undefined");
  if (!initialized_) {
    scale_ = static_cast<float>(init_scale_);
    growth_tracker_ = static_cast<int32_t>(init_growth_tracker_);
    initialized_ = true;
  }
  return kiln::mul(outputs, native::scalar_tensor(scale_, TensorOptions().dtype(kFloat32).device(outputs.device())));
}

void GradScaler::unscale_(Optimizer& optimizer) {
  if (!enabled_) return;
  check_initialized("unscale_");
  OptimizerState& st = per_optimizer_[&optimizer];
  KILN_CHECK(st.stage != Stage::Unscaled,
             "GradScaler: unscale_() has already been called on this optimizer since the last update().");
  KILN_CHECK(st.stage != Stage::Stepped, "GradScaler: unscale_() is being called after step().");

  // Every gradient is checked before any is touched, as torch.
  std::vector<Tensor> grads;
  for (const ParamGroup& group : optimizer.param_groups()) {
    for (const Tensor& p : group.params) {
      const Tensor& g = p.grad();
      if (!g.defined()) continue;
      KILN_CHECK(g.dtype() != kFloat16, "GradScaler: Attempting to unscale FP16 gradients.");
      grads.push_back(g);
    }
  }
  // torch: self._scale.double().reciprocal().float()
  const float inv_scale = static_cast<float>(1.0 / static_cast<double>(scale_));
  st.found_inf.clear();
  st.found_inf_host.reset();
  // Per device, a 0-dim float32 flag set by the multi-tensor unscale (one
  // kernel per dtype of the device's gradients), as torch's
  // _amp_foreach_non_finite_check_and_unscale_; it scales even by 1.
  for (const native::TensorGroup& g : native::group_tensors(grads, /*by_dtype=*/false)) {
    const TensorOptions on_device = TensorOptions().dtype(kFloat32).device(g.device);
    Tensor found = native::zeros({}, on_device);
    native::amp_unscale_(g.tensors, native::scalar_tensor(inv_scale, on_device), found);
    st.found_inf.emplace_back(g.device, found);
  }
  st.stage = Stage::Unscaled;
}

bool GradScaler::found_inf(OptimizerState& st) {
  if (!st.found_inf_host) {
    bool any = false;
    for (const auto& [device, flag] : st.found_inf) any = any || flag.item<float>() != 0.0f;
    st.found_inf_host = any;
  }
  return *st.found_inf_host;
}

Tensor GradScaler::step(Optimizer& optimizer) {
  if (!enabled_) return optimizer.step();
  check_initialized("step");
  OptimizerState& st = per_optimizer_[&optimizer];
  KILN_CHECK(st.stage != Stage::Stepped, "GradScaler: step() has already been called since the last update().");
  if (st.stage == Stage::Ready) unscale_(optimizer);
  KILN_CHECK(!st.found_inf.empty(), "GradScaler: No inf checks were recorded for this optimizer.");
  Tensor result;
  if (!found_inf(st)) result = optimizer.step();
  st.stage = Stage::Stepped;
  return result;
}

void GradScaler::update() {
  if (!enabled_) return;
  check_initialized("update");
  bool recorded = false, found = false;
  for (auto& [opt, st] : per_optimizer_) {
    if (st.found_inf.empty()) continue;
    recorded = true;
    found = found_inf(st) || found;
  }
  KILN_CHECK(recorded, "GradScaler: No inf checks were recorded prior to update.");
  // torch's _amp_update_scale_: new scales in double, stored as float32.
  if (found) {
    scale_ = static_cast<float>(static_cast<double>(scale_) * backoff_factor_);
    growth_tracker_ = 0;
  } else {
    const int64_t successful = static_cast<int64_t>(growth_tracker_) + 1;
    if (successful == growth_interval_) {
      const float grown = static_cast<float>(static_cast<double>(scale_) * growth_factor_);
      if (std::isfinite(grown)) scale_ = grown;
      growth_tracker_ = 0;
    } else {
      growth_tracker_ = static_cast<int32_t>(successful);
    }
  }
  per_optimizer_.clear();
}

void GradScaler::update(double new_scale) {
  if (!enabled_) return;
  check_initialized("update");
  scale_ = static_cast<float>(new_scale);
  per_optimizer_.clear();
}

double GradScaler::get_scale() const {
  if (!enabled_) return 1.0;
  return initialized_ ? static_cast<double>(scale_) : init_scale_;
}

int64_t GradScaler::get_growth_tracker() const {
  if (!enabled_) return 0;
  return initialized_ ? growth_tracker_ : init_growth_tracker_;
}

nn::StateDict GradScaler::state_dict() const {
  nn::StateDict d;
  if (!enabled_) return d;
  d.insert("scale", f64_scalar(get_scale()));
  d.insert("growth_factor", f64_scalar(growth_factor_));
  d.insert("backoff_factor", f64_scalar(backoff_factor_));
  d.insert("growth_interval", i64_scalar(growth_interval_));
  d.insert("_growth_tracker", i64_scalar(get_growth_tracker()));
  return d;
}

void GradScaler::load_state_dict(const nn::StateDict& dict) {
  if (!enabled_) return;
  KILN_CHECK(dict.size() != 0, "GradScaler: The source state dict is empty, possibly because it was saved from a ",
             "disabled instance of GradScaler.");
  // Read everything before changing anything.
  const double scale = entry(dict, "scale").item<double>();
  const double growth = entry(dict, "growth_factor").item<double>();
  const double backoff = entry(dict, "backoff_factor").item<double>();
  const int64_t interval = entry(dict, "growth_interval").item<int64_t>();
  const int64_t tracker = entry(dict, "_growth_tracker").item<int64_t>();
  init_scale_ = scale;
  growth_factor_ = growth;
  backoff_factor_ = backoff;
  growth_interval_ = interval;
  init_growth_tracker_ = tracker;
  if (initialized_) {
    scale_ = static_cast<float>(scale);
    growth_tracker_ = static_cast<int32_t>(tracker);
  }
}

}  // namespace kiln::optim
