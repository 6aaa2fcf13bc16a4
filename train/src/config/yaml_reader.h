#pragma once
// Strict, typed reading of a YAML tree for run configs: every value is read
// through here so that every problem comes out the same way,
// "FILE:LINE:COL: key.path: problem", with the place being the --set
// override that put the value there when there was one.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/train/run_config.h"

namespace kiln::train::config {

// Optimal-string-alignment distance (a swap of two neighbours costs 1, so
// "trian" is one edit from "train").
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate nearest to `word` when it is close enough to be a likely
// typo; empty otherwise.
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);
// " (did you mean 'PREFIX.X'?)" or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates,
                         const std::string& prefix = "");

// Where the config came from: the file's name and the --set overrides.
class Context {
 public:
  explicit Context(std::string source) : source_(std::move(source)) {}
  const std::string& source() const { return source_; }
  // Records that `path` ("data.train.path") was set by `text` ("--set ...").
  void add_override(std::string path, std::string text);

  // "FILE:LINE:COL" (1-based), or "--set K=V" for a value an override
  // gave, or "FILE" when there is no position.
  std::string where(const std::string& path, const YAML::Mark& mark) const;
  // Throws ConfigError "WHERE: path: message".
  [[noreturn]] void fail(const std::string& path, const YAML::Mark& mark, const std::string& message) const;
  // Throws ConfigError "WHERE: message" (the message names the key itself).
  [[noreturn]] void fail_raw(const std::string& path, const YAML::Mark& mark, const std::string& message) const;

 private:
  std::string source_;
  std::vector<std::pair<std::string, std::string>> overrides_;
};

// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string join_path(const std::string& prefix, const std::string& key);

// 'abc', a list, a map: how a value is named in "got ..." messages.
std::string describe(const YAML::Node& node);
// A scalar written in quotes (or tagged !!str) is a string whatever it looks like.
bool is_quoted(const YAML::Node& node);
// Absent, or a plain null (`key:`, `~`, `null`).
bool is_null(const YAML::Node& node);

// Scalars, converted strictly (YAML 1.2 core schema): errors name `path`.
int64_t to_int(const Context& ctx, const std::string& path, const YAML::Node& node);
double to_double(const Context& ctx, const std::string& path, const YAML::Node& node);
bool to_bool(const Context& ctx, const std::string& path, const YAML::Node& node);
std::string to_string(const Context& ctx, const std::string& path, const YAML::Node& node);
// A YAML value as JSON (for model.config): plain scalars by the core schema,
// quoted ones as strings. Map keys must be scalars.
nlohmann::json to_json(const Context& ctx, const std::string& path, const YAML::Node& node);

// A YAML map whose keys are checked up front against the valid ones: an
// unknown key is an error at that key's line naming the nearest valid key,
// a duplicate key is an error at its second occurrence. An absent or null
// node reads as an empty map (every key takes its default).
class MapReader {
 public:
  MapReader(const Context& ctx, const YAML::Node& node, std::string path, std::vector<std::string> keys,
            YAML::Mark parent_mark = YAML::Mark::null_mark());

  const Context& ctx() const { return ctx_; }
  const std::string& path() const { return path_; }
  std::string key_path(const std::string& key) const { return join_path(path_, key); }
  // The map's own position (its parent's when the map is absent).
  YAML::Mark mark() const { return mark_; }
  bool present() const { return present_; }

  // Present with a non-null value.
  bool has(const std::string& key) const;
  // The value (an invalid node when absent).
  YAML::Node get(const std::string& key) const;
  // The value's position, else the key's, else the map's.
  YAML::Mark mark(const std::string& key) const;
  YAML::Mark key_mark(const std::string& key) const;

  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  [[noreturn]] void fail_missing(const std::string& key, const std::string& what) const;

  // Absent or null keeps `out` as it is.
  void read(const std::string& key, std::string& out) const;
  void read(const std::string& key, bool& out) const;
  void read(const std::string& key, int64_t& out) const;
  void read(const std::string& key, int& out) const;
  void read(const std::string& key, uint64_t& out) const;
  void read(const std::string& key, double& out) const;
  void read(const std::string& key, std::optional<double>& out) const;
  void read(const std::string& key, std::optional<int64_t>& out) const;
  void read(const std::string& key, std::vector<int64_t>& out) const;
  void read(const std::string& key, std::vector<double>& out) const;
  // A string that must be one of `choices` (did-you-mean otherwise).
  void read_choice(const std::string& key, std::string& out, const std::vector<std::string>& choices) const;

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node, value;
  };
  const Entry* find(const std::string& key) const;
  void check_known(const std::string& key) const;

  const Context& ctx_;
  std::string path_;
  std::vector<std::string> keys_;
  std::vector<Entry> entries_;
  YAML::Mark mark_;
  bool present_ = false;
};

// "a, b or c" for messages.
std::string one_of(const std::vector<std::string>& choices);

}  // namespace kiln::train::config
