#pragma once
// Checks a function's backward against finite differences, as
// torch.autograd.gradcheck: the full Jacobian of every output with respect to
// every input that requires grad, analytical (one backward per output
// element, with a one-hot grad_output) against numerical (central
// differences), |analytical - numerical| <= atol + rtol * |numerical|.
//
// Inputs that require grad must be float64 and must not overlap in memory
// (expand or broadcast inside `fn` instead); they may be non-contiguous.
// Also checked: gradients have their input's shape and dtype, and inputs
// that do not require grad receive no gradient.
#include <functional>
#include <string>

#include "kiln/autograd/node.h"

namespace kiln::autograd {

using GradcheckFn = std::function<variable_list(const variable_list& inputs)>;
using GradcheckFn1 = std::function<Tensor(const variable_list& inputs)>;  // one output

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  // Throw kiln::Error with the report instead of returning false.
  bool raise_exception = false;
};

// "" when the Jacobians agree; otherwise what differs: which output, which
// input, which elements, the numerical and analytical values.
std::string gradcheck_report(const GradcheckFn& fn, const variable_list& inputs, const GradcheckOptions& options = {});

bool gradcheck(const GradcheckFn& fn, const variable_list& inputs, double eps = 1e-6, double atol = 1e-5,
               double rtol = 1e-3, bool raise_exception = false);
bool gradcheck(const GradcheckFn1& fn, const variable_list& inputs, double eps = 1e-6, double atol = 1e-5,
               double rtol = 1e-3, bool raise_exception = false);

// Second derivatives, as torch.autograd.gradgradcheck: gradchecks the map
// (inputs, grad_outputs) -> grad(fn(inputs), inputs, grad_outputs,
// create_graph=true). grad_outputs default to fixed random values.
std::string gradgradcheck_report(const GradcheckFn& fn, const variable_list& inputs,
                                 const variable_list& grad_outputs = {}, const GradcheckOptions& options = {});
bool gradgradcheck(const GradcheckFn& fn, const variable_list& inputs, const variable_list& grad_outputs = {},
                   double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, bool raise_exception = false);
bool gradgradcheck(const GradcheckFn1& fn, const variable_list& inputs, const variable_list& grad_outputs = {},
                   double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, bool raise_exception = false);

}  // namespace kiln::autograd
