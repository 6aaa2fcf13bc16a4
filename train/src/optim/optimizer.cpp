// The optimizer base: groups, zero_grad, step, and the state dict with its
// validation. Subclasses only say which options and state they have and how
// one group is updated.
#include "kiln/train/optim/optimizer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <unordered_set>

#include "kiln/autograd/grad_mode.h"
#include "kiln/core/native.h"

namespace kiln::optim {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// "<digits>.<rest>" -> (number, rest); false when malformed.
bool split_index(const std::string& s, size_t from, int64_t& index, std::string& rest) {
  const size_t dot = s.find('.', from);
  if (dot == std::string::npos || dot == from) return false;
  const char* first = s.data() + from;
  const char* last = s.data() + dot;
  auto [ptr, ec] = std::from_chars(first, last, index);
  if (ec != std::errc() || ptr != last || index < 0) return false;
  rest = s.substr(dot + 1);
  return !rest.empty();
}

double number_of(const Tensor& t, const std::string& key, const char* opt) {
  KILN_CHECK(t.defined() && t.numel() == 1, opt, ".load_state_dict: '", key,
             "' must hold a single number, got a tensor of shape ", t.defined() ? t.sizes() : IntArrayRef{});
  return t.item<double>();
}

// The one option every optimizer has; the scheduler multiplies it in.
void check_lr_scale(const ParamGroup& g, const std::string& where, const char* opt) {
  const double s = g.get("lr_scale");
  KILN_CHECK(std::isfinite(s) && s >= 0.0, opt, ": Invalid lr_scale: ", s, " (", where, ")");
}

Tensor f64_scalar(double v) { return native::scalar_tensor(v, TensorOptions().dtype(kFloat64)); }

}  // namespace

Optimizer::Optimizer(nn::OrderedDict<double> defaults) : defaults_(std::move(defaults)) {
  if (!defaults_.contains("lr_scale")) defaults_.insert("lr_scale", 1.0);
}

void Optimizer::init(std::vector<ParamGroup> groups) {
  KILN_CHECK(!groups.empty(), name(), ": optimizer got an empty parameter list");
  for (auto& g : groups) add_param_group(std::move(g));
}

std::vector<ParamGroup> Optimizer::single_group(std::vector<Tensor> params, const char* optimizer) {
  KILN_CHECK(!params.empty(), optimizer, ": optimizer got an empty parameter list");
  return {ParamGroup(std::move(params))};
}

void Optimizer::add_param_group(ParamGroup group) {
  const std::string where = "parameter group " + std::to_string(groups_.size());
  KILN_CHECK(group.param_names.empty() || group.param_names.size() == group.params.size(), name(), ": ", where,
             " has ", group.param_names.size(), " names for ", group.params.size(), " parameters");
  std::unordered_set<const TensorImpl*> seen;
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    const std::string label = group.param_names.empty() ? "parameter " + std::to_string(i) : group.param_names[i];
    KILN_CHECK(p.defined(), name(), ": ", where, ": ", label, " is an undefined tensor");
    KILN_CHECK(p.is_floating_point(), name(), ": ", where, ": ", label,
               " must be floating point to be optimized, got dtype ", dtype_name(p.dtype()));
    KILN_CHECK(p.is_leaf(), name(), ": can't optimize a non-leaf Tensor (", where, ", ", label, ")");
    KILN_CHECK(seen.insert(p.impl()).second, name(), ": ", where, " contains ", label, " more than once");
    for (const auto& other : groups_)
      for (const auto& q : other.params)
        KILN_CHECK(!q.is_same(p), name(), ": some parameters appear in more than one parameter group (", label,
                   " of ", where, ")");
  }
  for (const auto& item : group.options()) {
    KILN_CHECK(defaults_.contains(item.key), name(), ": ", where, " has an unknown option '", item.key,
               "' (known: ", join(defaults_.keys()), ")");
  }
  for (const auto& item : defaults_)
    if (!group.has(item.key)) group.set(item.key, item.value);
  check_options(group, where);
  check_lr_scale(group, where, name());
  groups_.push_back(std::move(group));
}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& group : groups_) {
    for (auto& p : group.params) {
      const Tensor& g = p.grad();
      if (!g.defined()) continue;
      if (set_to_none) {
        p.set_grad(Tensor());
        continue;
      }
      // A gradient computed with create_graph has history: cut it, as torch.
      Tensor& grad = p.mutable_grad();
      if (grad.grad_fn()) {
        grad.detach_();
      } else {
        grad.requires_grad_(false);
      }
      NoGradGuard no_grad;
      grad.zero_();
    }
  }
}

Tensor Optimizer::step(const std::function<Tensor()>& closure) {
  Tensor loss;
  if (closure) {
    EnableGradGuard enable;
    loss = closure();
  }
  NoGradGuard no_grad;
  for (auto& group : groups_) step_group(group);
  return loss;
}

const ParamState* Optimizer::state(const Tensor& param) const {
  auto it = state_.find(param.impl());
  return it == state_.end() ? nullptr : &it->second;
}

ParamState& Optimizer::state_for(const Tensor& param) { return state_[param.impl()]; }

nn::StateDict Optimizer::state_dict() const {
  nn::StateDict out;
  int64_t index = 0;
  std::vector<std::vector<int64_t>> indices(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (const auto& p : groups_[g].params) {
      if (const ParamState* st = state(p)) {
        for (const auto& item : *st) {
          // A copy: the dict must not change when the optimizer steps on.
          out.insert("state." + std::to_string(index) + "." + item.key, native::clone(item.value));
        }
      }
      indices[g].push_back(index++);
    }
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    out.insert(prefix + "params", native::tensor(indices[g], TensorOptions().dtype(kInt64)));
    for (const auto& item : groups_[g].options()) out.insert(prefix + item.key, f64_scalar(item.value));
  }
  return out;
}

void Optimizer::load_state_dict(const nn::StateDict& dict) {
  const std::string op = std::string(name()) + ".load_state_dict";
  // Sort the keys into group fields and per-parameter state.
  std::map<int64_t, std::map<std::string, Tensor>> group_fields;
  std::map<int64_t, std::map<std::string, Tensor>> saved_state;
  for (const auto& item : dict) {
    int64_t index = 0;
    std::string rest;
    const std::string& key = item.key;
    if (key.rfind("state.", 0) == 0 && split_index(key, 6, index, rest)) {
      saved_state[index][rest] = item.value;
    } else if (key.rfind("param_groups.", 0) == 0 && split_index(key, 13, index, rest)) {
      group_fields[index][rest] = item.value;
    } else {
      KILN_ERROR(op, ": unexpected key '", key, "' (expected state.<i>.<name> or param_groups.<g>.<option>)");
    }
  }
  const int64_t saved_groups = group_fields.empty() ? 0 : group_fields.rbegin()->first + 1;
  KILN_CHECK(saved_groups == static_cast<int64_t>(groups_.size()), op, ": the state dict has ", saved_groups,
             " parameter groups but the optimizer has ", groups_.size());

  // Group by group: parameter indices and hyperparameters.
  struct Slot {
    size_t group, position;
  };
  std::map<int64_t, Slot> slot_of;
  std::vector<ParamGroup> new_groups = groups_;
  for (int64_t g = 0; g < saved_groups; ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    auto fields_it = group_fields.find(g);
    KILN_CHECK(fields_it != group_fields.end(), op, ": missing key '", prefix, "params'");
    auto& fields = fields_it->second;
    auto params_it = fields.find("params");
    KILN_CHECK(params_it != fields.end(), op, ": missing key '", prefix, "params'");
    const Tensor& ids = params_it->second;
    KILN_CHECK(ids.dim() == 1 && is_integral(ids.dtype(), false), op, ": '", prefix,
               "params' must be a 1-D integer tensor, got ", ids.toString());
    const size_t count = groups_[g].params.size();
    KILN_CHECK(static_cast<size_t>(ids.numel()) == count, op, ": parameter group ", g, " has ", ids.numel(),
               " parameters in the state dict but ", count, " in the optimizer");
    const Tensor ids64 = native::contiguous(native::to(native::to(ids, Device(kCPU)), kInt64));
    const int64_t* id = ids64.data_ptr<int64_t>();
    for (size_t k = 0; k < count; ++k) {
      KILN_CHECK(slot_of.emplace(id[k], Slot{static_cast<size_t>(g), k}).second, op, ": parameter index ", id[k],
                 " is listed by more than one position in param_groups");
    }
    for (const auto& [field, value] : fields) {
      if (field == "params") continue;
      KILN_CHECK(defaults_.contains(field), op, ": unexpected key '", prefix, field, "' (", name(),
                 " has no option '", field, "')");
      new_groups[g].set(field, number_of(value, prefix + field, name()));
    }
    for (const auto& item : defaults_)
      KILN_CHECK(fields.count(item.key), op, ": missing key '", prefix, item.key, "'");
    const std::string where = "parameter group " + std::to_string(g) + " of the state dict";
    check_options(new_groups[g], where);
    check_lr_scale(new_groups[g], where, name());
  }

  // Per-parameter state: every name the group's options call for, of the
  // parameter's shape; converted to the parameter's dtype and device (the
  // step count stays a CPU f32 scalar, as torch keeps it).
  std::unordered_map<const TensorImpl*, ParamState> new_state;
  for (const auto& [index, tensors] : saved_state) {
    auto slot = slot_of.find(index);
    KILN_CHECK(slot != slot_of.end(), op, ": key 'state.", index, ".", tensors.begin()->first,
               "' refers to parameter ", index, ", which no parameter group lists");
    const ParamGroup& group = new_groups[slot->second.group];
    const Tensor& param = group.params[slot->second.position];
    const std::vector<std::string> names = state_names(group);
    ParamState st;
    for (const auto& n : names) {
      const std::string key = "state." + std::to_string(index) + "." + n;
      auto it = tensors.find(n);
      KILN_CHECK(it != tensors.end(), op, ": missing key '", key, "'");
      const Tensor& t = it->second;
      if (n == "step") {
        const double v = number_of(t, key, name());
        KILN_CHECK(v >= 0 && std::floor(v) == v, op, ": '", key, "' must be a non-negative whole number, got ", v);
        st.insert(n, native::scalar_tensor(v, TensorOptions().dtype(kFloat32)));
        continue;
      }
      KILN_CHECK(t.is_floating_point(), op, ": '", key, "' must be floating point, got ", t.toString());
      KILN_CHECK(t.sizes().equals(param.sizes()), op, ": '", key, "' has shape ", t.sizes(),
                 " but the parameter has shape ", param.sizes());
      st.insert(n, native::clone(native::to(native::to(t, param.device()), param.dtype())));
    }
    for (const auto& [n, t] : tensors) {
      KILN_CHECK(std::find(names.begin(), names.end(), n) != names.end(), op, ": unexpected key 'state.", index, ".",
                 n, "' (expected: ", join(names), ")");
    }
    new_state.emplace(param.impl(), std::move(st));
  }

  for (size_t g = 0; g < groups_.size(); ++g) groups_[g] = std::move(new_groups[g]);
  state_ = std::move(new_state);
}

}  // namespace kiln::optim
