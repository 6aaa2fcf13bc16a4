// Strict typed reading of run-config YAML: the YAML 1.2 core schema for
// scalars (so `yes` is a string, not a bool, and "5" in quotes is not a
// number), positions from yaml-cpp's marks, did-you-mean for unknown keys.
#include "yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <regex>

namespace kiln::train::config {

size_t edit_distance(const std::string& a, const std::string& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::string nearest(const std::string& word, const std::vector<std::string>& candidates) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  const std::string w = lower(word);
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  // Ties go to the candidate nearest in length ("adamx": adamw, not adam).
  auto length_gap = [&](const std::string& c) { return c.size() > word.size() ? c.size() - word.size() : word.size() - c.size(); };
  for (const auto& c : candidates) {
    const size_t d = edit_distance(w, lower(c));
    if (d < best_distance || (d == best_distance && length_gap(c) < length_gap(best))) best_distance = d, best = c;
  }
  // A third of the word (at least two edits) is a typo; more is another word.
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  if (best.empty() || best_distance > limit || best_distance >= std::max(word.size(), best.size())) return "";
  return best;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates,
                         const std::string& prefix) {
  const std::string n = nearest(word, candidates);
  return n.empty() ? "" : " (did you mean '" + join_path(prefix, n) + "'?)";
}

std::string one_of(const std::vector<std::string>& choices) {
  std::string out;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out += i + 1 == choices.size() ? " or " : ", ";
    out += choices[i];
  }
  return out;
}

std::string join_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

// ---- Context ----

void Context::add_override(std::string path, std::string text) {
  overrides_.emplace_back(std::move(path), std::move(text));
}

namespace {
bool within(const std::string& path, const std::string& ancestor) {
  return path == ancestor || (path.size() > ancestor.size() && path.compare(0, ancestor.size(), ancestor) == 0 &&
                              (path[ancestor.size()] == '.' || path[ancestor.size()] == '['));
}
}  // namespace

std::string Context::where(const std::string& path, const YAML::Mark& mark) const {
  // The last override wins, as it does when they are applied.
  for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
    if (within(path, it->first)) return it->second;
  }
  if (!mark.is_null()) {
    return source_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  // A map an override created has no place in the file: name the override.
  for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
    if (within(it->first, path)) return it->second;
  }
  return source_;
}

void Context::fail(const std::string& path, const YAML::Mark& mark, const std::string& message) const {
  // A message from a lower layer may already start with the path (its source name).
  const bool named = path.empty() || message.rfind(path + ":", 0) == 0;
  throw ConfigError(where(path, mark) + ": " + (named ? "" : path + ": ") + message);
}

void Context::fail_raw(const std::string& path, const YAML::Mark& mark, const std::string& message) const {
  throw ConfigError(where(path, mark) + ": " + message);
}

// ---- scalars ----

bool is_quoted(const YAML::Node& node) {
  return node.IsScalar() && (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str");
}

namespace {

bool plain(const YAML::Node& node) { return node.IsScalar() && !is_quoted(node); }

bool null_text(const std::string& s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }
bool true_text(const std::string& s) { return s == "true" || s == "True" || s == "TRUE"; }
bool false_text(const std::string& s) { return s == "false" || s == "False" || s == "FALSE"; }

bool int_text(const std::string& s) {
  static const std::regex re("[-+]?[0-9]+");
  return std::regex_match(s, re);
}
bool float_text(const std::string& s) {
  static const std::regex re(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  return std::regex_match(s, re);
}
bool inf_text(const std::string& s) {
  static const std::regex re(R"([-+]?\.(inf|Inf|INF))");
  return std::regex_match(s, re);
}
bool nan_text(const std::string& s) { return s == ".nan" || s == ".NaN" || s == ".NAN"; }

// from_chars takes no leading '+'.
std::string_view unsigned_part(const std::string& s) {
  std::string_view v(s);
  if (!v.empty() && v[0] == '+') v.remove_prefix(1);
  return v;
}

}  // namespace

bool is_null(const YAML::Node& node) { return !node.IsDefined() || node.IsNull() || (plain(node) && null_text(node.Scalar())); }

std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing (null)";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  std::string text = node.Scalar();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return (is_quoted(node) ? "the string '" : "'") + text + "'";
}

int64_t to_int(const Context& ctx, const std::string& path, const YAML::Node& node) {
  if (!plain(node) || !int_text(node.Scalar())) ctx.fail(path, node.Mark(), "expected an integer, got " + describe(node));
  const std::string_view text = unsigned_part(node.Scalar());
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    ctx.fail(path, node.Mark(), "integer " + node.Scalar() + " is out of range");
  }
  return value;
}

double to_double(const Context& ctx, const std::string& path, const YAML::Node& node) {
  if (!plain(node) || !(float_text(node.Scalar()) || inf_text(node.Scalar()) || nan_text(node.Scalar()))) {
    ctx.fail(path, node.Mark(), "expected a number, got " + describe(node));
  }
  if (!float_text(node.Scalar())) ctx.fail(path, node.Mark(), "expected a finite number, got " + describe(node));
  const std::string_view text = unsigned_part(node.Scalar());
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    ctx.fail(path, node.Mark(), "number " + node.Scalar() + " is out of range");
  }
  return value;
}

bool to_bool(const Context& ctx, const std::string& path, const YAML::Node& node) {
  if (plain(node) && true_text(node.Scalar())) return true;
  if (plain(node) && false_text(node.Scalar())) return false;
  ctx.fail(path, node.Mark(), "expected true or false, got " + describe(node));
}

std::string to_string(const Context& ctx, const std::string& path, const YAML::Node& node) {
  // Any scalar reads as its text: `name: 123` is the name "123".
  if (!node.IsScalar()) ctx.fail(path, node.Mark(), "expected a string, got " + describe(node));
  return node.Scalar();
}

nlohmann::json to_json(const Context& ctx, const std::string& path, const YAML::Node& node) {
  using nlohmann::json;
  if (!node.IsDefined() || node.IsNull()) return nullptr;
  if (node.IsSequence()) {
    json out = json::array();
    for (size_t i = 0; i < node.size(); ++i) out.push_back(to_json(ctx, path + "[" + std::to_string(i) + "]", node[i]));
    return out;
  }
  if (node.IsMap()) {
    json out = json::object();
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) ctx.fail(path, it->first.Mark(), "map keys must be strings");
      const std::string key = it->first.Scalar();
      if (out.contains(key)) ctx.fail(join_path(path, key), it->first.Mark(), "duplicate key");
      out[key] = to_json(ctx, join_path(path, key), it->second);
    }
    return out;
  }
  if (is_quoted(node)) return node.Scalar();
  const std::string& s = node.Scalar();
  if (null_text(s)) return nullptr;
  if (true_text(s)) return true;
  if (false_text(s)) return false;
  if (int_text(s)) return to_int(ctx, path, node);
  if (float_text(s)) return to_double(ctx, path, node);
  if (inf_text(s) || nan_text(s)) ctx.fail(path, node.Mark(), "expected a finite number, got " + describe(node));
  return s;
}

// ---- MapReader ----

MapReader::MapReader(const Context& ctx, const YAML::Node& node, std::string path, std::vector<std::string> keys,
                     YAML::Mark parent_mark)
    : ctx_(ctx), path_(std::move(path)), keys_(std::move(keys)), mark_(parent_mark) {
  if (is_null(node)) {
    if (node.IsDefined() && !node.Mark().is_null()) mark_ = node.Mark();
    return;
  }
  if (!node.IsMap()) ctx_.fail(path_, node.Mark(), "expected a map of keys (" + one_of(keys_) + "), got " + describe(node));
  present_ = true;
  mark_ = node.Mark();
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node k = it->first, value = it->second;  // copies: it-> is a temporary proxy
    if (!k.IsScalar()) ctx_.fail(path_, k.Mark(), "keys must be names, got " + describe(k));
    const std::string key = k.Scalar();
    const std::string full = join_path(path_, key);
    if (std::find(keys_.begin(), keys_.end(), key) == keys_.end()) {
      ctx_.fail_raw(full, k.Mark(), "unknown key '" + full + "'" + did_you_mean(key, keys_, path_));
    }
    if (find(key) != nullptr) ctx_.fail(full, k.Mark(), "duplicate key");
    entries_.push_back(Entry{key, k, value});
  }
}

const MapReader::Entry* MapReader::find(const std::string& key) const {
  for (const auto& e : entries_)
    if (e.key == key) return &e;
  return nullptr;
}

void MapReader::check_known(const std::string& key) const {
  // A programming error in the section readers, not a user's.
  if (std::find(keys_.begin(), keys_.end(), key) == keys_.end()) {
    throw ConfigError("internal: " + join_path(path_, key) + " is not among the keys declared for " + path_);
  }
}

bool MapReader::has(const std::string& key) const {
  check_known(key);
  const Entry* e = find(key);
  return e != nullptr && !is_null(e->value);
}

YAML::Node MapReader::get(const std::string& key) const {
  check_known(key);
  const Entry* e = find(key);
  return e ? e->value : YAML::Node(YAML::NodeType::Undefined);
}

YAML::Mark MapReader::key_mark(const std::string& key) const {
  const Entry* e = find(key);
  return e && !e->key_node.Mark().is_null() ? e->key_node.Mark() : mark_;
}

YAML::Mark MapReader::mark(const std::string& key) const {
  const Entry* e = find(key);
  if (e && e->value.IsDefined() && !e->value.Mark().is_null()) return e->value.Mark();
  return key_mark(key);
}

void MapReader::fail(const std::string& key, const std::string& message) const {
  ctx_.fail(key_path(key), mark(key), message);
}

void MapReader::fail_missing(const std::string& key, const std::string& what) const {
  // Placed at the map that lacks it (or the override that made the map).
  throw ConfigError(ctx_.where(path_, mark_) + ": " + key_path(key) + ": missing; required (" + what + ")");
}

void MapReader::read(const std::string& key, std::string& out) const {
  if (has(key)) out = to_string(ctx_, key_path(key), get(key));
}
void MapReader::read(const std::string& key, bool& out) const {
  if (has(key)) out = to_bool(ctx_, key_path(key), get(key));
}
void MapReader::read(const std::string& key, int64_t& out) const {
  if (has(key)) out = to_int(ctx_, key_path(key), get(key));
}
void MapReader::read(const std::string& key, int& out) const {
  if (!has(key)) return;
  const int64_t v = to_int(ctx_, key_path(key), get(key));
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    fail(key, "integer " + std::to_string(v) + " is out of range");
  }
  out = static_cast<int>(v);
}
void MapReader::read(const std::string& key, uint64_t& out) const {
  if (!has(key)) return;
  const YAML::Node v = get(key);
  if (plain(v) && int_text(v.Scalar()) && v.Scalar()[0] != '-') {
    const std::string_view text = unsigned_part(v.Scalar());
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec != std::errc() || end != text.data() + text.size()) fail(key, "integer " + v.Scalar() + " is out of range");
    return;
  }
  fail(key, "expected a non-negative integer, got " + describe(v));
}
void MapReader::read(const std::string& key, double& out) const {
  if (has(key)) out = to_double(ctx_, key_path(key), get(key));
}
void MapReader::read(const std::string& key, std::optional<double>& out) const {
  if (has(key)) out = to_double(ctx_, key_path(key), get(key));
  else out.reset();
}
void MapReader::read(const std::string& key, std::optional<int64_t>& out) const {
  if (has(key)) out = to_int(ctx_, key_path(key), get(key));
  else out.reset();
}

void MapReader::read(const std::string& key, std::vector<int64_t>& out) const {
  if (!has(key)) return;
  const YAML::Node v = get(key);
  if (!v.IsSequence()) fail(key, "expected a list of integers, got " + describe(v));
  out.clear();
  for (size_t i = 0; i < v.size(); ++i) out.push_back(to_int(ctx_, key_path(key) + "[" + std::to_string(i) + "]", v[i]));
}

void MapReader::read(const std::string& key, std::vector<double>& out) const {
  if (!has(key)) return;
  const YAML::Node v = get(key);
  if (!v.IsSequence()) fail(key, "expected a list of numbers, got " + describe(v));
  out.clear();
  for (size_t i = 0; i < v.size(); ++i) {
    out.push_back(to_double(ctx_, key_path(key) + "[" + std::to_string(i) + "]", v[i]));
  }
}

void MapReader::read_choice(const std::string& key, std::string& out, const std::vector<std::string>& choices) const {
  if (!has(key)) return;
  const std::string value = to_string(ctx_, key_path(key), get(key));
  if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
    const std::string guess = nearest(value, choices);
    fail(key, "'" + value + "' is not one of " + one_of(choices) + (guess.empty() ? "" : " (did you mean '" + guess + "'?)"));
  }
  out = value;
}

}  // namespace kiln::train::config
