// PretrainedConfig's common fields and the strict JSON reader family configs
// are parsed with.
#include "kiln/models/pretrained_config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "kiln/core/error.h"

namespace kiln::models {

void PretrainedConfig::set_num_labels(int64_t n) {
  KILN_CHECK(n >= 0, "num_labels must be >= 0, got ", n);
  if (num_labels() == n) return;
  id2label.clear();
  for (int64_t i = 0; i < n; ++i) id2label[i] = "LABEL_" + std::to_string(i);
}

std::map<std::string, int64_t> PretrainedConfig::label2id() const {
  std::map<std::string, int64_t> out;
  for (const auto& [id, label] : id2label) out[label] = id;
  return out;
}

Json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK(in.good(), "cannot open ", path.string());
  std::stringstream text;
  text << in.rdbuf();
  try {
    return Json::parse(text.str());
  } catch (const Json::parse_error& e) {
    KILN_ERROR(path.string(), ": not valid JSON: ", e.what());
  }
}

namespace {
std::string type_name(const Json& v) { return v.type_name(); }
}  // namespace

JsonConfigReader::JsonConfigReader(const Json& json, std::string source) : json_(json), source_(std::move(source)) {
  KILN_CHECK(json_.is_object(), source_, ": a config must be a JSON object, got ", type_name(json_));
}

bool JsonConfigReader::has(const std::string& key) const { return json_.contains(key); }

const Json* JsonConfigReader::find(const std::string& key) {
  read_keys_.push_back(key);
  auto it = json_.find(key);
  return it == json_.end() ? nullptr : &*it;
}

void JsonConfigReader::fail(const std::string& key, const std::string& message) const {
  KILN_ERROR(source_, ": key \"", key, "\": ", message);
}

void JsonConfigReader::read(const std::string& key, bool& out) {
  const Json* v = find(key);
  if (!v) return;
  if (!v->is_boolean()) fail(key, "expected true or false, got " + v->dump());
  out = v->get<bool>();
}

void JsonConfigReader::read(const std::string& key, int64_t& out) {
  const Json* v = find(key);
  if (!v) return;
  // HF writes integers; a float with an integral value (2.0) is accepted as Python would.
  if (v->is_number_integer()) {
    out = v->get<int64_t>();
  } else if (v->is_number_float() && v->get<double>() == static_cast<double>(static_cast<int64_t>(v->get<double>()))) {
    out = static_cast<int64_t>(v->get<double>());
  } else {
    fail(key, "expected an integer, got " + v->dump());
  }
}

void JsonConfigReader::read(const std::string& key, double& out) {
  const Json* v = find(key);
  if (!v) return;
  if (!v->is_number()) fail(key, "expected a number, got " + v->dump());
  out = v->get<double>();
}

void JsonConfigReader::read(const std::string& key, std::string& out) {
  const Json* v = find(key);
  if (!v) return;
  if (!v->is_string()) fail(key, "expected a string, got " + v->dump());
  out = v->get<std::string>();
}

void JsonConfigReader::read(const std::string& key, std::optional<std::string>& out) {
  const Json* v = find(key);
  if (!v) return;
  if (v->is_null()) {
    out.reset();
    return;
  }
  if (!v->is_string()) fail(key, "expected a string or null, got " + v->dump());
  out = v->get<std::string>();
}

void JsonConfigReader::read(const std::string& key, std::vector<int64_t>& out) {
  const Json* v = find(key);
  if (!v) return;
  if (!v->is_array()) fail(key, "expected a list of integers, got " + v->dump());
  std::vector<int64_t> values;
  for (const auto& e : *v) {
    if (!e.is_number_integer()) fail(key, "expected a list of integers, got " + v->dump());
    values.push_back(e.get<int64_t>());
  }
  out = std::move(values);
}

void JsonConfigReader::read(const std::string& key, std::optional<std::vector<int64_t>>& out) {
  const Json* v = find(key);
  if (!v) return;
  if (v->is_null()) {
    out.reset();
    return;
  }
  std::vector<int64_t> values;
  read(key, values);
  out = std::move(values);
}

void JsonConfigReader::read(const std::string& key, std::vector<std::string>& out) {
  const Json* v = find(key);
  if (!v) return;
  if (v->is_null()) {  // HF writes None lists (architectures) as null
    out.clear();
    return;
  }
  if (!v->is_array()) fail(key, "expected a list of strings, got " + v->dump());
  std::vector<std::string> values;
  for (const auto& e : *v) {
    if (!e.is_string()) fail(key, "expected a list of strings, got " + v->dump());
    values.push_back(e.get<std::string>());
  }
  out = std::move(values);
}

void JsonConfigReader::read(const std::string& key, std::optional<std::vector<std::string>>& out) {
  const Json* v = find(key);
  if (!v) return;
  if (v->is_null()) {
    out.reset();
    return;
  }
  std::vector<std::string> values;
  read(key, values);
  out = std::move(values);
}

void JsonConfigReader::read_common(PretrainedConfig& config) {
  read("model_type", config.model_type);
  read("architectures", config.architectures);
  if (const Json* v = find("id2label")) {
    if (!v->is_object()) fail("id2label", "expected an object {\"0\": \"label\", ...}, got " + v->dump());
    std::map<int64_t, std::string> labels;
    for (const auto& [id, label] : v->items()) {
      int64_t index = 0;
      try {
        size_t used = 0;
        index = std::stoll(id, &used);
        if (used != id.size()) throw std::invalid_argument(id);
      } catch (const std::exception&) {
        fail("id2label", "label ids must be integers, got \"" + id + "\"");
      }
      if (!label.is_string()) fail("id2label", "labels must be strings, got " + label.dump());
      labels[index] = label.get<std::string>();
    }
    config.id2label = std::move(labels);
  }
  find("label2id");  // derived from id2label, as HF
  // HF: num_labels counts only without id2label; with both, id2label wins.
  int64_t n = config.num_labels();
  read("num_labels", n);
  if (!has("id2label")) config.set_num_labels(n);
  read("problem_type", config.problem_type);
  if (config.problem_type && *config.problem_type != "regression" &&
      *config.problem_type != "single_label_classification" && *config.problem_type != "multi_label_classification") {
    fail("problem_type", "must be one of regression, single_label_classification, multi_label_classification; got \"" +
                             *config.problem_type + "\"");
  }
  read("output_hidden_states", config.output_hidden_states);
  read("output_attentions", config.output_attentions);
}

Json JsonConfigReader::unread() const {
  Json rest = Json::object();
  for (const auto& [key, value] : json_.items()) {
    if (std::find(read_keys_.begin(), read_keys_.end(), key) == read_keys_.end()) rest[key] = value;
  }
  return rest;
}

void write_common(const PretrainedConfig& config, Json& out) {
  for (const auto& [key, value] : config.extra.items()) out[key] = value;
  out["model_type"] = config.model_type;
  if (!config.architectures.empty()) out["architectures"] = config.architectures;
  Json id2label = Json::object(), label2id = Json::object();
  for (const auto& [id, label] : config.id2label) {
    id2label[std::to_string(id)] = label;
    label2id[label] = id;
  }
  out["id2label"] = id2label;
  out["label2id"] = label2id;
  if (config.problem_type) out["problem_type"] = *config.problem_type;
  if (config.output_hidden_states) out["output_hidden_states"] = true;
  if (config.output_attentions) out["output_attentions"] = true;
}

}  // namespace kiln::models
