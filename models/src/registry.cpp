// The model registry, and HF's directory layout in and out: config.json plus
// model.safetensors (or a sharded model.safetensors.index.json).
#include "kiln/models/registry.h"

#include <algorithm>
#include <iostream>
#include <mutex>
#include <set>

#include "builtin_models.h"
#include "kiln/core/error.h"
#include "kiln/nn/serialize/atomic_file.h"
#include "kiln/nn/serialize/safetensors.h"

namespace kiln::models {

namespace fs = std::filesystem;

namespace {

struct Entry {
  std::string model_type, architecture;
  ModelFactory factory;
};

struct Registry {
  std::mutex mutex;
  std::vector<Entry> entries;
};

Registry& registry_unlocked() {
  static Registry r;
  return r;
}

void ensure_builtin_models() {
  static std::once_flag once;
  std::call_once(once, [] { detail::register_bit_models(); });
}

Registry& registry() {
  ensure_builtin_models();
  return registry_unlocked();
}

std::string known_models() {
  std::string out;
  for (const auto& name : registered_models()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

void register_model(const std::string& model_type, const std::string& architecture, ModelFactory factory) {
  KILN_CHECK(!model_type.empty() && !architecture.empty() && factory, "register_model: empty name or factory");
  auto& r = registry_unlocked();
  std::lock_guard lock(r.mutex);
  for (auto& e : r.entries) {
    if (e.architecture == architecture) {
      e = Entry{model_type, architecture, std::move(factory)};  // a re-registration replaces
      return;
    }
  }
  r.entries.push_back(Entry{model_type, architecture, std::move(factory)});
}

std::vector<std::string> registered_models() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> out;
  for (const auto& e : r.entries) out.push_back(e.model_type + "/" + e.architecture);
  return out;
}

std::shared_ptr<PreTrainedModel> create_model(const Json& config, const std::string& architecture,
                                              const std::string& source) {
  KILN_CHECK(config.is_object(), source, ": a model config must be a JSON object");
  std::string model_type;
  if (auto it = config.find("model_type"); it != config.end() && it->is_string()) model_type = it->get<std::string>();
  std::string wanted = architecture;
  if (wanted.empty()) {
    if (auto it = config.find("architectures"); it != config.end() && it->is_array() && !it->empty() &&
                                                (*it)[0].is_string()) {
      wanted = (*it)[0].get<std::string>();
    }
  }
  ModelFactory factory;
  {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    for (const auto& e : r.entries) {
      if (!wanted.empty() ? e.architecture == wanted : e.model_type == model_type) {
        factory = e.factory;
        break;
      }
    }
  }
  if (!factory) {
    KILN_CHECK(!wanted.empty() || !model_type.empty(), source,
               ": names neither \"architectures\" nor \"model_type\"; registered models: ", known_models());
    KILN_ERROR(source, ": no registered model for ",
               wanted.empty() ? "model_type \"" + model_type + "\"" : "architecture \"" + wanted + "\"",
               "; registered models: ", known_models());
  }
  return factory(config, source);
}

namespace {

// Model weights from a directory: one safetensors file, or HF's shards.
nn::StateDict read_weights(const fs::path& dir) {
  const fs::path single = dir / "model.safetensors";
  if (fs::exists(single)) return nn::serialize::load_safetensors(single.string());
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    Json json = read_json_file(index);
    KILN_CHECK(json.contains("weight_map") && json["weight_map"].is_object(), index.string(),
               ": no \"weight_map\" object");
    std::vector<std::string> shards;
    for (const auto& [name, shard] : json["weight_map"].items()) {
      KILN_CHECK(shard.is_string(), index.string(), ": weight_map[\"", name, "\"] must be a file name");
      if (std::find(shards.begin(), shards.end(), shard.get<std::string>()) == shards.end())
        shards.push_back(shard.get<std::string>());
    }
    nn::StateDict all;
    for (const auto& shard : shards) {
      for (auto& item : nn::serialize::load_safetensors((dir / shard).string())) {
        all.insert(item.key, item.value);
      }
    }
    return all;
  }
  for (const char* other : {"pytorch_model.bin", "tf_model.h5", "flax_model.msgpack"}) {
    KILN_CHECK(!fs::exists(dir / other), dir.string(), " has ", other,
               " but no model.safetensors: Kiln reads safetensors only (in Python: "
               "model.save_pretrained(dir, safe_serialization=True) converts)");
  }
  KILN_ERROR(dir.string(), ": no model.safetensors (nor model.safetensors.index.json)");
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string list(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return "[" + out + "]";
}

}  // namespace

namespace {

// Which checkpoint tensors go where, following HF: the base model's tensors
// move between heads (prefix added or stripped), tensors outside the base
// model (a head's) may be new or unused, since one body serves many heads.
struct LoadPlan {
  nn::StateDict weights;            // what load_state_dict receives, under the model's names
  std::vector<std::string> fresh;   // head tensors the checkpoint lacks
  std::vector<std::string> unused;  // head tensors the model has no place for
  std::vector<std::string> mismatched;  // "key: checkpoint [..], model [..]" (ignore_mismatched_sizes)
  std::vector<std::string> missing;     // base-model tensors the checkpoint lacks
  std::vector<std::string> unexpected;  // base-model tensors the model has no place for
};

LoadPlan plan_load(const PreTrainedModel& model, const nn::StateDict& file, bool ignore_mismatched_sizes) {
  const nn::StateDict own = model.state_dict();
  const std::string prefix = model.base_model_prefix() + ".";
  auto has_prefixed = [&](const nn::StateDict& sd) {
    for (const auto& item : sd)
      if (starts_with(item.key, prefix)) return true;
    return false;
  };
  auto is_head = [&](const std::string& key) { return !model.is_base_model() && !starts_with(key, prefix); };

  LoadPlan plan;
  // The checkpoint under the model's names.
  nn::StateDict renamed;
  if (model.is_base_model() && has_prefixed(file)) {
    for (const auto& item : file) {
      if (starts_with(item.key, prefix)) {
        renamed.insert(item.key.substr(prefix.size()), item.value);
      } else {
        plan.unused.push_back(item.key);
      }
    }
  } else if (!model.is_base_model() && !has_prefixed(file) && has_prefixed(own)) {
    for (const auto& item : file) renamed.insert(prefix + item.key, item.value);
  } else {
    renamed = file;
  }

  std::set<std::string> dropped;  // mismatched sizes, left freshly initialised
  for (const auto& item : renamed) {
    const Tensor* mine = own.find(item.key);
    if (mine == nullptr) {
      (is_head(item.key) ? plan.unused : plan.unexpected).push_back(item.key);
    } else if (ignore_mismatched_sizes && !mine->sizes().equals(item.value.sizes())) {
      dropped.insert(item.key);
      plan.mismatched.push_back(
          kiln::detail::str(item.key, ": checkpoint ", item.value.sizes(), ", model ", mine->sizes()));
    } else {
      plan.weights.insert(item.key, item.value);  // a size mismatch here fails in load_state_dict
    }
  }
  for (const auto& item : own) {
    if (renamed.contains(item.key) || dropped.count(item.key)) continue;
    (is_head(item.key) ? plan.fresh : plan.missing).push_back(item.key);
  }
  return plan;
}

}  // namespace

std::shared_ptr<PreTrainedModel> from_pretrained(const fs::path& directory, const FromPretrainedOptions& options) {
  KILN_CHECK(fs::is_directory(directory), "from_pretrained: ", directory.string(),
             " is not a directory (expected a Hugging Face model directory: config.json + model.safetensors)");
  const fs::path config_path = directory / "config.json";
  KILN_CHECK(fs::exists(config_path), "from_pretrained: ", config_path.string(), " not found");
  Json config = read_json_file(config_path);
  if (options.num_labels) {
    KILN_CHECK(config.is_object(), config_path.string(), ": a model config must be a JSON object");
    const int64_t n = *options.num_labels;
    const auto labels = config.find("id2label");
    if (labels == config.end() || !labels->is_object() || static_cast<int64_t>(labels->size()) != n) {
      config.erase("id2label");
      config.erase("label2id");
    }
    config["num_labels"] = n;
  }
  auto model = create_model(config, options.architecture, config_path.string());

  LoadPlan plan = plan_load(*model, read_weights(directory), options.ignore_mismatched_sizes);
  if (options.strict && !plan.missing.empty()) {
    KILN_ERROR("from_pretrained: ", directory.string(), " lacks tensors the ", model->architecture(),
               " needs: ", list(plan.missing), " (FromPretrainedOptions::strict = false keeps them freshly initialised)");
  }
  if (options.strict && !plan.unexpected.empty()) {
    KILN_ERROR("from_pretrained: ", directory.string(), " has tensors the ", model->architecture(),
               " does not: ", list(plan.unexpected), " (is it a checkpoint of another architecture or config?)");
  }
  plan.fresh.insert(plan.fresh.end(), plan.missing.begin(), plan.missing.end());
  plan.unused.insert(plan.unused.end(), plan.unexpected.begin(), plan.unexpected.end());
  // Strictness is settled above; a size mismatch is still an error here.
  model->load_state_dict(plan.weights, /*strict=*/false);
  if (!plan.fresh.empty()) {
    std::cerr << "kiln: some weights of " << model->architecture() << " were not in " << directory.string()
              << " and are newly initialised: " << list(plan.fresh) << "\n";
  }
  if (!plan.mismatched.empty()) {
    std::cerr << "kiln: some weights of " << directory.string() << " did not fit " << model->architecture()
              << " and were left freshly initialised: " << list(plan.mismatched) << "\n";
  }
  if (!plan.unused.empty()) {
    std::cerr << "kiln: " << plan.unused.size() << " tensors of " << directory.string() << " have no place in "
              << model->architecture() << " and were not used: " << list(plan.unused) << "\n";
  }
  // HF's from_pretrained returns the model in eval mode; so does Kiln.
  model->eval();
  return model;
}

void save_pretrained(const PreTrainedModel& model, const fs::path& directory) {
  std::error_code ec;
  fs::create_directories(directory, ec);
  KILN_CHECK(!ec && fs::is_directory(directory), "save_pretrained: cannot create directory ", directory.string(),
             ": ", ec.message());
  // HF writes {"format": "pt"} so that transformers reads the file as PyTorch weights.
  nn::serialize::save_safetensors((directory / "model.safetensors").string(), model.state_dict(), {{"format", "pt"}},
                                  nn::serialize::SafetensorsLayout::Python);
  nn::serialize::write_file_atomically((directory / "config.json").string(), model.config_json().dump(2) + "\n",
                                       "save_pretrained");
}

}  // namespace kiln::models
