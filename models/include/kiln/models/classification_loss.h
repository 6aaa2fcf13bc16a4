#pragma once
// The loss every HF sequence/image classification head computes from its
// logits and labels, chosen by problem_type:
//   regression                   MSE (logits and labels squeezed when num_labels == 1)
//   single_label_classification  cross-entropy over num_labels classes
//   multi_label_classification   BCE with logits
// An unset problem_type is inferred from the first labels as HF does (one
// label → regression; integer labels → single-label; else multi-label) and,
// as HF does, written back into the config so later calls reuse it.
#include <optional>
#include <string>

#include "kiln/autograd/functions.h"

namespace kiln::models {

Tensor classification_loss(const Tensor& logits, const Tensor& labels, int64_t num_labels,
                           std::optional<std::string>& problem_type);

}  // namespace kiln::models
