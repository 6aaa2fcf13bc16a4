// The model section: a registered architecture with its family's config.json
// fields, or a Hugging Face directory. An architecture's config is checked by
// building the model once (the family's own config reader and validation are
// the authority on its fields), and replaced by the family's full config so
// the resolved run names every field.
#include <filesystem>
#include <map>
#include <mutex>

#include "kiln/autograd/grad_mode.h"
#include "kiln/core/generator.h"
#include "kiln/models/registry.h"
#include "sections.h"

namespace kiln::train::config {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// config.json keys that the model section holds elsewhere or that follow from
// other fields: model.architecture, model.num_labels, BackboneConfigMixin's
// stage_names (from depths).
const std::vector<std::string> kBookkeeping = {"architectures", "model_type", "num_labels", "label2id", "stage_names"};

std::vector<std::string> architecture_names() {
  std::vector<std::string> names;
  for (const auto& entry : models::registered_models()) names.push_back(entry.substr(entry.find('/') + 1));
  return names;
}

bool default_labels(const json& id2label) {
  if (!id2label.is_object()) return false;
  for (size_t i = 0; i < id2label.size(); ++i) {
    const auto it = id2label.find(std::to_string(i));
    if (it == id2label.end() || *it != "LABEL_" + std::to_string(i)) return false;
  }
  return true;
}

// The family's config as the resolved run shows it.
json resolved_config(const json& full) {
  json out = full;
  for (const auto& key : kBookkeeping) out.erase(key);
  if (out.contains("id2label") && default_labels(out["id2label"])) out.erase("id2label");
  return out;
}

// The user's key an error message is about, when it names exactly one
// (a message naming several, or a layer's own numbers, points at the map).
std::string key_named_in(const std::string& message, const std::vector<std::string>& keys) {
  auto is_word = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; };
  std::string found;
  for (const auto& key : keys) {
    for (size_t pos = message.find(key); pos != std::string::npos; pos = message.find(key, pos + 1)) {
      const bool starts = pos == 0 || !is_word(message[pos - 1]);
      const bool ends = pos + key.size() == message.size() || !is_word(message[pos + key.size()]);
      if (starts && ends) {
        if (!found.empty()) return "";
        found = key;
        break;
      }
    }
  }
  return found;
}

void check_pretrained_dir(const MapReader& r, const std::string& dir) {
  if (!fs::exists(dir)) r.fail("from_pretrained", "directory '" + dir + "' does not exist");
  if (!fs::is_directory(dir)) {
    r.fail("from_pretrained", "'" + dir + "' is not a directory (expected config.json + model.safetensors)");
  }
  const fs::path config = fs::path(dir) / "config.json";
  if (!fs::is_regular_file(config)) r.fail("from_pretrained", "'" + dir + "' has no config.json");
  try {
    const json j = models::read_json_file(config);
    if (!j.is_object()) r.fail("from_pretrained", config.string() + " is not a JSON object");
  } catch (const ConfigError&) {
    throw;
  } catch (const kiln::Error& e) {
    r.fail("from_pretrained", e.what());
  }
  if (!fs::exists(fs::path(dir) / "model.safetensors") && !fs::exists(fs::path(dir) / "model.safetensors.index.json")) {
    r.fail("from_pretrained", "'" + dir + "' has no model.safetensors (nor model.safetensors.index.json)");
  }
}

// Builds a model with the global generator left as it was (initial weights
// draw from it) and autograd off.
std::shared_ptr<models::PreTrainedModel> build_quietly(const json& config, const std::string& architecture,
                                                       const std::string& source) {
  Generator& gen = default_generator();
  const uint64_t seed = gen.seed(), offset = gen.offset();
  struct Restore {
    Generator& gen;
    uint64_t seed, offset;
    ~Restore() { gen.set_state(seed, offset); }
  } restore{gen, seed, offset};
  NoGradGuard no_grad;
  return models::create_model(config, architecture, source);
}

// An architecture's default config.json, for its family's keys. Only
// needed when a config fails to build (a misspelt key may be why), so the
// default model is built only then.
json family_defaults(const std::string& architecture) {
  // Built once per architecture and process: a full-size default model takes seconds.
  static std::mutex mutex;
  static std::map<std::string, json> cache;
  std::lock_guard lock(mutex);
  auto it = cache.find(architecture);
  if (it == cache.end()) {
    const json config =
        build_quietly(json{{"architectures", json::array({architecture})}}, architecture, "defaults")->config_json();
    it = cache.emplace(architecture, config).first;
  }
  return it->second;
}

std::vector<std::string> keys_of(const json& object) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.push_back(key);
  return keys;
}

// Builds the model once from model.config and returns its full config.
json build_and_check(const MapReader& r, const ModelSection& s) {
  const Context& ctx = r.ctx();
  const YAML::Node node = r.get("config");
  const std::string path = r.key_path("config");
  // Each user key's position, for errors about it.
  std::vector<std::string> keys;
  std::vector<YAML::Mark> key_marks, value_marks;
  if (!is_null(node)) {
    if (!node.IsMap()) r.fail("config", "expected a map of " + s.architecture + " config.json fields, got " + describe(node));
    for (auto it = node.begin(); it != node.end(); ++it) {
      keys.push_back(it->first.Scalar());
      key_marks.push_back(it->first.Mark().is_null() ? r.mark("config") : it->first.Mark());
      value_marks.push_back(it->second.Mark().is_null() ? key_marks.back() : it->second.Mark());
    }
  }
  auto fail_key = [&](size_t i, const std::string& message) {
    ctx.fail(join_path(path, keys[i]), value_marks[i], message);
  };
  const json user = is_null(node) ? json::object() : to_json(ctx, path, node);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == "architectures") fail_key(i, "set model.architecture instead");
    if (keys[i] == "num_labels") fail_key(i, "set model.num_labels instead");
    if (keys[i] == "id2label" && s.num_labels && user["id2label"].is_object() &&
        static_cast<int64_t>(user["id2label"].size()) != *s.num_labels) {
      fail_key(i, "has " + std::to_string(user["id2label"].size()) + " labels but model.num_labels is " +
                      std::to_string(*s.num_labels));
    }
  }
  json full = user;
  full["architectures"] = json::array({s.architecture});
  if (s.num_labels) full["num_labels"] = *s.num_labels;

  auto fail_unknown = [&](size_t i, const std::vector<std::string>& known) {
    const std::string full_key = join_path(path, keys[i]);
    ctx.fail_raw(full_key, key_marks[i],
                 "unknown key '" + full_key + "' for " + s.architecture + did_you_mean(keys[i], known, path));
  };
  std::shared_ptr<models::PreTrainedModel> model;
  try {
    model = build_quietly(full, s.architecture, path);
  } catch (const kiln::Error& e) {
    // A misspelt key leaves its field at the default, which may be what
    // failed: report the misspelling rather than its consequence.
    json defaults;
    try {
      defaults = family_defaults(s.architecture);
    } catch (const kiln::Error&) {
    }
    if (defaults.is_object()) {
      for (size_t i = 0; i < keys.size(); ++i)
        if (!defaults.contains(keys[i])) fail_unknown(i, keys_of(resolved_config(defaults)));
    }
    // The family's config errors name their source (model.config); a layer's may not.
    std::string message = e.what();
    if (message.rfind(path, 0) != 0) message = path + ": " + message;
    const std::string key = key_named_in(e.what(), keys);
    for (size_t i = 0; i < keys.size(); ++i)
      if (!key.empty() && keys[i] == key) ctx.fail_raw(join_path(path, key), value_marks[i], message);
    ctx.fail_raw(path, r.mark("config"), message);
  } catch (const json::exception& e) {
    ctx.fail(path, r.mark("config"), e.what());
  }

  json config = model->config_json();
  const json& extra = model->pretrained_config().extra;
  std::vector<std::string> known;
  const json resolved = resolved_config(config);
  for (const auto& [key, value] : resolved.items()) {
    if (!extra.contains(key)) known.push_back(key);
  }
  for (size_t i = 0; i < keys.size(); ++i)
    if (extra.contains(keys[i])) fail_unknown(i, known);
  return config;
}

}  // namespace

void read_model_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& c) {
  MapReader r(ctx, node, "model", {"architecture", "config", "from_pretrained", "num_labels", "ignore_mismatched_sizes"},
              parent);
  ModelSection& s = c.model;
  r.read("architecture", s.architecture);
  r.read("from_pretrained", s.from_pretrained);
  r.read("num_labels", s.num_labels);
  if (s.num_labels && *s.num_labels < 1) r.fail("num_labels", "must be >= 1, got " + std::to_string(*s.num_labels));
  r.read("ignore_mismatched_sizes", s.ignore_mismatched_sizes);
  if (s.architecture.empty() && s.from_pretrained.empty()) {
    ctx.fail("model", r.mark(),
             "needs model.architecture (a registered architecture, with model.config) or model.from_pretrained "
             "(a Hugging Face model directory)");
  }
  if (!s.architecture.empty() && !s.from_pretrained.empty()) {
    r.fail("from_pretrained", "give model.architecture or model.from_pretrained, not both");
  }
  if (!s.from_pretrained.empty()) {
    check_pretrained_dir(r, s.from_pretrained);
    const YAML::Node config = r.get("config");
    if (!is_null(config) && !(config.IsMap() && config.size() == 0)) {
      r.fail("config", "is for model.architecture; a from_pretrained model's config is its directory's config.json");
    }
    s.config = json::object();
    return;
  }
  // "bit/BitForImageClassification" (as registered_models lists it) names the same.
  const auto names = architecture_names();
  for (const auto& entry : models::registered_models()) {
    if (s.architecture == entry) s.architecture = entry.substr(entry.find('/') + 1);
  }
  if (std::find(names.begin(), names.end(), s.architecture) == names.end()) {
    const std::string guess = nearest(s.architecture, names);
    r.fail("architecture", "'" + s.architecture + "' is not a registered architecture" +
                               (guess.empty() ? " (registered: " + one_of(names) + ")" : " (did you mean '" + guess + "'?)"));
  }
  const json full = build_and_check(r, s);
  s.config = resolved_config(full);
  if (!s.num_labels) {
    // Labels named in model.config fix the count; otherwise it stays unset
    // and the trainer takes the training set's classes (as HF's
    // run_image_classification does), so the head always fits the data.
    const auto labels = full.find("id2label");
    const bool user_labels = s.config.contains("id2label");
    if (user_labels && labels != full.end() && labels->is_object()) s.num_labels = static_cast<int64_t>(labels->size());
  }
}

}  // namespace kiln::train::config

namespace kiln::train {

std::vector<std::string> model_differences(const RunConfig& checkpoint, const RunConfig& run) {
  using config::yaml_flow;
  std::vector<std::string> out;
  auto line = [&](const std::string& key, const std::string& a, const std::string& b) {
    out.push_back(key + ": " + a + " in the checkpoint, " + b + " here");
  };
  auto text = [](const std::string& s) { return s.empty() ? std::string("(none)") : s; };
  const ModelSection &a = checkpoint.model, &b = run.model;
  if (a.architecture != b.architecture) line("model.architecture", text(a.architecture), text(b.architecture));
  if (a.from_pretrained != b.from_pretrained) {
    line("model.from_pretrained", text(a.from_pretrained), text(b.from_pretrained));
  }
  if (a.num_labels != b.num_labels) {
    auto n = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : std::string("(unset)"); };
    line("model.num_labels", n(a.num_labels), n(b.num_labels));
  }
  // Every config field of either, in the checkpoint's order then the run's.
  std::vector<std::string> keys;
  for (const auto* cfg : {&a.config, &b.config}) {
    if (!cfg->is_object()) continue;
    for (const auto& [key, value] : cfg->items())
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  auto value = [](const nlohmann::json& cfg, const std::string& key) {
    return cfg.is_object() && cfg.contains(key) ? yaml_flow(cfg[key]) : std::string("(unset)");
  };
  for (const auto& key : keys) {
    const bool in_a = a.config.is_object() && a.config.contains(key);
    const bool in_b = b.config.is_object() && b.config.contains(key);
    if (in_a != in_b || (in_a && a.config[key] != b.config[key])) {
      line("model.config." + key, value(a.config, key), value(b.config, key));
    }
  }
  return out;
}

}  // namespace kiln::train
