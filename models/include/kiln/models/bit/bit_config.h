#pragma once
// BiT's configuration: transformers' BitConfig, field for field, with its
// defaults (a ResNetV2-50 with pre-activation blocks).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/models/pretrained_config.h"

namespace kiln::models {

struct BitConfig : PretrainedConfig {
  BitConfig() { model_type = "bit"; }

  int64_t num_channels = 3;
  int64_t embedding_size = 64;
  std::vector<int64_t> hidden_sizes{256, 512, 1024, 2048};
  std::vector<int64_t> depths{3, 4, 6, 3};
  std::string layer_type = "preactivation";  // | "bottleneck"
  std::string hidden_act = "relu";
  std::optional<std::string> global_padding;  // "SAME" | "VALID" | unset (symmetric)
  int64_t num_groups = 32;
  double drop_path_rate = 0.0;
  bool embedding_dynamic_padding = false;
  int64_t output_stride = 32;
  int64_t width_factor = 1;
  // Which of stage_names() a BitBackbone returns. HF aligns the two lists
  // (either one determines the other; neither means the last stage); so
  // does validate().
  std::optional<std::vector<std::string>> out_features;
  std::optional<std::vector<int64_t>> out_indices;

  // "stem", "stage1", ... "stage<len(depths)>".
  std::vector<std::string> stage_names() const;

  // Checks every field (as BitConfig.__init__ does: layer_type, padding,
  // out_features/out_indices) and aligns out_features/out_indices.
  // `source` names the file in errors.
  void validate(const std::string& source = "BitConfig");

  static BitConfig from_json(const Json& json, const std::string& source = "config.json");
  static BitConfig from_json_file(const std::filesystem::path& path);
  Json to_json() const;
};

}  // namespace kiln::models
