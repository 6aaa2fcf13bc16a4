#pragma once
// The trainer's own counters, which a checkpoint carries as JSON
// (trainer_json) so that a resumed run logs and stops exactly as an
// uninterrupted one: the half-filled log window's loss sum, the skipped
// updates, the last evaluation, and early stopping's best and patience.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "kiln/train/checkpoint.h"
#include "kiln/train/run_config.h"

namespace kiln::train::detail {

struct RunState {
  int64_t step = 0;
  double loss_sum = 0.0;  // over the steps since the last train log line
  int64_t loss_count = 0;
  int64_t nan_skips = 0;
  std::map<std::string, double> last_eval;
  std::optional<double> best;  // early stopping's best value so far
  int64_t bad_evals = 0;       // evaluations since it improved
  bool stopped_early = false;

  std::string to_json() const;
  // Errors name the checkpoint field when the JSON is not what to_json wrote.
  static RunState from_json(const std::string& text, int64_t step);

  void update_early_stopping(const EarlyStoppingSection& section, const std::map<std::string, double>& metrics);
  bool should_stop(const EarlyStoppingSection& section) const {
    return !section.metric.empty() && section.patience > 0 && bad_evals >= section.patience;
  }
};

// Refuses (kiln::Error listing the differences) a checkpoint whose model
// section differs from the run's, unless checkpoint.resume_strict is false.
void check_same_model(const Checkpoint& checkpoint, const RunConfig& run, const std::string& path);

}  // namespace kiln::train::detail
