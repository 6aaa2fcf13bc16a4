// Placeholders for functional ops whose implementation is in progress. Each
// owner deletes its lines when the real definition lands in its own file.
#include "kiln/core/error.h"
#include "kiln/nn/functional.h"

namespace kiln::nn::functional {
namespace {
[[noreturn]] void pending(const char* name) { KILN_ERROR(name, ": not implemented yet"); }
}  // namespace

// ---- conv (conv.cpp) ----
Tensor conv2d(const Tensor&, const Tensor&, const Conv2dFuncOptions&) { pending("conv2d"); }
Tensor conv2d(const Tensor&, const Tensor&, const Tensor&, ExpandingArray<2>, ExpandingArray<2>, ExpandingArray<2>, int64_t) { pending("conv2d"); }
// ---- pooling (pooling.cpp) ----
Tensor max_pool2d(const Tensor&, const MaxPool2dFuncOptions&) { pending("max_pool2d"); }
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor&, const MaxPool2dFuncOptions&) { pending("max_pool2d_with_indices"); }
Tensor avg_pool2d(const Tensor&, const AvgPool2dFuncOptions&) { pending("avg_pool2d"); }
Tensor adaptive_avg_pool2d(const Tensor&, ExpandingArray<2>) { pending("adaptive_avg_pool2d"); }
// ---- interpolate (interpolate.cpp) ----
Tensor interpolate(const Tensor&, const InterpolateFuncOptions&) { pending("interpolate"); }
// ---- normalization (normalization.cpp) ----
Tensor layer_norm(const Tensor&, IntArrayRef, const Tensor&, const Tensor&, double) { pending("layer_norm"); }
Tensor group_norm(const Tensor&, int64_t, const Tensor&, const Tensor&, double) { pending("group_norm"); }
Tensor batch_norm(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool, double, double) { pending("batch_norm"); }
// ---- dropout, embedding (dropout.cpp, embedding.cpp) ----
Tensor dropout(const Tensor&, double, bool, Generator*) { pending("dropout"); }
Tensor drop_path(const Tensor&, double, bool, bool, Generator*) { pending("drop_path"); }
Tensor embedding(const Tensor&, const Tensor&, std::optional<int64_t>) { pending("embedding"); }

}  // namespace kiln::nn::functional
