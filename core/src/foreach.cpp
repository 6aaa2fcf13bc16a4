// The multi-tensor entry points (kiln/core/native/foreach.h): argument checks
// with torch's messages, the list split into (device, dtype) groups in list
// order, one backend call per group.
#include "kiln/core/native/foreach.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kiln/core/backend.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/indexing.h"
#include "kiln/core/native/reduce.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {

DType stat_dtype(DType t) { return t == kFloat64 ? kFloat64 : kFloat32; }

// group_tensors, after checking every tensor is defined and floating.
std::vector<TensorGroup> group_list(const std::vector<Tensor>& tensors, const char* op) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    KILN_CHECK(t.defined(), op, ": tensor ", i, " of the list is undefined");
    KILN_CHECK(is_floating_point(t.dtype()), op, ": Expected a floating point tensor as input. Got ",
               dtype_name(t.dtype()), " (tensor ", i, " of the list, shape ", t.sizes(), ")");
  }
  return group_tensors(tensors);
}

// As the elementwise in-place ops: torch refuses to write a tensor where
// several elements share one memory location (an expanded view).
void check_writable(const std::vector<Tensor>& tensors, const char* op) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    for (int64_t d = 0; d < t.dim(); ++d) {
      KILN_CHECK(t.stride(d) != 0 || t.size(d) <= 1, op, ": unsupported operation: more than one element of the "
                 "written-to tensor refers to a single memory location (tensor ", i, " of the list, shape ",
                 t.sizes(), "). Please clone() the tensor before performing the operation.");
    }
  }
}

void bump_versions(const std::vector<Tensor>& tensors) {
  for (const Tensor& t : tensors) bump_version(t);
}

}  // namespace

std::vector<TensorGroup> group_tensors(const std::vector<Tensor>& tensors, bool by_dtype) {
  std::vector<TensorGroup> groups;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    KILN_CHECK(t.defined(), "group_tensors: tensor ", i, " of the list is undefined");
    auto g = groups.begin();
    while (g != groups.end() && !(g->device == t.device() && (!by_dtype || g->dtype == t.dtype()))) ++g;
    if (g == groups.end()) g = groups.insert(groups.end(), TensorGroup{t.device(), t.dtype(), {}, {}});
    g->index.push_back(i);
    g->tensors.push_back(t);
  }
  return groups;
}

Tensor foreach_norm(const std::vector<Tensor>& tensors, double p) {
  KILN_CHECK(!tensors.empty(), "foreach_norm: Tensor list must have at least one tensor.");
  const std::vector<TensorGroup> groups = group_list(tensors, "foreach_norm");
  if (std::isinf(p)) {
    for (const Tensor& t : tensors) {
      KILN_CHECK(t.numel() > 0, "foreach_norm: cannot compute the ", p, " norm on an empty tensor because the "
                 "operation does not have an identity");
    }
  }
  const bool fused = p == 1 || p == 2 || p == std::numeric_limits<double>::infinity();
  DType result_dtype = kFloat32;
  for (const TensorGroup& g : groups)
    if (stat_dtype(g.dtype) == kFloat64) result_dtype = kFloat64;
  const Device device = tensors[0].device();

  std::vector<Tensor> parts;
  std::vector<size_t> order;  // parts' elements are these positions of the list
  for (const TensorGroup& g : groups) {
    Tensor out;
    if (fused) {
      const TensorOptions options = TensorOptions().dtype(stat_dtype(g.dtype)).device(g.device);
      out = empty({static_cast<int64_t>(g.tensors.size())}, options);
      backend(g.device.type()).foreach_norm(g.tensors, p, out);
    } else {
      // torch's _foreach_norm composes linalg.vector_norm for these; taken in
      // the stat dtype so that 16-bit inputs are not rounded, as the kernel.
      std::vector<Tensor> norms;
      for (const Tensor& t : g.tensors) norms.push_back(norm(to(t, stat_dtype(g.dtype)), Scalar(p)));
      out = stack(norms);
    }
    parts.push_back(to(to(out, result_dtype), device));
    order.insert(order.end(), g.index.begin(), g.index.end());
  }
  if (parts.size() == 1) return parts[0];
  // Several groups: back into list order.
  std::vector<int64_t> position(tensors.size());
  for (size_t j = 0; j < order.size(); ++j) position[order[j]] = static_cast<int64_t>(j);
  return index_select(cat(parts), 0, tensor(position, TensorOptions().dtype(kInt64).device(device)));
}

void foreach_mul_(const std::vector<Tensor>& tensors, const Tensor& scale) {
  KILN_CHECK(!tensors.empty(), "foreach_mul_: Tensor list must have at least one tensor.");
  KILN_CHECK(scale.defined(), "foreach_mul_: scale is undefined");
  KILN_CHECK(scale.dim() == 0, "foreach_mul_: scalar tensor expected to be 0 dim but it has ", scale.dim(),
             " dimensions and ", scale.numel(), " elements.");
  const std::vector<TensorGroup> groups = group_list(tensors, "foreach_mul_");
  check_writable(tensors, "foreach_mul_");
  for (const TensorGroup& g : groups) {
    KILN_CHECK(scale.device() == g.device || scale.is_cpu(), "foreach_mul_: expected all tensors to be on the same "
               "device, but found at least two devices, ", g.device, " (tensor ", g.index[0], " of the list) and ",
               scale.device(), " (scale)");
  }
  // The kernels read the scale while they write the tensors: one that
  // shares memory with them is refused, as torch refuses a partial overlap
  // (for a scale that is itself in the list torch's result depends on the
  // list order; that too is refused here).
  for (size_t i = 0; i < tensors.size(); ++i) {
    KILN_CHECK(scale.storage() != tensors[i].storage(), "foreach_mul_: unsupported operation: the scale and the "
               "written-to tensor ", i, " of the list refer to the same memory. Please clone() the scale before "
               "performing the operation.");
  }
  const Tensor s = is_floating_point(scale.dtype()) ? scale : to(scale, kFloat64);
  for (const TensorGroup& g : groups) {
    backend(g.device.type()).foreach_mul(g.tensors, to(s, g.device));
    bump_versions(g.tensors);
  }
}

void amp_unscale_(const std::vector<Tensor>& tensors, const Tensor& inv_scale, const Tensor& found_inf) {
  KILN_CHECK(inv_scale.defined() && found_inf.defined(), "amp_unscale_: inv_scale and found_inf must be defined");
  KILN_CHECK(inv_scale.numel() == 1, "amp_unscale_: inv_scale must be a 1-element tensor.");
  KILN_CHECK(found_inf.numel() == 1, "amp_unscale_: found_inf must be a 1-element tensor.");
  KILN_CHECK(inv_scale.dtype() == kFloat32, "amp_unscale_: inv_scale must be a float tensor.");
  KILN_CHECK(found_inf.dtype() == kFloat32, "amp_unscale_: found_inf must be a float tensor.");
  KILN_CHECK(inv_scale.device() == found_inf.device(), "amp_unscale_: inv_scale is on ", inv_scale.device(),
             " but found_inf is on ", found_inf.device());
  if (tensors.empty()) return;
  const std::vector<TensorGroup> groups = group_list(tensors, "amp_unscale_");
  check_writable(tensors, "amp_unscale_");
  for (const TensorGroup& g : groups) {
    KILN_CHECK(g.device == found_inf.device(), "amp_unscale_: expected all tensors to be on the same device, but "
               "found at least two devices, ", g.device, " (tensor ", g.index[0], " of the list) and ",
               found_inf.device(), " (found_inf)");
  }
  for (const TensorGroup& g : groups) {
    backend(g.device.type()).amp_unscale(g.tensors, inv_scale, found_inf);
    bump_versions(g.tensors);
  }
  bump_version(found_inf);
}

}  // namespace kiln::native
