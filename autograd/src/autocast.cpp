// Autocast state (thread-local, per device type), the region guard, the
// weight-cast cache, and the per-op argument casting the ops call.
#include "kiln/autograd/autocast.h"

#include <unordered_map>

#include "kiln/autograd/autograd_meta.h"
#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/core/error.h"

namespace kiln {

namespace {

struct DeviceState {
  bool enabled = false;
  DType dtype = kBFloat16;
};

// A cached lower-precision cast of a leaf weight. The source is held so its
// address cannot be reused by another tensor while the entry lives; the
// version and grad mode tell whether the cast is still the one an op would
// make now.
struct CacheEntry {
  Tensor source;
  Tensor cast;
  uint32_t version;
  bool grad_mode;
};

struct State {
  DeviceState devices[2];  // indexed by DeviceType
  bool cache_enabled = true;
  int nesting = 0;  // live guards on this thread
  std::unordered_map<const TensorImpl*, CacheEntry> cache;
};

thread_local State state;

DeviceState& device_state(DeviceType t) { return state.devices[t == kCUDA ? 1 : 0]; }

}  // namespace

bool is_autocast_enabled(DeviceType device_type) { return device_state(device_type).enabled; }
void set_autocast_enabled(DeviceType device_type, bool enabled) { device_state(device_type).enabled = enabled; }
DType get_autocast_dtype(DeviceType device_type) { return device_state(device_type).dtype; }

void set_autocast_dtype(DeviceType device_type, DType dtype) {
  KILN_CHECK(dtype == kBFloat16 || dtype == kFloat16, "autocast: the lower-precision dtype must be float16 or ",
             "bfloat16, got ", dtype_name(dtype));
  device_state(device_type).dtype = dtype;
}

bool is_autocast_cache_enabled() { return state.cache_enabled; }
void set_autocast_cache_enabled(bool enabled) { state.cache_enabled = enabled; }
void clear_autocast_cache() { state.cache.clear(); }

AutocastGuard::AutocastGuard(DeviceType device_type, DType dtype, bool enabled, bool cache_enabled)
    : device_type_(device_type),
      prev_enabled_(is_autocast_enabled(device_type)),
      prev_dtype_(get_autocast_dtype(device_type)),
      prev_cache_(is_autocast_cache_enabled()) {
  set_autocast_dtype(device_type, dtype);  // checks the dtype before anything changes
  set_autocast_enabled(device_type, enabled);
  set_autocast_cache_enabled(cache_enabled);
  ++state.nesting;
}

AutocastGuard::~AutocastGuard() {
  device_state(device_type_) = {prev_enabled_, prev_dtype_};
  state.cache_enabled = prev_cache_;
  if (--state.nesting == 0) clear_autocast_cache();
}

namespace autograd {

namespace {

bool eligible(const Tensor& t, DeviceType device_type) {
  return t.defined() && is_floating_point(t.dtype()) && t.dtype() != kFloat64 && t.device().type() == device_type;
}

// torch caches the casts of f32 leaves that require grad (weights), not of
// views or activations.
bool cacheable(const Tensor& t) {
  return state.cache_enabled && t.dtype() == kFloat32 && t.requires_grad() && t.is_leaf() && !is_view(t);
}

}  // namespace

Tensor AutocastArgs::operator()(const Tensor& t) const {
  if (!active_ || !eligible(t, device_type_) || t.dtype() == target_) return t;
  if (policy_ == CastPolicy::Float32) return is_reduced_float(t.dtype()) ? kiln::to(t, kFloat32) : t;
  if (!cacheable(t)) return kiln::to(t, target_);
  const bool grad_mode = GradMode::is_enabled();
  auto it = state.cache.find(t.impl());
  if (it != state.cache.end() && it->second.version == t._version() && it->second.grad_mode == grad_mode &&
      it->second.cast.dtype() == target_) {
    return it->second.cast;
  }
  Tensor cast = kiln::to(t, target_);
  state.cache.insert_or_assign(t.impl(), CacheEntry{t, cast, t._version(), grad_mode});
  return cast;
}

AutocastArgs autocast_args(CastPolicy policy, std::initializer_list<std::reference_wrapper<const Tensor>> args) {
  AutocastArgs out;
  if (!state.devices[0].enabled && !state.devices[1].enabled) return out;
  const Tensor* first = nullptr;
  for (const Tensor& t : args) {
    if (t.defined()) {
      first = &t;
      break;
    }
  }
  if (first == nullptr) return out;
  const DeviceType device_type = first->device().type();
  const DeviceState& ds = device_state(device_type);
  if (!ds.enabled) return out;
  out.policy_ = policy;
  out.device_type_ = device_type;
  out.target_ = policy == CastPolicy::LowerPrecision ? ds.dtype : kFloat32;
  for (const Tensor& t : args) {
    if (!eligible(t, device_type) || t.dtype() == out.target_) continue;
    if (policy == CastPolicy::Float32 && !is_reduced_float(t.dtype())) continue;
    out.active_ = true;
    break;
  }
  return out;
}

}  // namespace autograd

}  // namespace kiln
