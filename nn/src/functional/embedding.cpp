// Embedding lookup: rows of weight gathered with index_select; the backward
// accumulates the output's gradient into those rows with index_add
// (EmbeddingBackward0), written with differentiable ops so it has a double
// backward.
#include "kiln/nn/functional/embedding.h"

#include <vector>

#include "kiln/autograd/function.h"
#include "kiln/core/error.h"
#include "kiln/core/native.h"

namespace kiln::nn::functional {

using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx) {
  KILN_CHECK(weight.defined() && weight.dim() == 2, "embedding: 'weight' must be 2-D [num_embeddings, dim], got shape ",
             weight.defined() ? weight.sizes() : IntArrayRef());
  KILN_CHECK(indices.defined() && (indices.dtype() == kInt64 || indices.dtype() == kInt32),
             "embedding: expected int64 or int32 indices, got ",
             indices.defined() ? dtype_name(indices.dtype()) : "an undefined tensor");
  const int64_t num = weight.size(0), dim = weight.size(1);
  int64_t pad = -1;  // none
  if (padding_idx) {
    KILN_CHECK(*padding_idx < num && *padding_idx >= -num, "embedding: padding_idx ", *padding_idx,
               " must be within num_embeddings (", num, "), i.e. in [", -num, ", ", num, ")");
    pad = *padding_idx < 0 ? *padding_idx + num : *padding_idx;
  }
  const Tensor idx = native::contiguous(native::to(native::reshape(indices, {indices.numel()}), kInt64));
  // Bounds are checked on the host (index_select would only say "out of range").
  const Tensor host = native::to(idx, Device(kCPU));
  const int64_t* p = host.data_ptr<int64_t>();
  for (int64_t i = 0, n = host.numel(); i < n; ++i) {
    KILN_CHECK(p[i] >= 0 && p[i] < num, "embedding: index ", p[i], " is out of range for num_embeddings ", num,
               " (weight shape ", weight.sizes(), ", indices shape ", indices.sizes(), ")");
  }
  std::vector<int64_t> out_shape = indices.sizes().vec();
  out_shape.push_back(dim);
  Tensor out = native::reshape(native::index_select(weight, 0, idx), out_shape);
  return record("EmbeddingBackward0", out, {weight}, {idx},
                [num, dim, pad](FunctionNode& c, const Tensor& g) -> variable_list {
                  const Tensor ix = c.saved(0);
                  Tensor rows = kiln::reshape(g, {ix.numel(), dim});
                  if (pad >= 0) rows = kiln::masked_fill(rows, kiln::unsqueeze(kiln::eq(ix, Scalar(pad)), 1), 0);
                  return {kiln::index_add(kiln::zeros({num, dim}, g.options()), 0, ix, rows)};
                });
}

}  // namespace kiln::nn::functional
