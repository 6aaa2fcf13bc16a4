#pragma once
// The fields every Hugging Face config carries (transformers'
// PretrainedConfig) that Kiln's models read, and the strict JSON access the
// family configs are parsed with. A family config (BitConfig, ...) derives
// from PretrainedConfig and adds its own fields with HF's names and defaults.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::models {

using Json = nlohmann::json;

struct PretrainedConfig {
  std::string model_type;
  std::vector<std::string> architectures;
  // HF's default is two labels, LABEL_0 and LABEL_1.
  std::map<int64_t, std::string> id2label{{0, "LABEL_0"}, {1, "LABEL_1"}};
  // "regression" | "single_label_classification" | "multi_label_classification";
  // unset: the classification head infers it from the first labels it sees
  // (and, as HF, remembers that choice).
  std::optional<std::string> problem_type;
  bool output_hidden_states = false;
  bool output_attentions = false;
  // Keys of the config file Kiln does not use (torch_dtype, transformers_version,
  // ...): kept so that save_pretrained writes them back.
  Json extra = Json::object();

  int64_t num_labels() const { return static_cast<int64_t>(id2label.size()); }
  // As HF's num_labels setter: id2label becomes LABEL_0 .. LABEL_{n-1} when the
  // count changes.
  void set_num_labels(int64_t n);
  std::map<std::string, int64_t> label2id() const;
};

// Reads a config file's JSON text (errors name the file).
Json read_json_file(const std::filesystem::path& path);

// Typed, strict access to a config's keys: a present key of the wrong type
// is an error naming the key and the source; an absent key keeps the default.
// Every key read is remembered, so the caller can sweep the rest into `extra`.
class JsonConfigReader {
 public:
  JsonConfigReader(const Json& json, std::string source);

  bool has(const std::string& key) const;
  void read(const std::string& key, bool& out);
  void read(const std::string& key, int64_t& out);
  void read(const std::string& key, double& out);
  void read(const std::string& key, std::string& out);
  void read(const std::string& key, std::optional<std::string>& out);  // null → unset
  void read(const std::string& key, std::vector<int64_t>& out);
  void read(const std::string& key, std::optional<std::vector<int64_t>>& out);
  void read(const std::string& key, std::vector<std::string>& out);
  void read(const std::string& key, std::optional<std::vector<std::string>>& out);

  // The PretrainedConfig fields: model_type, architectures, id2label/label2id
  // or num_labels, problem_type, output_hidden_states, output_attentions.
  void read_common(PretrainedConfig& config);
  // Everything not read so far (for PretrainedConfig::extra).
  Json unread() const;

  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  const std::string& source() const { return source_; }

 private:
  const Json* find(const std::string& key);
  const Json& json_;
  std::string source_;
  std::vector<std::string> read_keys_;
};

// The PretrainedConfig fields as HF writes them (id2label with string keys).
void write_common(const PretrainedConfig& config, Json& out);

}  // namespace kiln::models
