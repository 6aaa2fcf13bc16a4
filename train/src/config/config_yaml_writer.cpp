// The resolved run config as YAML: every key of every section in the
// header's order, each value written so that it reads back to the same
// value (doubles in their shortest round-trip form, strings quoted whenever
// a plain scalar could read as something else).
#include <charconv>
#include <cmath>
#include <sstream>

#include "sections.h"

namespace kiln::train::config {

std::string yaml_string(const std::string& s) {
  auto plain_ok = [&] {
    if (s.empty()) return false;
    const unsigned char first = s[0];
    if (!(std::isalpha(first) || first == '_' || first == '/')) return false;
    for (unsigned char ch : s) {
      if (!(std::isalnum(ch) || ch == '_' || ch == '.' || ch == '/' || ch == '-')) return false;
    }
    // Words another YAML reader (1.1: yes/no/on/off) would take for a bool or null.
    std::string lower = s;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (const char* word : {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}) {
      if (lower == word) return false;
    }
    return true;
  };
  if (plain_ok()) return s;
  return nlohmann::json(s).dump();  // JSON's escapes are YAML double-quoted escapes
}

std::string yaml_double(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string out(buf, ec == std::errc() ? end : buf);
  // Keep it a float when read back ("2" would be an integer).
  if (out.find_first_of(".e") == std::string::npos) out += ".0";
  return out;
}

std::string yaml_list(const std::vector<int64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

std::string yaml_list(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + yaml_double(v[i]);
  return out + "]";
}

std::string yaml_flow(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float()) return yaml_double(v.get<double>());
  if (v.is_number()) return v.dump();
  if (v.is_string()) return yaml_string(v.get<std::string>());
  std::string out;
  if (v.is_array()) {
    for (const auto& e : v) out += (out.empty() ? "" : ", ") + yaml_flow(e);
    return "[" + out + "]";
  }
  for (const auto& [key, value] : v.items()) out += (out.empty() ? "" : ", ") + yaml_string(key) + ": " + yaml_flow(value);
  return "{" + out + "}";
}

namespace {

// Lines of "key: value" under a section, two spaces per level.
class Writer {
 public:
  void open(const std::string& key) { line(key + ":"), ++depth_; }
  void close() { --depth_; }
  void key(const std::string& key, const std::string& value) { line(key + ": " + value); }
  void key(const std::string& key, bool value) { line(key + ": " + (value ? "true" : "false")); }
  void key(const std::string& key, int64_t value) { line(key + ": " + std::to_string(value)); }
  void key(const std::string& key, int value) { line(key + ": " + std::to_string(value)); }
  void key(const std::string& key, uint64_t value) { line(key + ": " + std::to_string(value)); }
  void key(const std::string& key, double value) { line(key + ": " + yaml_double(value)); }
  void str(const std::string& key, const std::string& value) { line(key + ": " + yaml_string(value)); }
  void raw(const std::string& text) { line(text); }
  std::string text() const { return out_.str(); }

 private:
  void line(const std::string& text) { out_ << std::string(2 * depth_, ' ') << text << "\n"; }
  std::ostringstream out_;
  int depth_ = 0;
};

void write_dataset(Writer& w, const DatasetSection& d) {
  w.str("type", d.type);
  w.str("path", d.path);
  w.str("split", d.split);
  w.str("classes", d.classes);
  w.key("skip_bad_images", d.skip_bad_images);
  w.key("limit", d.limit);
  if (d.transforms.empty()) {
    w.key("transforms", std::string("[]"));
    return;
  }
  w.open("transforms");
  for (const auto& t : d.transforms) w.raw("- " + transform_to_yaml(t));
  w.close();
}

}  // namespace

}  // namespace kiln::train::config

namespace kiln::train {

std::string to_yaml(const RunConfig& c) {
  using namespace config;
  Writer w;
  w.open("run");
  w.str("name", c.run.name);
  w.str("output_dir", c.run.output_dir);
  w.key("seed", c.run.seed);
  w.str("device", c.run.device);
  w.key("threads", c.run.threads);
  w.close();

  w.open("model");
  w.str("architecture", c.model.architecture);
  if (c.model.config.is_object() && !c.model.config.empty()) {
    w.open("config");
    for (const auto& [key, value] : c.model.config.items()) w.key(yaml_string(key), yaml_flow(value));
    w.close();
  } else {
    w.key("config", std::string("{}"));
  }
  w.str("from_pretrained", c.model.from_pretrained);
  w.key("num_labels", c.model.num_labels ? std::to_string(*c.model.num_labels) : std::string("null"));
  w.key("ignore_mismatched_sizes", c.model.ignore_mismatched_sizes);
  w.close();

  w.open("data");
  w.open("train");
  write_dataset(w, c.data.train);
  w.close();
  if (c.data.eval) {
    w.open("eval");
    write_dataset(w, *c.data.eval);
    w.close();
  } else {
    w.key("eval", std::string("null"));
  }
  w.key("batch_size", c.data.batch_size);
  w.key("eval_batch_size", c.data.eval_batch_size);
  w.key("workers", c.data.workers);
  w.key("prefetch", c.data.prefetch);
  w.key("shuffle", c.data.shuffle);
  w.key("drop_last", c.data.drop_last);
  w.close();

  w.open("optim");
  w.str("name", c.optim.name);
  w.key("lr", c.optim.lr);
  w.key("weight_decay", c.optim.weight_decay ? yaml_double(*c.optim.weight_decay) : std::string("null"));
  w.key("momentum", c.optim.momentum);
  w.key("dampening", c.optim.dampening);
  w.key("nesterov", c.optim.nesterov);
  w.key("beta1", c.optim.beta1);
  w.key("beta2", c.optim.beta2);
  w.key("eps", c.optim.eps);
  w.key("no_decay_bias_and_norm", c.optim.no_decay_bias_and_norm);
  w.close();

  w.open("schedule");
  w.str("name", c.schedule.name);
  w.key("warmup_steps", c.schedule.warmup_steps);
  w.key("warmup_ratio", c.schedule.warmup_ratio);
  w.key("min_lr", c.schedule.min_lr);
  w.key("gamma", c.schedule.gamma);
  w.key("step_size", c.schedule.step_size);
  w.key("milestones", yaml_list(c.schedule.milestones));
  w.key("milestone_fractions", yaml_list(c.schedule.milestone_fractions));
  w.key("power", c.schedule.power);
  w.key("lr_end", c.schedule.lr_end);
  w.close();

  w.open("train");
  w.key("max_steps", c.train.max_steps);
  w.key("epochs", c.train.epochs);
  w.key("grad_accum", c.train.grad_accum);
  w.key("clip_norm", c.train.clip_norm);
  w.str("precision", c.train.precision);
  w.key("log_every", c.train.log_every);
  w.key("eval_every", c.train.eval_every);
  w.str("nan_policy", c.train.nan_policy);
  w.key("label_smoothing", c.train.label_smoothing);
  w.close();

  w.open("checkpoint");
  w.key("every", c.checkpoint.every);
  w.key("keep_last", c.checkpoint.keep_last);
  w.str("keep_best", c.checkpoint.keep_best);
  w.str("best_mode", c.checkpoint.best_mode);
  w.str("resume", c.checkpoint.resume);
  w.key("resume_strict", c.checkpoint.resume_strict);
  w.str("init_from", c.checkpoint.init_from);
  w.close();

  w.open("early_stopping");
  w.str("metric", c.early_stopping.metric);
  w.key("patience", c.early_stopping.patience);
  w.str("mode", c.early_stopping.mode);
  w.key("min_delta", c.early_stopping.min_delta);
  w.close();
  return w.text();
}

}  // namespace kiln::train
