// BitConfig from and to HF's config.json, with BitConfig.__init__'s checks
// and the backbone's out_features/out_indices alignment (backbone_utils).
#include "kiln/models/bit/bit_config.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "kiln/core/error.h"

namespace kiln::models {

std::vector<std::string> BitConfig::stage_names() const {
  std::vector<std::string> names{"stem"};
  for (size_t i = 1; i <= depths.size(); ++i) names.push_back("stage" + std::to_string(i));
  return names;
}

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out + "]";
}

std::string join(const std::vector<int64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

}  // namespace

void BitConfig::validate(const std::string& source) {
  KILN_CHECK(layer_type == "preactivation" || layer_type == "bottleneck", source, ": layer_type=", layer_type,
             " is not one of preactivation,bottleneck");
  if (global_padding) {
    std::string upper = *global_padding;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    KILN_CHECK(upper == "SAME" || upper == "VALID", source, ": global_padding \"", *global_padding,
               "\" not supported (SAME, VALID or null)");
    global_padding = upper;
  }
  // HF zips depths with hidden_sizes and would silently drop the extra
  // stages (while stage_names still counts them); refuse instead.
  KILN_CHECK(!depths.empty() && depths.size() == hidden_sizes.size(), source, ": depths ", join(depths),
             " and hidden_sizes ", join(hidden_sizes), " must be non-empty and of equal length");
  for (int64_t d : depths) KILN_CHECK(d >= 1, source, ": depths must be >= 1, got ", join(depths));
  for (int64_t h : hidden_sizes) KILN_CHECK(h >= 1, source, ": hidden_sizes must be >= 1, got ", join(hidden_sizes));
  KILN_CHECK(num_channels >= 1 && embedding_size >= 1 && num_groups >= 1 && width_factor >= 1, source,
             ": num_channels, embedding_size, num_groups and width_factor must be >= 1");
  KILN_CHECK(output_stride >= 1, source, ": output_stride must be >= 1, got ", output_stride);
  KILN_CHECK(drop_path_rate >= 0.0 && drop_path_rate < 1.0, source, ": drop_path_rate must be in [0, 1), got ",
             drop_path_rate);

  // backbone_utils.verify_out_features_out_indices, then the alignment.
  const auto names = stage_names();
  const int64_t n = static_cast<int64_t>(names.size());
  if (out_features) {
    std::set<std::string> seen;
    for (const auto& f : *out_features) {
      KILN_CHECK(std::find(names.begin(), names.end(), f) != names.end(), source,
                 ": out_features must be a subset of stage_names ", join(names), ", got ", join(*out_features));
      KILN_CHECK(seen.insert(f).second, source, ": out_features must not contain duplicates, got ",
                 join(*out_features));
    }
    std::vector<std::string> sorted;
    for (const auto& name : names)
      if (seen.count(name)) sorted.push_back(name);
    KILN_CHECK(sorted == *out_features, source, ": out_features must be in the order of stage_names, expected ",
               join(sorted), ", got ", join(*out_features));
  }
  if (out_indices) {
    std::vector<int64_t> positive;
    for (int64_t i : *out_indices) {
      int64_t p = i < 0 ? ((i % n) + n) % n : i;
      KILN_CHECK(p >= 0 && p < n, source, ": out_indices must be valid indices for stage_names ", join(names),
                 ", got ", join(*out_indices));
      KILN_CHECK(std::find(positive.begin(), positive.end(), p) == positive.end(), source,
                 ": out_indices must not contain duplicates, got ", join(*out_indices));
      positive.push_back(p);
    }
    KILN_CHECK(std::is_sorted(positive.begin(), positive.end()), source,
               ": out_indices must be in the order of stage_names, got ", join(*out_indices));
  }
  if (out_features && out_indices) {
    KILN_CHECK(out_features->size() == out_indices->size(), source,
               ": out_features and out_indices should have the same length if both are set");
    for (size_t i = 0; i < out_indices->size(); ++i) {
      int64_t idx = (*out_indices)[i];
      int64_t p = idx < 0 ? ((idx % n) + n) % n : idx;
      KILN_CHECK(names[p] == (*out_features)[i], source,
                 ": out_features and out_indices should correspond to the same stages if both are set");
    }
  } else if (!out_features && !out_indices) {
    out_features = std::vector<std::string>{names.back()};
    out_indices = std::vector<int64_t>{n - 1};
  } else if (out_features) {
    std::vector<int64_t> indices;
    for (const auto& f : *out_features)
      indices.push_back(std::find(names.begin(), names.end(), f) - names.begin());
    out_indices = indices;
  } else {
    std::vector<std::string> features;
    // HF indexes the Python list, so a negative index counts from the end.
    for (int64_t i : *out_indices) features.push_back(names[i < 0 ? i + n : i]);
    out_features = features;
  }
}

BitConfig BitConfig::from_json(const Json& json, const std::string& source) {
  BitConfig config;
  JsonConfigReader reader(json, source);
  reader.read_common(config);
  if (config.model_type.empty()) config.model_type = "bit";
  KILN_CHECK(config.model_type == "bit", source, ": model_type \"", config.model_type, "\" is not a BiT config");
  reader.read("num_channels", config.num_channels);
  reader.read("embedding_size", config.embedding_size);
  reader.read("hidden_sizes", config.hidden_sizes);
  reader.read("depths", config.depths);
  reader.read("layer_type", config.layer_type);
  reader.read("hidden_act", config.hidden_act);
  reader.read("global_padding", config.global_padding);
  reader.read("num_groups", config.num_groups);
  reader.read("drop_path_rate", config.drop_path_rate);
  reader.read("embedding_dynamic_padding", config.embedding_dynamic_padding);
  reader.read("output_stride", config.output_stride);
  reader.read("width_factor", config.width_factor);
  reader.read("out_features", config.out_features);
  reader.read("out_indices", config.out_indices);
  std::vector<std::string> stage_names_in_file;
  reader.read("stage_names", stage_names_in_file);  // derived from depths; read so it is not kept as extra
  config.extra = reader.unread();
  config.validate(source);
  return config;
}

BitConfig BitConfig::from_json_file(const std::filesystem::path& path) {
  return from_json(read_json_file(path), path.string());
}

Json BitConfig::to_json() const {
  Json out = Json::object();
  write_common(*this, out);
  out["num_channels"] = num_channels;
  out["embedding_size"] = embedding_size;
  out["hidden_sizes"] = hidden_sizes;
  out["depths"] = depths;
  out["layer_type"] = layer_type;
  out["hidden_act"] = hidden_act;
  out["global_padding"] = global_padding ? Json(*global_padding) : Json(nullptr);
  out["num_groups"] = num_groups;
  out["drop_path_rate"] = drop_path_rate;
  out["embedding_dynamic_padding"] = embedding_dynamic_padding;
  out["output_stride"] = output_stride;
  out["width_factor"] = width_factor;
  out["stage_names"] = stage_names();
  out["out_features"] = out_features ? Json(*out_features) : Json(nullptr);
  out["out_indices"] = out_indices ? Json(*out_indices) : Json(nullptr);
  return out;
}

}  // namespace kiln::models
