#pragma once
// Embedding lookup, as torch.nn.functional.embedding.
#include <cstdint>
#include <optional>

#include "kiln/autograd/functions.h"

namespace kiln::nn::functional {

// indices: int64 (or int32) of any shape; weight [num_embeddings, dim].
// Result [*indices.shape, dim]. Backward accumulates into weight rows with
// index_add; rows at padding_idx get no gradient. Out-of-range indices are an
// error naming the index and num_embeddings.
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx = std::nullopt);

}  // namespace kiln::nn::functional
