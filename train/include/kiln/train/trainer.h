#pragma once
// The trainer: runs a RunConfig from its first step (or its latest
// checkpoint) to the end, as `kiln train` does.
//
// Step k (counting from 0) takes grad_accum micro-batches from the loader's
// stream (which runs on across epoch boundaries), averages their losses'
// gradients, clips the global norm, steps the optimizer and the schedule.
// After a step, in this order: an epoch that ended is closed (eval when
// train.eval_every is 0), the train log line (every log_every steps), the
// eval (every eval_every steps), early stopping, the checkpoint (every
// checkpoint.every steps, and after an eval when keep_best is set). So a
// checkpoint taken after step s holds everything step s produced, and a run
// resumed from it writes the same metrics lines, and ends with bitwise the
// same weights, as one never stopped.
//
// Output in run.output_dir: config.yaml (the resolved config), metrics.jsonl
// (one JSON object per train log / eval event), checkpoints/, and model/ (the
// final weights in Hugging Face layout, save_pretrained).
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "kiln/train/run_config.h"

namespace kiln::train {

enum class RunStatus {
  Completed,    // reached max_steps / epochs, or early stopping
  Interrupted,  // a stop request (SIGINT/SIGTERM): checkpointed, can resume
  Failed,       // non-finite loss under nan_policy stop: last good state checkpointed
};

struct RunResult {
  RunStatus status = RunStatus::Completed;
  int64_t step = 0;
  std::map<std::string, double> last_eval;  // the last eval's metrics
  std::string message;                      // why it stopped, for the CLI
};

struct TrainerOptions {
  // Set (from another thread or a signal handler) to stop after the current
  // step with a checkpoint. Null: not stoppable.
  const std::atomic<bool>* stop_requested = nullptr;
  // Progress output: stderr progress bar when it is a terminal, plain lines
  // otherwise; quiet prints only warnings and the end message.
  bool quiet = false;
};

// Builds everything from the config (model, data, optimizer, schedule),
// resumes per checkpoint.resume, trains, and returns how it ended. Config
// problems found while building (ConfigError) and run failures (kiln::Error:
// an unreadable image, a corrupted checkpoint) are thrown.
RunResult train(const RunConfig& config, const TrainerOptions& options = {});

// Evaluates the weights of a checkpoint on the config's eval data:
// eval/loss, eval/accuracy, eval/top5 (classification).
std::map<std::string, double> evaluate_checkpoint(const RunConfig& config, const std::string& checkpoint_path);

}  // namespace kiln::train
