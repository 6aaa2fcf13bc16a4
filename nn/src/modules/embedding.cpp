#include "kiln/nn/modules/embedding.h"

#include "kiln/autograd/grad_mode.h"
#include "kiln/nn/init.h"
#include "kiln/nn/repr.h"

namespace kiln::nn {

EmbeddingImpl::EmbeddingImpl(const EmbeddingOptions& options_) : options(options_) {
  const int64_t n = options.num_embeddings();
  KILN_CHECK(n >= 0 && options.embedding_dim() >= 0,
             "Embedding: num_embeddings and embedding_dim must be non-negative, got ", n, " and ",
             options.embedding_dim());
  if (auto idx = options.padding_idx()) {
    KILN_CHECK(*idx < n && *idx >= -n, "Embedding: padding_idx must be within num_embeddings (", n, "), got ", *idx);
    if (*idx < 0) options.padding_idx(*idx + n);
  }
  weight = register_parameter("weight", kiln::empty({n, options.embedding_dim()}));
  reset_parameters();
}

void EmbeddingImpl::reset_parameters() {
  init::normal_(weight);
  if (auto idx = options.padding_idx()) {
    NoGradGuard no_grad;
    weight.select(0, *idx).fill_(0);
  }
}

Tensor EmbeddingImpl::forward(const Tensor& indices) {
  return functional::embedding(indices, weight, options.padding_idx());
}

std::string EmbeddingImpl::extra_repr() const {
  std::string s = repr::number(options.num_embeddings()) + ", " + repr::number(options.embedding_dim());
  if (options.padding_idx()) s += ", padding_idx=" + repr::number(*options.padding_idx());
  return s;
}

Embedding Embedding::from_pretrained(const Tensor& embeddings, bool freeze, std::optional<int64_t> padding_idx) {
  KILN_CHECK(embeddings.defined() && embeddings.dim() == 2,
             "Embedding::from_pretrained: embeddings must be a 2-D tensor [num_embeddings, embedding_dim], got ",
             embeddings.defined() ? embeddings.sizes() : IntArrayRef());
  Embedding e(EmbeddingOptions(embeddings.size(0), embeddings.size(1)).padding_idx(padding_idx));
  // The weight shares the given tensor's memory and dtype, as torch's.
  e->weight.impl()->set_data(*embeddings.impl());
  e->weight.requires_grad_(!freeze);
  return e;
}

}  // namespace kiln::nn
