#include "kiln/autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "kiln/autograd/autograd_meta.h"
#include "kiln/autograd/engine.h"
#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/core/native.h"

namespace kiln::autograd {

namespace {

using Matrix = std::vector<std::vector<double>>;  // [output element][input element]

std::vector<double> flat_values(const Tensor& t) {
  Tensor host = native::contiguous(native::to(native::to(t, Device(kCPU)), kFloat64));
  const double* p = host.data_ptr<double>();
  return std::vector<double>(p, p + host.numel());
}

DimVector unravel(int64_t flat, IntArrayRef sizes) {
  DimVector index(sizes.size());
  for (size_t d = sizes.size(); d-- > 0;) {
    index[d] = sizes[d] == 0 ? 0 : flat % sizes[d];
    flat = sizes[d] == 0 ? 0 : flat / sizes[d];
  }
  return index;
}

// The memory of element `flat` (row-major logical order) of a float64 CPU tensor.
double* element(const Tensor& t, int64_t flat) {
  DimVector index = unravel(flat, t.sizes());
  int64_t offset = 0;
  for (size_t d = 0; d < index.size(); ++d) offset += index[d] * t.stride(static_cast<int64_t>(d));
  return t.data_ptr<double>() + offset;
}

bool overlaps(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) > 1 && t.stride(d) == 0) return true;
  }
  std::vector<std::pair<int64_t, int64_t>> dims;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) > 1) dims.emplace_back(t.stride(d), t.size(d));
  }
  std::sort(dims.begin(), dims.end());
  int64_t reach = 1;
  for (auto [stride, size] : dims) {
    if (stride < reach) return true;
    reach = stride * (size - 1) + 1;
  }
  return false;
}

std::string describe(int64_t flat, IntArrayRef sizes) {
  std::ostringstream os;
  os << flat << " (index " << IntArrayRef(unravel(flat, sizes)) << ")";
  return os.str();
}

}  // namespace

std::string gradcheck_report(const GradcheckFn& fn, const variable_list& inputs, const GradcheckOptions& opt) {
  std::vector<size_t> diff;  // inputs that require grad
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined() || !t.requires_grad()) continue;
    KILN_CHECK(t.dtype() == kFloat64 && t.is_cpu(), "gradcheck: input ", i, " is ", t.toString(),
               "; differentiated inputs must be float64 CPU tensors");
    KILN_CHECK(!overlaps(t), "gradcheck: input ", i, " (sizes ", t.sizes(), ", strides ", t.strides(),
               ") has elements that share memory; expand it inside the function instead");
    diff.push_back(i);
  }
  KILN_CHECK(!diff.empty(), "gradcheck: no input requires grad");

  variable_list outputs = fn(inputs);
  std::vector<size_t> outs;  // floating-point outputs
  for (size_t o = 0; o < outputs.size(); ++o) {
    if (outputs[o].defined() && outputs[o].is_floating_point()) outs.push_back(o);
  }

  // Numerical Jacobians: numerical[k][o] is [output o elements][input diff[k] elements].
  std::vector<std::vector<Matrix>> numerical(diff.size(), std::vector<Matrix>(outputs.size()));
  {
    NoGradGuard no_grad;
    for (size_t k = 0; k < diff.size(); ++k) {
      const Tensor& x = inputs[diff[k]];
      for (size_t o : outs) numerical[k][o].assign(outputs[o].numel(), std::vector<double>(x.numel()));
      for (int64_t j = 0; j < x.numel(); ++j) {
        double* p = element(x, j);
        const double orig = *p;
        *p = orig + opt.eps;
        variable_list plus = fn(inputs);
        std::vector<std::vector<double>> plus_values;
        for (size_t o = 0; o < outputs.size(); ++o) plus_values.push_back(o < plus.size() && plus[o].defined() && plus[o].is_floating_point() ? flat_values(plus[o]) : std::vector<double>());
        *p = orig - opt.eps;
        variable_list minus = fn(inputs);
        // Read before restoring: an output may be a view of the input.
        for (size_t o : outs) {
          std::vector<double> mv = flat_values(minus[o]);
          for (size_t e = 0; e < mv.size(); ++e) numerical[k][o][e][j] = (plus_values[o][e] - mv[e]) / (2 * opt.eps);
        }
        *p = orig;
      }
    }
  }

  // Analytical Jacobians, one row per output element.
  variable_list diff_inputs;
  for (size_t i : diff) diff_inputs.push_back(inputs[i]);
  variable_list grad_outs;  // outputs that require grad, and their positions
  std::vector<size_t> grad_out_index;
  for (size_t o : outs) {
    if (outputs[o].requires_grad()) {
      grad_outs.push_back(outputs[o]);
      grad_out_index.push_back(o);
    }
  }
  std::ostringstream report;
  int mismatches = 0;
  for (size_t o : outs) {
    const Tensor& out = outputs[o];
    const size_t position = std::find(grad_out_index.begin(), grad_out_index.end(), o) - grad_out_index.begin();
    for (int64_t e = 0; e < out.numel(); ++e) {
      variable_list grads(diff.size());
      if (position < grad_outs.size()) {
        variable_list seeds;
        for (const Tensor& g : grad_outs) seeds.push_back(native::zeros(g.sizes(), g.options()));
        native::fill_(native::select(native::reshape(seeds[position], {-1}), 0, e), 1.0);
        grads = autograd::grad(grad_outs, diff_inputs, seeds, /*retain_graph=*/true, false, /*allow_unused=*/true);
      }
      for (size_t k = 0; k < diff.size(); ++k) {
        const Tensor& x = inputs[diff[k]];
        std::vector<double> row(x.numel(), 0.0);
        if (grads[k].defined()) {
          if (!grads[k].sizes().equals(x.sizes()) || grads[k].dtype() != x.dtype()) {
            report << "gradcheck: the gradient for input " << diff[k] << " is " << grads[k].toString()
                   << " but the input is " << x.toString() << "\n";
            return report.str();
          }
          row = flat_values(grads[k]);
        }
        for (int64_t j = 0; j < x.numel(); ++j) {
          const double a = row[j], n = numerical[k][o][e][j];
          const bool close = std::fabs(a - n) <= opt.atol + opt.rtol * std::fabs(n) || (std::isnan(a) && std::isnan(n));
          if (close) continue;
          if (mismatches++ < 5) {
            report << "gradcheck: Jacobian mismatch for output " << o << " with respect to input " << diff[k]
                   << ": output element " << describe(e, out.sizes()) << ", input element " << describe(j, x.sizes())
                   << ": numerical " << n << ", analytical " << a << "\n";
          }
        }
      }
    }
  }
  if (mismatches > 0) {
    report << mismatches << " Jacobian entries differ (atol " << opt.atol << ", rtol " << opt.rtol << ", eps "
           << opt.eps << ")\n";
    return report.str();
  }

  // Inputs that do not require grad must not receive one. (Only when every
  // differentiated input is a leaf, whose .grad() is restored afterwards.)
  bool all_leaves = true;
  for (size_t i : diff) all_leaves = all_leaves && inputs[i].is_leaf();
  if (!grad_outs.empty() && all_leaves) {
    variable_list saved_grads;
    for (const Tensor& t : inputs) saved_grads.push_back(t.defined() ? t.grad() : Tensor());
    variable_list seeds;
    for (const Tensor& g : grad_outs) seeds.push_back(native::ones(g.sizes(), g.options()));
    autograd::backward(grad_outs, seeds, /*retain_graph=*/true);
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& t = inputs[i];
      if (!t.defined()) continue;
      if (!t.requires_grad() && t.grad().defined()) {
        report << "gradcheck: input " << i << " does not require grad but received a gradient\n";
      }
      if (t.is_leaf()) t.set_grad(saved_grads[i]);
    }
  }
  return report.str();
}

bool gradcheck(const GradcheckFn& fn, const variable_list& inputs, double eps, double atol, double rtol,
               bool raise_exception) {
  std::string report = gradcheck_report(fn, inputs, GradcheckOptions{eps, atol, rtol, raise_exception});
  if (!report.empty() && raise_exception) KILN_ERROR(report);
  return report.empty();
}

bool gradcheck(const GradcheckFn1& fn, const variable_list& inputs, double eps, double atol, double rtol,
               bool raise_exception) {
  return gradcheck([&fn](const variable_list& x) { return variable_list{fn(x)}; }, inputs, eps, atol, rtol,
                   raise_exception);
}

std::string gradgradcheck_report(const GradcheckFn& fn, const variable_list& inputs,
                                 const variable_list& grad_outputs, const GradcheckOptions& options) {
  const size_t n = inputs.size();
  variable_list all = inputs;
  std::vector<size_t> diff_out;  // outputs that take a grad_output
  {
    variable_list outputs = fn(inputs);
    for (size_t o = 0; o < outputs.size(); ++o) {
      if (outputs[o].defined() && outputs[o].requires_grad()) diff_out.push_back(o);
    }
    KILN_CHECK(grad_outputs.empty() || grad_outputs.size() == diff_out.size(), "gradgradcheck: got ",
               grad_outputs.size(), " grad_outputs for ", diff_out.size(), " differentiable outputs");
    Generator gen(20240607);
    for (size_t k = 0; k < diff_out.size(); ++k) {
      Tensor g = grad_outputs.empty() ? native::randn(outputs[diff_out[k]].sizes(), dtype(kFloat64), &gen)
                                      : grad_outputs[k];
      all.push_back(g.requires_grad() ? g : kiln::detach(g).requires_grad_(true));
    }
  }
  auto first_order = [&fn, n, diff_out](const variable_list& xs) {
    EnableGradGuard grad_mode;  // gradcheck evaluates this under no_grad for the numerical part
    variable_list ins(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(n));
    variable_list outputs = fn(ins);
    variable_list outs, seeds, wrt;
    for (size_t k = 0; k < diff_out.size(); ++k) {
      if (!outputs[diff_out[k]].requires_grad()) continue;
      outs.push_back(outputs[diff_out[k]]);
      seeds.push_back(xs[n + k]);
    }
    std::vector<size_t> wrt_index;
    for (size_t i = 0; i < n; ++i) {
      if (ins[i].defined() && ins[i].requires_grad()) {
        wrt.push_back(ins[i]);
        wrt_index.push_back(i);
      }
    }
    variable_list grads = outs.empty() ? variable_list(wrt.size())
                                       : autograd::grad(outs, wrt, seeds, true, /*create_graph=*/true, true);
    for (size_t k = 0; k < grads.size(); ++k) {
      if (!grads[k].defined()) grads[k] = native::zeros_like(wrt[k]);
    }
    return grads;
  };
  return gradcheck_report(first_order, all, options);
}

bool gradgradcheck(const GradcheckFn& fn, const variable_list& inputs, const variable_list& grad_outputs, double eps,
                   double atol, double rtol, bool raise_exception) {
  std::string report = gradgradcheck_report(fn, inputs, grad_outputs, GradcheckOptions{eps, atol, rtol, raise_exception});
  if (!report.empty() && raise_exception) KILN_ERROR(report);
  return report.empty();
}

bool gradgradcheck(const GradcheckFn1& fn, const variable_list& inputs, const variable_list& grad_outputs, double eps,
                   double atol, double rtol, bool raise_exception) {
  return gradgradcheck([&fn](const variable_list& x) { return variable_list{fn(x)}; }, inputs, grad_outputs, eps,
                       atol, rtol, raise_exception);
}

}  // namespace kiln::autograd
