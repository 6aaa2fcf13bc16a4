#pragma once
// From HF's names to Kiln's constructors, and the HF directory layout
// (config.json + model.safetensors) in and out.
//
//   auto model = kiln::models::from_pretrained("bit-50");             // config's architecture
//   auto clf = kiln::models::from_pretrained<kiln::models::BitForImageClassificationImpl>(
//       "bit-50", {.num_labels = 10, .ignore_mismatched_sizes = true});  // fine-tune head
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/device.h"
#include "kiln/models/pretrained_model.h"

namespace kiln::models {

// Builds a randomly initialised model from a config's JSON; `source` names
// where the JSON came from, for error messages.
using ModelFactory = std::function<std::shared_ptr<PreTrainedModel>(const Json& config, const std::string& source)>;

// `architecture` is HF's class name; the first architecture registered for a
// model_type is what a config naming no architecture builds.
void register_model(const std::string& model_type, const std::string& architecture, ModelFactory factory);
// "bit/BitModel", ... in registration order.
std::vector<std::string> registered_models();

// Builds the model a config describes: `architecture`, else the config's
// first "architectures" entry, else its model_type's first architecture.
std::shared_ptr<PreTrainedModel> create_model(const Json& config, const std::string& architecture = "",
                                              const std::string& source = "config");

struct FromPretrainedOptions {
  std::string architecture;           // empty: the config's own
  std::optional<int64_t> num_labels;  // overrides the config (labels become LABEL_i)
  // Tensors whose shape differs from the model's (a new head) keep their fresh
  // initialisation instead of failing the load, as HF's flag of that name.
  bool ignore_mismatched_sizes = false;
  // As HF, the base model's tensors load into any head and back: a bare
  // checkpoint into a head (the "bit." prefix is added, the head's tensors are
  // new), a head's into the bare model (prefix stripped, head unused), one
  // head's into another (its own head new, the other unused); all reported on
  // stderr. A missing or unexpected tensor of the base model itself is an
  // error unless strict is false (missing ones then keep their fresh
  // initialisation, unexpected ones are ignored; both reported).
  bool strict = true;
};

std::shared_ptr<PreTrainedModel> from_pretrained(const std::filesystem::path& directory,
                                                 const FromPretrainedOptions& options = {});

template <typename M>
std::shared_ptr<M> from_pretrained(const std::filesystem::path& directory, FromPretrainedOptions options = {}) {
  if (options.architecture.empty()) options.architecture = M::kArchitecture;
  auto model = std::dynamic_pointer_cast<M>(from_pretrained(directory, options));
  KILN_CHECK(model != nullptr, "from_pretrained: ", directory.string(), " did not build a ", M::kArchitecture);
  return model;
}

// Writes config.json and model.safetensors (atomically, in the layout HF's
// save_pretrained writes), so transformers.from_pretrained(directory) loads it.
void save_pretrained(const PreTrainedModel& model, const std::filesystem::path& directory);

}  // namespace kiln::models
