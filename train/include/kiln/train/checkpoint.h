#pragma once
// Training checkpoints: one HDF5 file holds everything a run needs to carry
// on exactly where it stopped.
//
// File layout (format_version 1):
//   /                 attrs: format "kiln-checkpoint", format_version, kiln_version,
//                            step, epoch, config_yaml (the resolved run config),
//                            metrics_json (the last log/eval metrics, a JSON object),
//                            trainer_json (best metric, early-stopping counters, ...),
//                            checksum (hex; see below)
//   /model            one dataset per parameter and buffer, dotted names
//   /optimizer        the optimizer's state dict (kiln::optim::Optimizer::state_dict)
//   /scheduler        the LR scheduler's state dict (may be empty)
//   /rng              generator_seed, generator_offset (the global generator),
//                     loader_epoch, loader_batch (the loader cursor) as 0-dim int64
//   /extra            anything else (tensors), e.g. a second loader
// checksum: CRC-32 (zlib) of every tensor's name, dtype, shape and bytes, in
// group then creation order, plus the attributes above except checksum
// itself; load verifies it, so a truncated or bit-flipped file is an error
// naming the file, never garbage weights. (Precisely: the groups in the
// order listed, then every root attribute but checksum sorted by name, each
// item length-prefixed; stored as 8 lower-case hex digits. See
// train/src/checkpoint/checksum.cpp.)
//
// Writing is atomic: the file is written as CHECKPOINT.tmp.<pid> in the same
// directory, fsynced, renamed over CHECKPOINT, and the directory fsynced. A
// crash at any moment leaves either no new file or a complete one (stale
// *.tmp.* files are removed by the next CheckpointManager). Tensors may be
// non-contiguous or on another device; they are written as contiguous CPU
// copies.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kiln/nn/ordered_dict.h"

namespace kiln::train {

struct Checkpoint {
  int64_t step = 0;   // optimizer steps completed
  int64_t epoch = 0;
  nn::StateDict model;
  nn::StateDict optimizer;
  nn::StateDict scheduler;
  uint64_t generator_seed = 0, generator_offset = 0;
  int64_t loader_epoch = 0, loader_batch = 0;
  nn::StateDict extra;
  std::string config_yaml;
  std::string metrics_json = "{}";
  std::string trainer_json = "{}";
  // Filled by load_checkpoint.
  int64_t format_version = 1;
  std::string kiln_version;
};

// Atomic write (see above). Errors name the path.
void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);
// Verifies format, version and checksum first. Errors (kiln::Error) name the
// file: missing, not HDF5 / truncated, not a Kiln checkpoint, a newer
// format_version, checksum mismatch ("corrupted").
Checkpoint load_checkpoint(const std::filesystem::path& path);
// Only the attributes (no tensors read), still checksum-verified when
// verify is true: for `kiln inspect` and resume decisions.
struct CheckpointSummary {
  int64_t step = 0, epoch = 0, format_version = 0;
  std::string kiln_version, config_yaml, metrics_json, trainer_json;
  // "group/name" -> (dtype name, shape), in file order.
  std::vector<std::pair<std::string, std::pair<std::string, std::vector<int64_t>>>> tensors;
};
CheckpointSummary inspect_checkpoint(const std::filesystem::path& path, bool verify = true);

struct CheckpointPolicy {
  int64_t keep_last = 3;        // 0: keep every periodic checkpoint
  std::string best_metric;      // empty: no best tracking ("eval/accuracy")
  bool best_higher = true;      // max (accuracy) or min (loss)
  int64_t keep_best = 1;        // how many best checkpoints to keep
};

// Manages DIR = <run.output_dir>/checkpoints: step_<N>.h5 files, a `latest`
// file naming the newest complete one (written atomically after it), and
// pruning: the keep_last newest periodic checkpoints plus the keep_best best
// by the metric are kept, others removed after a new one is committed.
// The best-by-metric bookkeeping is in DIR/best.json (atomic too):
//   {"metric": "eval/accuracy", "mode": "max", "steps": {"100": 0.81, ...}}
// with entries for the kept checkpoints only; a NaN metric is not recorded,
// ties go to the earlier step, and a best.json for another metric is
// started afresh. `latest` holds the file name and a newline. Saving a step
// that exists replaces it (and drops its old metric); the file just saved,
// which `latest` now names, is never pruned. One directory, one writer (rank
// 0): the constructor creates DIR and deletes every *.tmp.<digits> file in it.
// Warnings (a skipped checkpoint, an unreadable best.json, a failed delete)
// go to stderr as "warning: ..." lines.
class CheckpointManager {
 public:
  CheckpointManager(std::filesystem::path dir, CheckpointPolicy policy);
  const std::filesystem::path& dir() const { return dir_; }

  // Writes step_<step>.h5, updates latest, prunes. metric: the value of
  // policy.best_metric at this step, when evaluated. Returns the path.
  std::filesystem::path save(const Checkpoint& checkpoint, std::optional<double> metric = std::nullopt);

  // The checkpoint `latest` names; when it is missing or unreadable, the
  // newest step_<N>.h5 that loads (a warning names each one skipped). nullopt
  // when the directory holds none.
  std::optional<std::filesystem::path> latest() const;
  // Every step_<N>.h5 present, by step.
  std::vector<std::filesystem::path> list() const;

 private:
  std::filesystem::path dir_;
  CheckpointPolicy policy_;
};

}  // namespace kiln::train
