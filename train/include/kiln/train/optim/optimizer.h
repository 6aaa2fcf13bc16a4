#pragma once
// kiln::optim::Optimizer: torch.optim.Optimizer's contract in C++. Parameter
// groups with per-group hyperparameters, per-parameter state created on the
// first step that finds a gradient, zero_grad, step(closure), and a state
// dict made only of tensors so a checkpoint writer stores it like model
// weights.
//
// State dict layout (every value a tensor; i counts parameters across groups
// in order, as torch's packed state_dict does):
//   state.<i>.<name>           the parameter's state tensors, e.g. step
//                              (0-dim f32, as torch), exp_avg, momentum_buffer
//   param_groups.<g>.params    1-D int64: the indices i of group g
//   param_groups.<g>.<option>  0-dim f64: lr, weight_decay, ... (booleans 0/1)
// load_state_dict validates everything (group and parameter counts, every
// key and shape) before changing anything, then restores the hyperparameters
// and the state, so a resumed run continues bit for bit.
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/nn/ordered_dict.h"
#include "kiln/train/optim/param_group.h"

namespace kiln::optim {

// A parameter's state: named tensors ("step", "exp_avg", "momentum_buffer").
using ParamState = nn::OrderedDict<Tensor>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // "SGD", "Adam", ...: names the optimizer in error messages.
  virtual const char* name() const = 0;

  // Options the group leaves out are filled from defaults(). Errors: an
  // empty group, a parameter already in a group, a non-leaf or non-floating
  // parameter, an unknown option name, an impossible value.
  void add_param_group(ParamGroup group);
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Every option this optimizer reads, with its default (lr_scale included:
  // the factor an LR scheduler multiplies into the group's lr).
  const nn::OrderedDict<double>& defaults() const { return defaults_; }

  // set_to_none drops the gradients (the next backward allocates fresh
  // ones); otherwise they are detached and zeroed in place, as torch.
  void zero_grad(bool set_to_none = true);

  // Runs the closure first (grad mode on) when given, then updates every
  // parameter that has a gradient; the others, and their state, are left
  // alone. Returns the closure's loss, or an undefined tensor.
  Tensor step(const std::function<Tensor()>& closure = nullptr);

  // The parameter's state, or null before its first update.
  const ParamState* state(const Tensor& param) const;

  nn::StateDict state_dict() const;
  void load_state_dict(const nn::StateDict& dict);

 protected:
  explicit Optimizer(nn::OrderedDict<double> defaults);
  // For derived constructors, after their own checks: adds the groups
  // (checking the list is not empty, as torch).
  void init(std::vector<ParamGroup> groups);
  // The one group a plain parameter list makes; empty is an error, as torch.
  static std::vector<ParamGroup> single_group(std::vector<Tensor> params, const char* optimizer);

  // Updates the group's parameters that have gradients (grad mode is off).
  virtual void step_group(ParamGroup& group) = 0;
  // The state tensors a parameter of this group has once it has been
  // updated; load_state_dict requires exactly these.
  virtual std::vector<std::string> state_names(const ParamGroup& group) const = 0;
  // Throws kiln::Error for values torch rejects (negative lr, betas outside [0, 1), ...).
  virtual void check_options(const ParamGroup& group, const std::string& where) const = 0;

  // The parameter's state, created empty on first use.
  ParamState& state_for(const Tensor& param);

 private:
  std::vector<ParamGroup> groups_;
  nn::OrderedDict<double> defaults_;
  // Keyed by the parameter's TensorImpl: the groups hold the tensors, so
  // the keys stay valid for the optimizer's life.
  std::unordered_map<const TensorImpl*, ParamState> state_;
};

}  // namespace kiln::optim
