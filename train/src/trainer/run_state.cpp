#include "run_state.h"

#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

namespace kiln::train::detail {

using nlohmann::json;

std::string RunState::to_json() const {
  json j = {{"loss_sum", loss_sum},   {"loss_count", loss_count}, {"nan_skips", nan_skips},
            {"last_eval", last_eval}, {"bad_evals", bad_evals},   {"stopped_early", stopped_early}};
  j["best"] = best ? json(*best) : json(nullptr);
  return j.dump();
}

RunState RunState::from_json(const std::string& text, int64_t step) {
  RunState s;
  s.step = step;
  try {
    const json j = json::parse(text);
    s.loss_sum = j.at("loss_sum").get<double>();
    s.loss_count = j.at("loss_count").get<int64_t>();
    s.nan_skips = j.at("nan_skips").get<int64_t>();
    s.last_eval = j.at("last_eval").get<std::map<std::string, double>>();
    s.bad_evals = j.at("bad_evals").get<int64_t>();
    s.stopped_early = j.at("stopped_early").get<bool>();
    if (!j.at("best").is_null()) s.best = j.at("best").get<double>();
  } catch (const json::exception& e) {
    KILN_ERROR("checkpoint trainer_json is not what Kiln writes: ", e.what());
  }
  return s;
}

void RunState::update_early_stopping(const EarlyStoppingSection& section,
                                     const std::map<std::string, double>& metrics) {
  auto it = metrics.find(section.metric);
  KILN_CHECK(it != metrics.end(), "early_stopping.metric: '", section.metric, "' is not an evaluated metric");
  const double value = it->second;
  const bool higher = section.mode != "min";
  const bool improved = !best || (higher ? value > *best + section.min_delta : value < *best - section.min_delta);
  if (improved) {
    best = value;
    bad_evals = 0;
  } else {
    ++bad_evals;
  }
}

void check_same_model(const Checkpoint& checkpoint, const RunConfig& run, const std::string& path) {
  if (!run.checkpoint.resume_strict) return;
  RunConfig saved;
  try {
    saved = parse_run_config(checkpoint.config_yaml, path + " (its config)");
  } catch (const kiln::Error& e) {
    // Written elsewhere (its data paths need not exist here): the weights'
    // names and shapes are still checked when they load.
    std::fprintf(stderr, "warning: cannot compare %s's config with this run's: %s\n", path.c_str(), e.what());
    return;
  }
  const auto diffs = model_differences(saved, run);
  if (diffs.empty()) return;
  std::ostringstream os;
  os << "cannot resume from " << path << ": its model differs from this run's ("
     << "set checkpoint.resume_strict: false to load it anyway, or checkpoint.resume: never to start afresh):";
  for (const auto& d : diffs) os << "\n  " << d;
  KILN_ERROR(os.str());
}

}  // namespace kiln::train::detail
