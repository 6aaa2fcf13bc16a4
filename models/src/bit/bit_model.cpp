// BitModel, BitForImageClassification, BitBackbone.
#include "kiln/models/bit/bit_model.h"

#include "kiln/core/error.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/models/classification_loss.h"
#include "kiln/nn/init.h"
#include "kiln/nn/modules/flatten.h"
#include "kiln/nn/modules/identity.h"

namespace kiln::models {

BitPreTrainedModel::BitPreTrainedModel(BitConfig config, std::string name)
    : PreTrainedModel(std::move(name)), config(std::move(config)) {
  this->config.validate("BitConfig");
}

Json BitPreTrainedModel::config_json() const {
  Json json = config.to_json();
  json["architectures"] = std::vector<std::string>{architecture()};
  return json;
}

void BitPreTrainedModel::init_weights() {
  kiln::NoGradGuard no_grad;
  apply([](Module& m) {
    if (auto* conv = dynamic_cast<WeightStandardizedConv2dImpl*>(&m)) {
      nn::init::kaiming_normal_(conv->weight, 0.0, nn::init::kFanOut, nn::init::kReLU);
    } else if (auto* norm = dynamic_cast<BitGroupNormActivationImpl*>(&m)) {
      if (norm->weight.defined()) nn::init::ones_(norm->weight);
      if (norm->bias.defined()) nn::init::zeros_(norm->bias);
    }
  });
}

namespace {
bool want_hidden_states(std::optional<bool> asked, const BitConfig& config) {
  return asked.value_or(config.output_hidden_states);
}
}  // namespace

// ---- BitModel ----

BitModelImpl::BitModelImpl(BitConfig cfg) : BitPreTrainedModel(std::move(cfg), "BitModel") {
  embedder = register_module("embedder", BitEmbeddings(config));
  encoder = register_module("encoder", BitEncoder(config));
  // HF quirk: the final norm is sized hidden_sizes[-1], not the widened
  // channel count, so a pre-activation model with width_factor > 1 cannot
  // run its forward (in HF as here).
  if (config.layer_type == "preactivation") {
    norm = register_module("norm", BitGroupNormActivation(config, config.hidden_sizes.back()));
  }
  pooler = register_module("pooler", nn::AdaptiveAvgPool2d(1));
  init_weights();
}

ModelOutput BitModelImpl::forward(const Tensor& pixel_values, std::optional<bool> output_hidden_states) {
  ModelOutput out;
  const bool hidden = want_hidden_states(output_hidden_states, config);
  Tensor x = embedder->forward(pixel_values);
  x = encoder->forward(x, hidden ? &out.hidden_states : nullptr);
  if (norm) {
    KILN_CHECK(x.size(1) == norm->num_channels, "BitModel: the final norm has ", norm->num_channels,
               " channels (hidden_sizes[-1]) but the last stage gives ", x.size(1),
               " (width_factor ", config.width_factor, "); HF's BitModel has the same limitation");
    x = norm->forward(x);
  }
  out.last_hidden_state = x;
  out.pooler_output = pooler->forward(x);
  return out;
}

ModelOutput BitModelImpl::forward(const ModelInputs& inputs) {
  KILN_CHECK(inputs.pixel_values.defined(), "BitModel: pixel_values is required");
  return forward(inputs.pixel_values, inputs.output_hidden_states);
}

// ---- BitForImageClassification ----

BitForImageClassificationImpl::BitForImageClassificationImpl(BitConfig cfg)
    : BitPreTrainedModel(std::move(cfg), "BitForImageClassification") {
  // The body initialises itself (HF's _init_weights); the head's Linear
  // keeps PyTorch's default, as HF's does.
  bit = register_module("bit", BitModel(config));
  classifier = register_module("classifier", nn::Sequential());
  classifier->push_back("0", nn::Flatten());
  // HF quirk: the head reads hidden_sizes[-1] features, whatever width_factor.
  if (config.num_labels() > 0) {
    classifier->push_back("1", nn::Linear(config.hidden_sizes.back(), config.num_labels()));
  } else {
    classifier->push_back("1", nn::Identity());
  }
}

ModelOutput BitForImageClassificationImpl::forward(const Tensor& pixel_values, const Tensor& labels,
                                                   std::optional<bool> output_hidden_states) {
  ModelOutput base = bit->forward(pixel_values, output_hidden_states);
  ModelOutput out;
  out.logits = classifier->forward(base.pooler_output);
  out.hidden_states = std::move(base.hidden_states);
  if (labels.defined()) out.loss = classification_loss(out.logits, labels, config.num_labels(), config.problem_type);
  return out;
}

ModelOutput BitForImageClassificationImpl::forward(const ModelInputs& inputs) {
  KILN_CHECK(inputs.pixel_values.defined(), "BitForImageClassification: pixel_values is required");
  return forward(inputs.pixel_values, inputs.labels, inputs.output_hidden_states);
}

// ---- BitBackbone ----

BitBackboneImpl::BitBackboneImpl(BitConfig cfg) : BitPreTrainedModel(std::move(cfg), "BitBackbone") {
  bit = register_module("bit", BitModel(config));
}

std::vector<int64_t> BitBackboneImpl::num_features() const {
  std::vector<int64_t> features{config.embedding_size};
  features.insert(features.end(), config.hidden_sizes.begin(), config.hidden_sizes.end());
  return features;
}

ModelOutput BitBackboneImpl::forward(const Tensor& pixel_values, std::optional<bool> output_hidden_states) {
  // The stages' outputs, before the final norm (which a backbone never applies).
  ModelOutput base = bit->forward(pixel_values, /*output_hidden_states=*/true);
  ModelOutput out;
  const auto names = config.stage_names();
  const auto& wanted = *config.out_features;
  for (size_t i = 0; i < names.size() && i < base.hidden_states.size(); ++i) {
    if (std::find(wanted.begin(), wanted.end(), names[i]) != wanted.end()) {
      out.feature_maps.push_back(base.hidden_states[i]);
    }
  }
  if (want_hidden_states(output_hidden_states, config)) out.hidden_states = std::move(base.hidden_states);
  return out;
}

ModelOutput BitBackboneImpl::forward(const ModelInputs& inputs) {
  KILN_CHECK(inputs.pixel_values.defined(), "BitBackbone: pixel_values is required");
  return forward(inputs.pixel_values, inputs.output_hidden_states);
}

}  // namespace kiln::models
