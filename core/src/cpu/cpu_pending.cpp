// Kernels not written yet: each throws until its cpu_*.cpp lands. Delete a
// definition here when implementing it.
#include "cpu/cpu_backend.h"

namespace kiln::cpu {
#define KILN_PENDING(name) KILN_ERROR("CPU kernel ", name, " is not implemented yet")
}  // namespace kiln::cpu
