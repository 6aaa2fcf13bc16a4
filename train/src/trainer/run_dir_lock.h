#pragma once
// One trainer per run directory: two `kiln train` processes writing the same
// checkpoints and metrics.jsonl would interleave them and destroy the run.
// An exclusive flock on <output_dir>/.lock, held for the run's life, stops
// the second with a message naming the first; the kernel drops the lock
// when a process dies, so a killed run never leaves the directory locked.
#include <filesystem>

namespace kiln::train::detail {

class RunDirLock {
 public:
  // kiln::Error when another process holds the directory.
  explicit RunDirLock(const std::filesystem::path& dir);
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace kiln::train::detail
