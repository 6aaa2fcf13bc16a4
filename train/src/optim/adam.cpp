// Adam and AdamW: options, state and the per-group loop; the arithmetic is
// in fused_update.cpp.
#include "kiln/train/optim/adam.h"

#include "fused_update.h"
#include "kiln/core/native.h"

namespace kiln::optim {

namespace {

nn::OrderedDict<double> adam_defaults(const AdamOptions& o) {
  return {{"lr", o.lr},
          {"beta1", o.beta1},
          {"beta2", o.beta2},
          {"eps", o.eps},
          {"weight_decay", o.weight_decay},
          {"amsgrad", o.amsgrad ? 1.0 : 0.0},
          {"maximize", o.maximize ? 1.0 : 0.0}};
}

AdamOptions from_adamw(const AdamWOptions& o) {
  return {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad, o.maximize};
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(single_group(std::move(params), "Adam"), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options) : Adam(std::move(groups), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options, bool decoupled)
    : Optimizer(adam_defaults(options)), decoupled_(decoupled) {
  init(std::move(groups));
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : Adam(single_group(std::move(params), "AdamW"), from_adamw(options), true) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options)
    : Adam(std::move(groups), from_adamw(options), true) {}

void Adam::check_options(const ParamGroup& g, const std::string& where) const {
  KILN_CHECK(g.lr() >= 0.0, name(), ": Invalid learning rate: ", g.lr(), " (", where, ")");
  KILN_CHECK(g.get("eps") >= 0.0, name(), ": Invalid epsilon value: ", g.get("eps"), " (", where, ")");
  const double b1 = g.get("beta1"), b2 = g.get("beta2");
  KILN_CHECK(b1 >= 0.0 && b1 < 1.0, name(), ": Invalid beta parameter at index 0: ", b1, " (", where, ")");
  KILN_CHECK(b2 >= 0.0 && b2 < 1.0, name(), ": Invalid beta parameter at index 1: ", b2, " (", where, ")");
  KILN_CHECK(g.get("weight_decay") >= 0.0, name(), ": Invalid weight_decay value: ", g.get("weight_decay"), " (",
             where, ")");
}

std::vector<std::string> Adam::state_names(const ParamGroup& g) const {
  if (g.get_bool("amsgrad")) return {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"step", "exp_avg", "exp_avg_sq"};
}

void Adam::step_group(ParamGroup& group) {
  detail::AdamStep s{group.lr(),
                     group.get("beta1"),
                     group.get("beta2"),
                     group.get("eps"),
                     group.get("weight_decay"),
                     group.get_bool("amsgrad"),
                     group.get_bool("maximize"),
                     decoupled_,
                     0.0};
  // The group's tuples, one fused update per distinct step count: the
  // counts are per parameter (a parameter added later, or loaded state,
  // may lag), and the bias corrections depend on them.
  struct Tuples {
    double step;
    std::vector<Tensor> params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs;
  };
  std::vector<Tuples> by_step;
  for (const Tensor& p : group.params) {
    const Tensor& grad = p.grad();
    if (!grad.defined()) continue;
    ParamState& st = state_for(p);
    // Lazily, on the first update that finds a gradient, as torch.
    if (!st.contains("step")) {
      st.insert("step", native::scalar_tensor(0.0, TensorOptions().dtype(kFloat32)));
      st.insert("exp_avg", native::zeros(p.sizes(), p.options()));
      st.insert("exp_avg_sq", native::zeros(p.sizes(), p.options()));
    }
    if (s.amsgrad && !st.contains("max_exp_avg_sq")) st.insert("max_exp_avg_sq", native::zeros(p.sizes(), p.options()));
    // torch counts in a float32 tensor and reads it back as a Python float.
    float& step = st.at("step").data_ptr<float>()[0];
    step += 1.0f;
    const double count = step;
    auto it = by_step.begin();
    while (it != by_step.end() && it->step != count) ++it;
    if (it == by_step.end()) it = by_step.insert(by_step.end(), Tuples{count, {}, {}, {}, {}, {}});
    it->params.push_back(p);
    it->grads.push_back(grad);
    it->exp_avgs.push_back(st.at("exp_avg"));
    it->exp_avg_sqs.push_back(st.at("exp_avg_sq"));
    if (s.amsgrad) it->max_exp_avg_sqs.push_back(st.at("max_exp_avg_sq"));
  }
  for (const Tuples& t : by_step) {
    s.step = t.step;
    detail::adam_update(t.params, t.grads, t.exp_avgs, t.exp_avg_sqs, t.max_exp_avg_sqs, s);
  }
}

}  // namespace kiln::optim
