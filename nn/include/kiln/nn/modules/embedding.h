#pragma once
// Embedding: a lookup table of num_embeddings vectors, as torch.nn.Embedding.
#include <cstdint>
#include <optional>

#include "kiln/nn/functional/embedding.h"
#include "kiln/nn/functional/options.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

struct EmbeddingOptions {
  EmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  KILN_FUNC_ARG(int64_t, num_embeddings, 0);
  KILN_FUNC_ARG(int64_t, embedding_dim, 0);
  // The row that gets no gradient and starts at zero; negative counts from
  // the end (stored normalised, as torch).
  KILN_FUNC_ARG(std::optional<int64_t>, padding_idx, std::nullopt);
};

class EmbeddingImpl : public Module {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim)
      : EmbeddingImpl(EmbeddingOptions(num_embeddings, embedding_dim)) {}
  explicit EmbeddingImpl(const EmbeddingOptions& options);

  // indices (int64/int32, any shape) -> [*indices.shape, embedding_dim].
  Tensor forward(const Tensor& indices);
  // PyTorch's default: weight ~ N(0, 1), padding row zeroed.
  void reset_parameters();
  std::string extra_repr() const override;

  EmbeddingOptions options;
  Tensor weight;  // [num_embeddings, embedding_dim]
};

class Embedding : public ModuleHolder<EmbeddingImpl> {
 public:
  using ModuleHolder<EmbeddingImpl>::ModuleHolder;
  using Impl = EmbeddingImpl;
  // An Embedding whose weight shares `embeddings` [num, dim] (memory and
  // dtype), frozen (requires_grad false) unless freeze is false, as torch's
  // from_pretrained.
  static Embedding from_pretrained(const Tensor& embeddings, bool freeze = true,
                                   std::optional<int64_t> padding_idx = std::nullopt);
};

}  // namespace kiln::nn
