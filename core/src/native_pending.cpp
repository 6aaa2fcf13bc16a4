// Native ops not written yet: each throws until its file lands. Delete a
// definition here when implementing it in its own file.
#include "kiln/core/native.h"

namespace kiln::native {
// ---- linalg.h ----
// ---- indexing.h ----
}  // namespace kiln::native
