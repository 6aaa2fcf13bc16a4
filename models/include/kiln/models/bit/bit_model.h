#pragma once
// BiT (Kolesnikov et al., "Big Transfer"): ResNetV2 with GroupNorm and
// weight-standardised convolutions, as transformers' BitModel,
// BitForImageClassification and BitBackbone, with HF's parameter names.
//
//   auto model = kiln::models::from_pretrained<kiln::models::BitForImageClassificationImpl>("bit-50");
//   auto out = model->forward(pixel_values, labels);   // out.logits, out.loss
#include <memory>
#include <string>

#include "kiln/models/bit/bit_layers.h"
#include "kiln/models/pretrained_model.h"
#include "kiln/nn/modules/linear.h"
#include "kiln/nn/modules/pooling.h"

namespace kiln::models {

// Shared by the three: holds the config, answers PreTrainedModel's questions.
class BitPreTrainedModel : public PreTrainedModel {
 public:
  explicit BitPreTrainedModel(BitConfig config, std::string name);
  const PretrainedConfig& pretrained_config() const override { return config; }
  PretrainedConfig& pretrained_config() override { return config; }
  Json config_json() const override;
  std::string base_model_prefix() const override { return "bit"; }

  // HF's _init_weights: convolutions Kaiming-normal (fan_out, relu), norms
  // weight 1 / bias 0; Linear keeps PyTorch's default.
  void init_weights();

  BitConfig config;
};

class BitModelImpl : public BitPreTrainedModel {
 public:
  static constexpr const char* kArchitecture = "BitModel";
  explicit BitModelImpl(BitConfig config);

  // last_hidden_state [N, C, h, w] (after the final norm for pre-activation),
  // pooler_output [N, C, 1, 1], hidden_states: stem output and each stage's.
  ModelOutput forward(const Tensor& pixel_values, std::optional<bool> output_hidden_states = std::nullopt);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::string architecture() const override { return kArchitecture; }
  bool is_base_model() const override { return true; }

  BitEmbeddings embedder{nullptr};
  BitEncoder encoder{nullptr};
  BitGroupNormActivation norm{nullptr};  // pre-activation only
  nn::AdaptiveAvgPool2d pooler{nullptr};
};
KILN_MODULE(BitModel);

class BitForImageClassificationImpl : public BitPreTrainedModel {
 public:
  static constexpr const char* kArchitecture = "BitForImageClassification";
  explicit BitForImageClassificationImpl(BitConfig config);

  // logits [N, num_labels]; loss when labels are given (see classification_loss.h).
  ModelOutput forward(const Tensor& pixel_values, const Tensor& labels = Tensor(),
                      std::optional<bool> output_hidden_states = std::nullopt);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::string architecture() const override { return kArchitecture; }
  bool is_base_model() const override { return false; }

  BitModel bit{nullptr};
  nn::Sequential classifier{nullptr};  // "0": Flatten, "1": Linear (Identity when num_labels == 0)
};
KILN_MODULE(BitForImageClassification);

class BitBackboneImpl : public BitPreTrainedModel {
 public:
  static constexpr const char* kArchitecture = "BitBackbone";
  explicit BitBackboneImpl(BitConfig config);

  // feature_maps: the hidden states named by config.out_features.
  ModelOutput forward(const Tensor& pixel_values, std::optional<bool> output_hidden_states = std::nullopt);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::string architecture() const override { return kArchitecture; }
  bool is_base_model() const override { return false; }

  // Channels of each stage name's output: embedding_size, then hidden_sizes.
  std::vector<int64_t> num_features() const;

  BitModel bit{nullptr};
};
KILN_MODULE(BitBackbone);

}  // namespace kiln::models
