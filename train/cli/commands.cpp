// The four subcommands. Each parses its arguments, validates the config in
// full before doing anything (so a bad run creates nothing on disk), then
// calls into the train library.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "kiln/train/checkpoint.h"
#include "kiln/train/run_config.h"
#include "kiln/train/trainer.h"

namespace kiln::cli {

namespace {

const char* kTrainHelp =
    "usage: kiln train CONFIG [--set key.path=value ...] [--quiet]\n"
    "\n"
    "Trains the run CONFIG (a YAML file) describes. Output goes to run.output_dir:\n"
    "config.yaml, metrics.jsonl, checkpoints/step_<N>.h5 and, at the end, model/\n"
    "(the weights in Hugging Face layout).\n"
    "\n"
    "With checkpoint.resume: auto (the default) the same command resumes from the\n"
    "latest checkpoint in run.output_dir and continues exactly where it stopped.\n"
    "Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a checkpoint and\n"
    "exits 0; a second signal exits at once.\n"
    "\n"
    "  --set key.path=value  override a config value (YAML syntax: --set train.max_steps=100,\n"
    "                        --set model.config.hidden_sizes=[16,32]); repeatable\n"
    "  -q, --quiet           no progress output\n"
    "\n"
    "Exit codes: 0 finished or stopped by a signal, 1 the run failed (non-finite loss\n"
    "under nan_policy stop, unreadable data, a corrupted checkpoint), 2 bad usage or config.\n";

const char* kEvalHelp =
    "usage: kiln eval CONFIG --checkpoint PATH [--set key.path=value ...]\n"
    "\n"
    "Loads the model weights of checkpoint PATH into the model CONFIG describes and\n"
    "evaluates them on data.eval: prints eval/loss, eval/accuracy (top-1) and eval/top5\n"
    "as JSON on stdout.\n";

const char* kInspectHelp =
    "usage: kiln inspect CHECKPOINT [--no-verify]\n"
    "\n"
    "Prints a checkpoint's step, epoch, format and Kiln version, last metrics, the run\n"
    "config it was written with, and every tensor's dtype and shape. The checksum is\n"
    "verified first (exit 1 if the file is corrupted).\n";

const char* kConfigHelp =
    "usage: kiln config CONFIG [--set key.path=value ...]\n"
    "\n"
    "Validates CONFIG and prints the fully resolved config (every key, defaults filled\n"
    "in) as YAML: what `kiln train` would run.\n";

bool help(const ParsedArgs& a, const char* text) {
  if (a.help) std::fputs(text, stdout);
  return a.help;
}

const std::string& one_positional(const ParsedArgs& a, const char* what) {
  if (a.positional.size() != 1)
    throw UsageError{std::string("expected one ") + what + ", got " + std::to_string(a.positional.size()) +
                     " arguments"};
  return a.positional.front();
}

}  // namespace

int train_command(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, {});
  if (help(a, kTrainHelp)) return kExitOk;
  const train::RunConfig config = train::load_run_config(one_positional(a, "CONFIG"), a.overrides);
  train::TrainerOptions options;
  options.stop_requested = install_stop_handlers();
  options.quiet = a.quiet;
  const train::RunResult result = train::train(config, options);
  std::fprintf(stderr, "%s\n", result.message.c_str());
  if (!result.last_eval.empty() && result.status != train::RunStatus::Failed) {
    std::fprintf(stderr, "last eval:");
    for (const auto& [k, v] : result.last_eval) std::fprintf(stderr, "  %s %.4f", k.c_str(), v);
    std::fprintf(stderr, "\n");
  }
  return result.status == train::RunStatus::Failed ? kExitFailed : kExitOk;
}

int eval_command(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, {"checkpoint"});
  if (help(a, kEvalHelp)) return kExitOk;
  const std::string checkpoint = a.flag("checkpoint");
  if (checkpoint.empty()) throw UsageError{"--checkpoint PATH is required"};
  const train::RunConfig config = train::load_run_config(one_positional(a, "CONFIG"), a.overrides);
  const auto metrics = train::evaluate_checkpoint(config, checkpoint);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : metrics) out[k] = v;
  std::cout << out.dump(2) << std::endl;
  return kExitOk;
}

int inspect_command(const std::vector<std::string>& args) {
  std::vector<std::string> rest;
  bool verify = true;
  for (const auto& arg : args) {
    if (arg == "--no-verify")
      verify = false;
    else
      rest.push_back(arg);
  }
  const ParsedArgs b = parse_args(rest, {});
  if (help(b, kInspectHelp)) return kExitOk;
  const std::string& path = one_positional(b, "CHECKPOINT");
  const train::CheckpointSummary s = train::inspect_checkpoint(path, verify);
  std::cout << "checkpoint: " << path << "\n"
            << "step: " << s.step << "\nepoch: " << s.epoch << "\nformat_version: " << s.format_version
            << "\nkiln_version: " << s.kiln_version << "\nchecksum: " << (verify ? "verified" : "not checked")
            << "\nmetrics: " << s.metrics_json << "\ntrainer: " << s.trainer_json << "\n\ntensors:\n";
  int64_t total = 0;
  for (const auto& [name, info] : s.tensors) {
    std::cout << "  " << name << "  " << info.first << " [";
    int64_t n = 1;
    for (size_t i = 0; i < info.second.size(); ++i) {
      std::cout << (i ? ", " : "") << info.second[i];
      n *= info.second[i];
    }
    std::cout << "]\n";
    total += n;
  }
  std::cout << "  (" << s.tensors.size() << " tensors, " << total << " elements)\n\nconfig:\n" << s.config_yaml;
  if (!s.config_yaml.empty() && s.config_yaml.back() != '\n') std::cout << "\n";
  return kExitOk;
}

int config_command(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, {});
  if (help(a, kConfigHelp)) return kExitOk;
  const train::RunConfig config = train::load_run_config(one_positional(a, "CONFIG"), a.overrides);
  std::cout << train::to_yaml(config);
  return kExitOk;
}

}  // namespace kiln::cli
