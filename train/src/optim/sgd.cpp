// SGD: options, state and the per-group loop; the arithmetic is in
// fused_update.cpp.
#include "kiln/train/optim/sgd.h"

#include "fused_update.h"
#include "kiln/core/native.h"

namespace kiln::optim {

namespace {

nn::OrderedDict<double> sgd_defaults(const SGDOptions& o) {
  return {{"lr", o.lr},
          {"momentum", o.momentum},
          {"dampening", o.dampening},
          {"weight_decay", o.weight_decay},
          {"nesterov", o.nesterov ? 1.0 : 0.0},
          {"maximize", o.maximize ? 1.0 : 0.0}};
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(single_group(std::move(params), "SGD"), options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options) : Optimizer(sgd_defaults(options)) {
  init(std::move(groups));
}

void SGD::check_options(const ParamGroup& g, const std::string& where) const {
  KILN_CHECK(g.lr() >= 0.0, "SGD: Invalid learning rate: ", g.lr(), " (", where, ")");
  KILN_CHECK(g.get("momentum") >= 0.0, "SGD: Invalid momentum value: ", g.get("momentum"), " (", where, ")");
  KILN_CHECK(g.get("weight_decay") >= 0.0, "SGD: Invalid weight_decay value: ", g.get("weight_decay"), " (", where,
             ")");
  KILN_CHECK(!g.get_bool("nesterov") || (g.get("momentum") > 0.0 && g.get("dampening") == 0.0),
             "SGD: Nesterov momentum requires a momentum and zero dampening (", where, ")");
}

std::vector<std::string> SGD::state_names(const ParamGroup& g) const {
  if (g.get("momentum") == 0.0) return {};
  return {"momentum_buffer"};
}

void SGD::step_group(ParamGroup& group) {
  detail::SGDStep s{group.lr(),
                    group.get("momentum"),
                    group.get("dampening"),
                    group.get("weight_decay"),
                    group.get_bool("nesterov"),
                    group.get_bool("maximize"),
                    false};
  // The group's tuples, in two lists: buffers made by this step start as
  // the gradient, the others follow the momentum rule (two calls of one
  // fused update each).
  struct Tuples {
    std::vector<Tensor> params, grads, bufs;
  };
  Tuples fresh, existing;
  for (const Tensor& p : group.params) {
    const Tensor& grad = p.grad();
    if (!grad.defined()) continue;
    Tuples* into = &existing;
    if (s.momentum != 0.0) {
      ParamState& st = state_for(p);
      Tensor* buf = st.find("momentum_buffer");
      if (buf == nullptr) {
        into = &fresh;
        // Zeros, not empty: the fused loop reads the buffer before it selects the gradient.
        buf = &st.insert("momentum_buffer", native::zeros(p.sizes(), p.options()));
      }
      into->bufs.push_back(*buf);
    }
    into->params.push_back(p);
    into->grads.push_back(grad);
  }
  for (Tuples* t : {&existing, &fresh}) {
    if (t->params.empty()) continue;
    s.init_buffer = t == &fresh;
    detail::sgd_update(t->params, t->grads, t->bufs, s);
  }
}

}  // namespace kiln::optim
