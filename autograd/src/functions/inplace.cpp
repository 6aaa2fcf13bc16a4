// In-place writes that replace a tensor's values outright (copy_, fills,
// random fills) or scatter into it. The arithmetic in-place ops live beside
// their out-of-place forms (elementwise.cpp, unary.cpp, comparison.cpp).
//
// Pattern: check_inplace (refuses leaves that require grad, and views),
// write with kiln::native (which bumps the version counter), then record
// with the tensor as both an input and the result, which rebases its history
// onto the new node.
#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln {

using autograd::check_inplace;
using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

namespace {
// Overwritten values: nothing flows back to what the tensor held before.
variable_list no_gradient(FunctionNode&, const Tensor&) { return {Tensor()}; }

Tensor& overwrite(Tensor& self, const char* name, const std::function<void()>& write) {
  check_inplace(self);
  write();
  record(name, self, {self}, {}, no_gradient);
  return self;
}
}  // namespace

Tensor& Tensor::copy_(const Tensor& src, bool non_blocking) {
  check_inplace(*this, {src});
  native::copy_(*this, src, non_blocking);
  record("CopyBackwards", *this, {*this, src}, {}, [](FunctionNode& c, const Tensor& g) -> variable_list {
    return {Tensor(), c.needs(1) ? c.reduce(1, g) : Tensor()};
  });
  return *this;
}

Tensor& Tensor::zero_() {
  return overwrite(*this, "ZeroBackward0", [this] { native::fill_(*this, 0); });
}

Tensor& Tensor::fill_(const Scalar& value) {
  return overwrite(*this, "FillBackward0", [this, &value] { native::fill_(*this, value); });
}

Tensor& Tensor::uniform_(double from, double to) {
  return overwrite(*this, "UniformBackward0",
                   [this, from, to] { native::random_(*this, RandomSpec{RandomKind::Uniform, from, to, {}}); });
}

Tensor& Tensor::normal_(double mean, double std) {
  return overwrite(*this, "NormalBackward0",
                   [this, mean, std] { native::random_(*this, RandomSpec{RandomKind::Normal, mean, std, {}}); });
}

Tensor& Tensor::bernoulli_(double p) {
  KILN_CHECK(p >= 0.0 && p <= 1.0, "bernoulli_: p must be in [0, 1], got ", p);
  return overwrite(*this, "BernoulliBackward0",
                   [this, p] { native::random_(*this, RandomSpec{RandomKind::Bernoulli, p, 0.0, {}}); });
}

Tensor& Tensor::index_add_(int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha) {
  check_inplace(*this, {source});
  native::index_add_(*this, dim, index, source, alpha);
  record("IndexAddBackward0", *this, {*this, source}, {index},
         [dim, alpha](FunctionNode& c, const Tensor& g) -> variable_list {
           Tensor grad_source;
           if (c.needs(1)) {
             grad_source = kiln::index_select(g, dim, c.saved(0));
             if (alpha.toDouble() != 1.0) grad_source = grad_source * alpha;
             grad_source = c.reduce(1, kiln::reshape(grad_source, c.input_sizes(1)));
           }
           return {g, grad_source};
         });
  return *this;
}

Tensor& Tensor::scatter_add_(int64_t dim, const Tensor& index, const Tensor& src) {
  check_inplace(*this, {src});
  native::scatter_add_(*this, dim, index, src);
  record("ScatterAddBackward0", *this, {*this, src}, {index}, [dim](FunctionNode& c, const Tensor& g) -> variable_list {
    return {g, c.needs(1) ? c.reduce(1, kiln::gather(g, dim, c.saved(0))) : Tensor()};
  });
  return *this;
}

}  // namespace kiln
