// The problem_type switch every HF classification head repeats.
#include "kiln/models/classification_loss.h"

#include "kiln/core/error.h"
#include "kiln/nn/functional/loss.h"

namespace kiln::models {

Tensor classification_loss(const Tensor& logits, const Tensor& labels, int64_t num_labels,
                           std::optional<std::string>& problem_type) {
  KILN_CHECK(labels.defined(), "classification_loss: labels undefined");
  if (!problem_type) {
    const bool integer_labels = labels.dtype() == DType::Int64 || labels.dtype() == DType::Int32;
    if (num_labels == 1) {
      problem_type = "regression";
    } else if (num_labels > 1 && integer_labels) {
      problem_type = "single_label_classification";
    } else {
      problem_type = "multi_label_classification";
    }
  }
  namespace F = nn::functional;
  if (*problem_type == "regression") {
    KILN_CHECK(is_floating_point(labels.dtype()), "regression loss: labels must be floating point, got ",
               labels.dtype(), " (problem_type \"regression\")");
    if (num_labels == 1) return F::mse_loss(squeeze(logits), squeeze(labels));
    return F::mse_loss(logits, labels);
  }
  if (*problem_type == "single_label_classification") {
    KILN_CHECK(labels.dtype() == DType::Int64 || labels.dtype() == DType::Int32,
               "single-label classification loss: labels must be class indices (int64), got ", labels.dtype());
    KILN_CHECK(labels.numel() * num_labels == logits.numel(), "single-label classification loss: ", labels.sizes(),
               " labels for logits of shape ", logits.sizes());
    return F::cross_entropy(reshape(logits, {-1, num_labels}), reshape(labels, {-1}));
  }
  if (*problem_type == "multi_label_classification") {
    KILN_CHECK(is_floating_point(labels.dtype()),
               "multi-label classification loss: labels must be floating point (multi-hot), got ", labels.dtype());
    return F::binary_cross_entropy_with_logits(logits, labels);
  }
  KILN_ERROR("unknown problem_type \"", *problem_type,
             "\"; expected regression, single_label_classification or multi_label_classification");
}

}  // namespace kiln::models
