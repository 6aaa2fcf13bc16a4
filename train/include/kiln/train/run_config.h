#pragma once
// A training run as a YAML file, parsed into typed sections and validated
// before anything runs: an unknown key is an error naming the key, its
// file:line:column and the nearest valid key; a wrong type or impossible
// value names the key and its line. Defaults are filled in, and to_yaml()
// writes the fully resolved config, which parses back to the same run.
//
//   run:        name, output_dir, seed, device, threads
//   model:      architecture + config (a registered family's config.json
//               fields) or from_pretrained: DIR; num_labels, ...
//   data:       train / eval datasets with their transforms, batch sizes, workers
//   optim:      sgd | adam | adamw and their hyperparameters
//   schedule:   constant | linear | cosine | polynomial | step | multistep, warm-up
//   train:      max_steps or epochs, grad_accum, clip_norm, precision, intervals, nan policy
//   checkpoint: every, keep_last, keep_best, resume, resume_strict, init_from
//   early_stopping: metric, patience
// Relative paths are relative to the working directory, as in torch scripts.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"
#include "kiln/data/transforms.h"

namespace kiln::train {

// Every config problem: invalid YAML, unknown key, wrong type, bad value,
// missing file. what() reads "FILE:LINE:COL: key.path: problem".
struct ConfigError : kiln::Error {
  using kiln::Error::Error;
};

struct RunSection {
  std::string name = "run";
  std::string output_dir;  // default "runs/<name>"
  uint64_t seed = 0;
  std::string device = "cpu";  // "cpu" | "cuda" | "cuda:N"
  int threads = 0;             // CPU threads for the trainer; 0 = all cores
};

struct ModelSection {
  // Exactly one of architecture (a registered architecture such as
  // "BitForImageClassification", with config fields) and from_pretrained.
  // A registered architecture's name as HF's class ("BitForImageClassification";
  // "bit/BitForImageClassification", as registered_models() lists it, is accepted).
  std::string architecture;
  // config.json fields, checked by building the model once. Resolved to
  // the family's every field (the model's config_json() less the keys held
  // elsewhere: architectures, model_type, num_labels, label2id,
  // stage_names, and id2label when it is only LABEL_0..LABEL_{n-1}).
  // Empty with from_pretrained.
  nlohmann::json config = nlohmann::json::object();
  std::string from_pretrained;                        // a Hugging Face model directory
  // With architecture: resolved to the model's count (HF's default 2, or
  // config.id2label's size). With from_pretrained: unset = the directory's.
  std::optional<int64_t> num_labels;
  bool ignore_mismatched_sizes = false;
};

struct DatasetSection {
  std::string type;   // "image_folder" | "idx" (required)
  std::string path;   // a folder root, or the directory holding the IDX files
  std::string split;  // idx: "train" | "test" (required); empty for image_folder
  std::string classes;  // idx: "fashion_mnist" (default) | "mnist" (class names); empty for image_folder
  bool skip_bad_images = false;  // image_folder: count and skip unreadable files
  int64_t limit = 0;             // use the first N examples only (0 = all)
  // YAML: a list of `- NAME` or `- NAME: {options}` (see transforms_config.cpp);
  // absent: [to_tensor].
  std::vector<data::TransformSpec> transforms;
};

struct DataSection {
  DatasetSection train;
  std::optional<DatasetSection> eval;
  int64_t batch_size = 32;
  int64_t eval_batch_size = 0;  // default batch_size
  int workers = 2;
  int prefetch = 4;
  bool shuffle = true;
  bool drop_last = true;
};

struct OptimSection {
  std::string name = "adamw";  // "sgd" | "adam" | "adamw"
  double lr = 1e-3;
  std::optional<double> weight_decay;  // default: adamw 0.01, others 0
  double momentum = 0.0, dampening = 0.0;
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  // Biases and normalisation weights get no weight decay (timm/HF practice).
  bool no_decay_bias_and_norm = true;
};

struct ScheduleSection {
  std::string name = "constant";  // constant | linear | cosine | polynomial | step | multistep
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;      // of total steps; exclusive with warmup_steps
  double min_lr = 0.0;            // linear, cosine
  double gamma = 0.1;             // step, multistep
  int64_t step_size = 0;          // step
  std::vector<int64_t> milestones;            // multistep, in steps
  std::vector<double> milestone_fractions;    // multistep, in fractions of total steps
  double power = 1.0, lr_end = 1e-7;          // polynomial
};

struct TrainSection {
  int64_t max_steps = 0;  // exactly one of max_steps and epochs
  int64_t epochs = 0;
  int64_t grad_accum = 1;
  double clip_norm = 0.0;           // 0: no clipping
  std::string precision = "f32";    // "f32" | "tf32" | "bf16" (CUDA only for the last two)
  int64_t log_every = 50;
  int64_t eval_every = 0;           // steps; 0: at the end of every epoch
  std::string nan_policy = "stop";  // "stop" | "skip"
  double label_smoothing = 0.0;
};

struct CheckpointSection {
  int64_t every = 0;        // steps; 0: only at the end (and on a signal)
  int64_t keep_last = 3;    // 0: keep all
  std::string keep_best;    // a metric name ("eval/accuracy"); empty: none
  std::string best_mode = "max";  // "max" | "min"; default: min for a loss metric, else max
  std::string resume = "auto";    // "auto" | "never" | a checkpoint path
  bool resume_strict = true;      // refuse a checkpoint whose model config differs
  std::string init_from;          // a Kiln checkpoint: load its weights only
};

struct EarlyStoppingSection {
  std::string metric;  // empty: off
  int64_t patience = 0;
  std::string mode = "max";  // "max" | "min"; default: min for a loss metric, else max
  double min_delta = 0.0;
};

struct RunConfig {
  RunSection run;
  ModelSection model;
  DataSection data;
  OptimSection optim;
  ScheduleSection schedule;
  TrainSection train;
  CheckpointSection checkpoint;
  EarlyStoppingSection early_stopping;
  std::string source;  // the file it came from ("<string>" for text)
};

// overrides: "key.path=value" (value parsed as YAML, so lists and numbers
// work: "model.config.hidden_sizes=[8,16]"), applied before validation; an
// override of an unknown key is an error naming it and "--set".
RunConfig load_run_config(const std::filesystem::path& path, const std::vector<std::string>& overrides = {});
RunConfig parse_run_config(const std::string& yaml_text, const std::string& source,
                           const std::vector<std::string>& overrides = {});
// Every key with its value, defaults included, in this header's order
// (model.config's fields alphabetically); parse_run_config reads it back to
// an equal config.
std::string to_yaml(const RunConfig& config);
// Human-readable differences between two runs' model sections, one line each
// ("model.config.hidden_sizes: [8, 16] in the checkpoint, [8, 32] here").
std::vector<std::string> model_differences(const RunConfig& checkpoint, const RunConfig& run);

// Names of the metrics the trainer logs, for keep_best/early_stopping checks.
inline const std::vector<std::string>& known_metrics() {
  static const std::vector<std::string> names = {"eval/loss", "eval/accuracy", "eval/top5", "train/loss"};
  return names;
}

}  // namespace kiln::train
