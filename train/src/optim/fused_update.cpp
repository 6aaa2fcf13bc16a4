// The optimizer side of the fused updates: operand checks, the parameters'
// backend (once per device and dtype), and the version bumps an in-place op
// would make.
#include "fused_update.h"

#include <utility>

#include "kiln/core/native.h"

namespace kiln::optim::detail {

namespace {

void check_operand(const char* op, const Tensor& param, const Tensor& t, const char* what) {
  KILN_CHECK(t.defined(), op, ": ", what, " is undefined");
  KILN_CHECK(t.sizes().equals(param.sizes()), op, ": ", what, " has shape ", t.sizes(),
             " but the parameter has shape ", param.sizes());
  KILN_CHECK(t.dtype() == param.dtype(), op, ": ", what, " has dtype ", dtype_name(t.dtype()),
             " but the parameter has dtype ", dtype_name(param.dtype()));
  KILN_CHECK(t.device() == param.device(), op, ": ", what, " is on ", t.device(), " but the parameter is on ",
             param.device());
}

void check_length(const char* op, const std::vector<Tensor>& params, const std::vector<Tensor>& list,
                  const char* what) {
  KILN_CHECK(list.size() == params.size(), op, ": ", params.size(), " parameters but ", list.size(), " ", what);
}

// Tuple indices grouped by the parameter's (device, dtype), in list order
// within a group: one backend call each.
std::vector<std::vector<size_t>> buckets(const std::vector<Tensor>& params) {
  std::vector<std::pair<std::pair<Device, DType>, std::vector<size_t>>> groups;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::pair<Device, DType> key{params[i].device(), params[i].dtype()};
    auto it = groups.begin();
    while (it != groups.end() && it->first != key) ++it;
    if (it == groups.end()) {
      groups.emplace_back(key, std::vector<size_t>{});
      it = groups.end() - 1;
    }
    it->second.push_back(i);
  }
  std::vector<std::vector<size_t>> out;
  out.reserve(groups.size());
  for (auto& g : groups) out.push_back(std::move(g.second));
  return out;
}

// list[idx...]; an empty list (state that does not exist) gives undefined entries.
std::vector<Tensor> pick(const std::vector<Tensor>& list, const std::vector<size_t>& idx) {
  std::vector<Tensor> out(idx.size());
  if (list.empty()) return out;
  for (size_t k = 0; k < idx.size(); ++k) out[k] = list[idx[k]];
  return out;
}

}  // namespace

void sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
                const SGDStep& s) {
  const bool momentum = s.momentum != 0;
  check_length("SGD", params, grads, "gradients");
  if (momentum) check_length("SGD", params, bufs, "momentum buffers");
  for (size_t i = 0; i < params.size(); ++i) {
    KILN_CHECK(params[i].defined(), "SGD: the parameter is undefined");
    check_operand("SGD", params[i], grads[i], "the gradient");
    if (momentum) check_operand("SGD", params[i], bufs[i], "momentum_buffer");
  }
  for (const std::vector<size_t>& idx : buckets(params)) {
    const std::vector<Tensor> b = momentum ? pick(bufs, idx) : pick({}, idx);
    backend_of(params[idx[0]]).sgd_update(pick(params, idx), pick(grads, idx), b, s);
  }
  for (size_t i = 0; i < params.size(); ++i) {
    native::bump_version(params[i]);
    if (momentum) native::bump_version(bufs[i]);
  }
}

void adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 const std::vector<Tensor>& max_exp_avg_sqs, const AdamStep& s) {
  const char* op = s.decoupled ? "AdamW" : "Adam";
  check_length(op, params, grads, "gradients");
  check_length(op, params, exp_avgs, "exp_avg tensors");
  check_length(op, params, exp_avg_sqs, "exp_avg_sq tensors");
  if (s.amsgrad) check_length(op, params, max_exp_avg_sqs, "max_exp_avg_sq tensors");
  for (size_t i = 0; i < params.size(); ++i) {
    KILN_CHECK(params[i].defined(), op, ": the parameter is undefined");
    check_operand(op, params[i], grads[i], "the gradient");
    check_operand(op, params[i], exp_avgs[i], "exp_avg");
    check_operand(op, params[i], exp_avg_sqs[i], "exp_avg_sq");
    if (s.amsgrad) check_operand(op, params[i], max_exp_avg_sqs[i], "max_exp_avg_sq");
  }
  for (const std::vector<size_t>& idx : buckets(params)) {
    const std::vector<Tensor> vmax = s.amsgrad ? pick(max_exp_avg_sqs, idx) : pick({}, idx);
    backend_of(params[idx[0]]).adam_update(pick(params, idx), pick(grads, idx), pick(exp_avgs, idx),
                                           pick(exp_avg_sqs, idx), vmax, s);
  }
  for (size_t i = 0; i < params.size(); ++i) {
    for (const Tensor* t : {&params[i], &exp_avgs[i], &exp_avg_sqs[i]}) native::bump_version(*t);
    if (s.amsgrad) native::bump_version(max_exp_avg_sqs[i]);
  }
}

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& buf, const SGDStep& s) {
  sgd_update(std::vector<Tensor>{param}, std::vector<Tensor>{grad}, std::vector<Tensor>{buf}, s);
}

void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 const Tensor& max_exp_avg_sq, const AdamStep& s) {
  adam_update(std::vector<Tensor>{param}, std::vector<Tensor>{grad}, std::vector<Tensor>{exp_avg},
              std::vector<Tensor>{exp_avg_sq}, std::vector<Tensor>{max_exp_avg_sq}, s);
}

}  // namespace kiln::optim::detail
