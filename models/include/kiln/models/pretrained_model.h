#pragma once
// The base of every model the registry builds: a Module with HF's parameter
// names, a generic forward over ModelInputs, and its config as JSON so
// save_pretrained can write a directory transformers loads back.
#include <string>

#include "kiln/models/model_io.h"
#include "kiln/models/pretrained_config.h"
#include "kiln/nn/module.h"

namespace kiln::models {

class PreTrainedModel : public nn::Module {
 public:
  using nn::Module::Module;

  virtual ModelOutput forward(const ModelInputs& inputs) = 0;

  // HF's class name ("BitForImageClassification"): config.json's architectures.
  virtual std::string architecture() const = 0;
  virtual const PretrainedConfig& pretrained_config() const = 0;
  virtual PretrainedConfig& pretrained_config() = 0;
  // The whole config as HF's config.json holds it.
  virtual Json config_json() const = 0;
  // Heads hold the base model under this name ("bit", "beit", "yoso"); the
  // base model itself has it empty. from_pretrained adds or strips it as HF
  // does, so a head's checkpoint loads into the bare model and vice versa.
  virtual std::string base_model_prefix() const = 0;
  virtual bool is_base_model() const = 0;
};

}  // namespace kiln::models
