// Differentiable functions not written yet: each throws until its family's
// file defines it. Delete a line here when implementing the function.
#include "kiln/autograd/functions.h"

namespace kiln {
#define KILN_AUTOGRAD_PENDING(name) KILN_ERROR(name, " is not implemented yet (autograd)")
// ---- reductions.cpp ----
// ---- softmax.cpp ----
}  // namespace kiln
