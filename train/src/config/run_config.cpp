// Run configs from YAML: the document and its --set overrides, then every
// section through the strict reader, in the header's order.
#include "kiln/train/run_config.h"

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

#include "sections.h"
#include "yaml_reader.h"

namespace kiln::train {

namespace fs = std::filesystem;
using config::Context;
using config::MapReader;

namespace {

const std::vector<std::string> kSections = {"run",   "model",      "data",          "optim",
                                            "schedule", "train", "checkpoint", "early_stopping"};

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

// "a.b.c=value": sets root[a][b][c] to the value parsed as YAML, creating
// the maps on the way.
void apply_override(Context& ctx, YAML::Node& root, const std::string& text) {
  const std::string label = "--set " + text;
  const auto eq = text.find('=');
  if (eq == std::string::npos) throw ConfigError(label + ": expected KEY.PATH=VALUE (for example train.max_steps=100)");
  const std::string key = trim(text.substr(0, eq));
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
  if (key.empty() || key.back() == '.' || std::find(parts.begin(), parts.end(), "") != parts.end()) {
    throw ConfigError(label + ": '" + key + "' is not a key path (expected names joined by dots, as data.batch_size)");
  }
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError(label + ": the value is not valid YAML: " + e.msg);
  }
  if (config::is_null(root)) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw ConfigError(label + ": the config is not a map of sections");
  // Node assignment rebinds shared data in yaml-cpp, so walk with reset().
  YAML::Node cur;
  cur.reset(root);
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked = config::join_path(walked, parts[i]);
    YAML::Node next = cur[parts[i]];
    if (config::is_null(next)) {
      YAML::Node fresh(YAML::NodeType::Map);
      cur[parts[i]] = fresh;
      next.reset(fresh);
    } else if (!next.IsMap()) {
      throw ConfigError(label + ": " + walked + " is " + config::describe(next) + ", not a map of keys");
    }
    cur.reset(next);
  }
  cur[parts.back()] = value;
  ctx.add_override(key, label);
}

void read_run_config(const Context& ctx, const YAML::Node& root, RunConfig& c) {
  const YAML::Mark top = root.IsDefined() && !root.Mark().is_null() ? root.Mark() : YAML::Mark();
  if (config::is_null(root)) throw ConfigError(ctx.source() + ": the config is empty (expected sections " + config::one_of(kSections) + ")");
  MapReader r(ctx, root, "", kSections, top);
  config::read_run_section(ctx, r.get("run"), r.key_mark("run"), c);
  if (!r.has("model")) r.fail_missing("model", "model.architecture with model.config, or model.from_pretrained");
  config::read_model_section(ctx, r.get("model"), r.key_mark("model"), c);
  if (!r.has("data")) r.fail_missing("data", "data.train with its type and path");
  config::read_data_section(ctx, r.get("data"), r.key_mark("data"), c);
  config::read_optim_section(ctx, r.get("optim"), r.key_mark("optim"), c);
  config::read_schedule_section(ctx, r.get("schedule"), r.key_mark("schedule"), c);
  if (!r.has("train")) r.fail_missing("train", "train.max_steps or train.epochs");
  config::read_train_section(ctx, r.get("train"), r.key_mark("train"), c);
  config::read_checkpoint_section(ctx, r.get("checkpoint"), r.key_mark("checkpoint"), c);
  config::read_early_stopping_section(ctx, r.get("early_stopping"), r.key_mark("early_stopping"), c);
}

}  // namespace

RunConfig parse_run_config(const std::string& yaml_text, const std::string& source,
                           const std::vector<std::string>& overrides) {
  Context ctx(source);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(ctx.where("", e.mark) + ": invalid YAML: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ": invalid YAML: " + e.msg);
  }
  for (const auto& text : overrides) apply_override(ctx, root, text);
  RunConfig c;
  c.source = source;
  read_run_config(ctx, root, c);
  return c;
}

RunConfig load_run_config(const fs::path& path, const std::vector<std::string>& overrides) {
  if (fs::is_directory(path)) throw ConfigError(path.string() + ": is a directory, not a run config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError(path.string() + ": cannot read the run config" +
                      (fs::exists(path) ? "" : " (no such file)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_run_config(text.str(), path.string(), overrides);
}

namespace config {

namespace {
void check_positive(const MapReader& r, const std::string& key, double v) {
  if (!(v > 0)) r.fail(key, "must be > 0, got " + yaml_double(v));
}
void check_non_negative(const MapReader& r, const std::string& key, double v) {
  if (!(v >= 0)) r.fail(key, "must be >= 0, got " + yaml_double(v));
}
void check_min(const MapReader& r, const std::string& key, int64_t v, int64_t min) {
  if (v < min) r.fail(key, "must be >= " + std::to_string(min) + ", got " + std::to_string(v));
}
void check_fraction(const MapReader& r, const std::string& key, double v) {
  if (!(v >= 0 && v < 1)) r.fail(key, "must be in [0, 1), got " + yaml_double(v));
}
bool is_eval_metric(const std::string& m) { return m.rfind("eval/", 0) == 0; }

// A metric name (keep_best, early_stopping.metric): known, and an eval
// metric only when there is eval data. Its mode defaults by the metric:
// smaller is better for a loss.
void read_metric(const MapReader& r, const std::string& key, const std::string& mode_key, const RunConfig& c,
                 std::string& metric, std::string& mode) {
  r.read(key, metric);
  if (!metric.empty() && std::find(known_metrics().begin(), known_metrics().end(), metric) == known_metrics().end()) {
    r.fail(key, "'" + metric + "' is not one of " + one_of(known_metrics()) + did_you_mean(metric, known_metrics()));
  }
  if (!metric.empty() && is_eval_metric(metric) && !c.data.eval) {
    r.fail(key, "'" + metric + "' is measured on data.eval, which this config does not have");
  }
  if (!r.has(mode_key)) mode = metric.find("loss") != std::string::npos ? "min" : "max";
  r.read_choice(mode_key, mode, {"max", "min"});
}
}  // namespace

void read_run_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& c) {
  MapReader r(ctx, node, "run", {"name", "output_dir", "seed", "device", "threads"}, parent);
  RunSection& s = c.run;
  r.read("name", s.name);
  if (s.name.empty()) r.fail("name", "must not be empty");
  r.read("output_dir", s.output_dir);
  if (s.output_dir.empty()) s.output_dir = "runs/" + s.name;
  r.read("seed", s.seed);
  r.read("device", s.device);
  static const std::regex device_re("cpu|cuda(:[0-9]+)?");
  if (!std::regex_match(s.device, device_re)) {
    r.fail("device", "'" + s.device + "' is not cpu, cuda or cuda:N" + did_you_mean(s.device, {"cpu", "cuda"}));
  }
  r.read("threads", s.threads);
  check_min(r, "threads", s.threads, 0);
}

void read_optim_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& c) {
  MapReader r(ctx, node, "optim",
              {"name", "lr", "weight_decay", "momentum", "dampening", "nesterov", "beta1", "beta2", "eps",
               "no_decay_bias_and_norm"},
              parent);
  OptimSection& s = c.optim;
  r.read_choice("name", s.name, {"sgd", "adam", "adamw"});
  r.read("lr", s.lr);
  check_positive(r, "lr", s.lr);
  r.read("weight_decay", s.weight_decay);
  if (s.weight_decay) check_non_negative(r, "weight_decay", *s.weight_decay);
  else s.weight_decay = s.name == "adamw" ? 0.01 : 0.0;
  r.read("momentum", s.momentum);
  check_non_negative(r, "momentum", s.momentum);
  r.read("dampening", s.dampening);
  check_non_negative(r, "dampening", s.dampening);
  r.read("nesterov", s.nesterov);
  r.read("beta1", s.beta1);
  check_fraction(r, "beta1", s.beta1);
  r.read("beta2", s.beta2);
  check_fraction(r, "beta2", s.beta2);
  r.read("eps", s.eps);
  check_non_negative(r, "eps", s.eps);
  r.read("no_decay_bias_and_norm", s.no_decay_bias_and_norm);
  // A hyperparameter of the other optimizer is a mistake, not a no-op.
  const OptimSection defaults;
  if (s.name != "sgd") {
    if (s.momentum != defaults.momentum) r.fail("momentum", "is an sgd setting; optim.name is " + s.name);
    if (s.dampening != defaults.dampening) r.fail("dampening", "is an sgd setting; optim.name is " + s.name);
    if (s.nesterov) r.fail("nesterov", "is an sgd setting; optim.name is " + s.name);
  } else {
    if (s.beta1 != defaults.beta1) r.fail("beta1", "is an adam/adamw setting; optim.name is sgd");
    if (s.beta2 != defaults.beta2) r.fail("beta2", "is an adam/adamw setting; optim.name is sgd");
    if (s.eps != defaults.eps) r.fail("eps", "is an adam/adamw setting; optim.name is sgd");
    if (s.nesterov && (s.momentum <= 0 || s.dampening != 0)) {
      r.fail("nesterov", "needs momentum > 0 and dampening 0 (got momentum " + yaml_double(s.momentum) +
                             ", dampening " + yaml_double(s.dampening) + ")");
    }
  }
}

void read_schedule_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& c) {
  MapReader r(ctx, node, "schedule",
              {"name", "warmup_steps", "warmup_ratio", "min_lr", "gamma", "step_size", "milestones",
               "milestone_fractions", "power", "lr_end"},
              parent);
  ScheduleSection& s = c.schedule;
  r.read_choice("name", s.name, {"constant", "linear", "cosine", "polynomial", "step", "multistep"});
  r.read("warmup_steps", s.warmup_steps);
  check_min(r, "warmup_steps", s.warmup_steps, 0);
  r.read("warmup_ratio", s.warmup_ratio);
  check_fraction(r, "warmup_ratio", s.warmup_ratio);
  if (s.warmup_steps > 0 && s.warmup_ratio > 0) r.fail("warmup_ratio", "set warmup_steps or warmup_ratio, not both");
  r.read("min_lr", s.min_lr);
  check_non_negative(r, "min_lr", s.min_lr);
  if (s.min_lr > c.optim.lr) {
    r.fail("min_lr", yaml_double(s.min_lr) + " is above optim.lr " + yaml_double(c.optim.lr));
  }
  r.read("gamma", s.gamma);
  check_positive(r, "gamma", s.gamma);
  r.read("step_size", s.step_size);
  check_min(r, "step_size", s.step_size, 0);
  if (s.name == "step" && s.step_size == 0) r.fail_missing("step_size", "the step schedule's period in steps, >= 1");
  if (s.name != "step" && s.step_size != 0) r.fail("step_size", "is a step-schedule setting; schedule.name is " + s.name);
  r.read("milestones", s.milestones);
  for (size_t i = 0; i < s.milestones.size(); ++i) {
    if (s.milestones[i] < 1 || (i > 0 && s.milestones[i] <= s.milestones[i - 1])) {
      r.fail("milestones", "must be increasing step numbers >= 1, got " + yaml_list(s.milestones));
    }
  }
  r.read("milestone_fractions", s.milestone_fractions);
  for (size_t i = 0; i < s.milestone_fractions.size(); ++i) {
    const double f = s.milestone_fractions[i];
    if (!(f > 0 && f < 1) || (i > 0 && f <= s.milestone_fractions[i - 1])) {
      r.fail("milestone_fractions", "must be increasing fractions in (0, 1), got " + yaml_list(s.milestone_fractions));
    }
  }
  if (s.name == "multistep") {
    if (s.milestones.empty() == s.milestone_fractions.empty()) {
      r.fail(s.milestones.empty() ? "milestones" : "milestone_fractions",
             "multistep needs exactly one of schedule.milestones and schedule.milestone_fractions");
    }
  } else {
    if (!s.milestones.empty()) r.fail("milestones", "is a multistep setting; schedule.name is " + s.name);
    if (!s.milestone_fractions.empty()) {
      r.fail("milestone_fractions", "is a multistep setting; schedule.name is " + s.name);
    }
  }
  r.read("power", s.power);
  check_positive(r, "power", s.power);
  r.read("lr_end", s.lr_end);
  check_non_negative(r, "lr_end", s.lr_end);
  if (s.name == "polynomial" && !(s.lr_end < c.optim.lr)) {
    r.fail("lr_end", yaml_double(s.lr_end) + " must be below optim.lr " + yaml_double(c.optim.lr));
  }
}

void read_train_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& c) {
  MapReader r(ctx, node, "train",
              {"max_steps", "epochs", "grad_accum", "clip_norm", "precision", "log_every", "eval_every", "nan_policy",
               "label_smoothing"},
              parent);
  TrainSection& s = c.train;
  r.read("max_steps", s.max_steps);
  check_min(r, "max_steps", s.max_steps, 0);
  r.read("epochs", s.epochs);
  check_min(r, "epochs", s.epochs, 0);
  if (s.max_steps > 0 && s.epochs > 0) r.fail("epochs", "set train.max_steps or train.epochs, not both");
  if (s.max_steps == 0 && s.epochs == 0) {
    if (r.has("max_steps")) r.fail("max_steps", "must be >= 1 (or set train.epochs instead)");
    if (r.has("epochs")) r.fail("epochs", "must be >= 1 (or set train.max_steps instead)");
    ctx.fail("train", r.mark(), "one of train.max_steps and train.epochs is required");
  }
  if (c.schedule.name == "polynomial" && s.max_steps > 0 && s.max_steps <= c.schedule.warmup_steps) {
    r.fail("max_steps", std::to_string(s.max_steps) + " leaves no steps after schedule.warmup_steps " +
                            std::to_string(c.schedule.warmup_steps) + " for the polynomial decay");
  }
  r.read("grad_accum", s.grad_accum);
  check_min(r, "grad_accum", s.grad_accum, 1);
  r.read("clip_norm", s.clip_norm);
  check_non_negative(r, "clip_norm", s.clip_norm);
  r.read_choice("precision", s.precision, {"f32", "tf32", "bf16"});
  if (s.precision != "f32" && c.run.device == "cpu") {
    r.fail("precision", s.precision + " needs a CUDA device (run.device is cpu); use f32");
  }
  r.read("log_every", s.log_every);
  check_min(r, "log_every", s.log_every, 1);
  r.read("eval_every", s.eval_every);
  check_min(r, "eval_every", s.eval_every, 0);
  if (s.eval_every > 0 && !c.data.eval) r.fail("eval_every", "there is no data.eval to evaluate on");
  r.read_choice("nan_policy", s.nan_policy, {"stop", "skip"});
  r.read("label_smoothing", s.label_smoothing);
  check_fraction(r, "label_smoothing", s.label_smoothing);
}

void read_checkpoint_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& c) {
  MapReader r(ctx, node, "checkpoint",
              {"every", "keep_last", "keep_best", "best_mode", "resume", "resume_strict", "init_from"}, parent);
  CheckpointSection& s = c.checkpoint;
  r.read("every", s.every);
  check_min(r, "every", s.every, 0);
  r.read("keep_last", s.keep_last);
  check_min(r, "keep_last", s.keep_last, 0);
  read_metric(r, "keep_best", "best_mode", c, s.keep_best, s.best_mode);
  r.read("resume", s.resume);
  if (s.resume.empty()) r.fail("resume", "must be auto, never or a checkpoint path");
  if (s.resume != "auto" && s.resume != "never" && !fs::exists(s.resume)) {
    r.fail("resume", "checkpoint '" + s.resume + "' does not exist (or use auto / never)");
  }
  r.read("resume_strict", s.resume_strict);
  r.read("init_from", s.init_from);
  if (!s.init_from.empty() && !fs::exists(s.init_from)) {
    r.fail("init_from", "checkpoint '" + s.init_from + "' does not exist");
  }
}

void read_early_stopping_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& c) {
  MapReader r(ctx, node, "early_stopping", {"metric", "patience", "mode", "min_delta"}, parent);
  EarlyStoppingSection& s = c.early_stopping;
  read_metric(r, "metric", "mode", c, s.metric, s.mode);
  r.read("patience", s.patience);
  check_min(r, "patience", s.patience, s.metric.empty() ? 0 : 1);
  r.read("min_delta", s.min_delta);
  check_non_negative(r, "min_delta", s.min_delta);
}

}  // namespace config

}  // namespace kiln::train
