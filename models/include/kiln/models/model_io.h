#pragma once
// What every model's generic forward takes and returns. The fields are Hugging
// Face's argument and output names, so a trainer (or a user porting a HF loop)
// can drive any family through PreTrainedModel::forward(ModelInputs) and read
// the field the head fills; typed forwards on each model return the same struct.
#include <optional>
#include <vector>

#include "kiln/autograd/functions.h"

namespace kiln::models {

struct ModelInputs {
  Tensor pixel_values;    // [N, C, H, W] f32 (vision models)
  Tensor input_ids;       // [N, L] int64 (text models)
  Tensor attention_mask;  // [N, L]
  Tensor token_type_ids;  // [N, L]
  Tensor position_ids;    // [N, L]
  Tensor bool_masked_pos; // [N, num_patches] (masked image modelling)
  Tensor labels;          // head-dependent: class ids (int64), regression targets or multi-hot (float)
  Tensor start_positions, end_positions;  // question answering
  // Unset: the config's output_hidden_states decides, as in HF.
  std::optional<bool> output_hidden_states;
  std::optional<bool> output_attentions;
};

struct ModelOutput {
  Tensor loss;               // 0-dim, defined when labels were given
  Tensor logits;
  Tensor last_hidden_state;
  Tensor pooler_output;
  Tensor start_logits, end_logits;
  std::vector<Tensor> hidden_states;  // empty unless asked for
  std::vector<Tensor> attentions;
  std::vector<Tensor> feature_maps;   // backbones
};

}  // namespace kiln::models
