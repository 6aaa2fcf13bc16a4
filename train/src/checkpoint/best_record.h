#pragma once
// DIR/best.json: which checkpoints scored what on the best metric, so the
// best ones survive pruning across restarts. The file is small JSON,
//   {"metric": "eval/accuracy", "mode": "max", "steps": {"100": 0.81, "200": 0.84}}
// written atomically, and read and written only here.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace kiln::train::detail {

struct BestRecord {
  std::string metric;
  bool higher = true;
  std::map<int64_t, double> steps;  // step -> metric value (finite)
};

// nullopt when the file does not exist; a malformed file is a kiln::Error
// naming it.
std::optional<BestRecord> read_best_record(const std::filesystem::path& file);
void write_best_record(const std::filesystem::path& file, const BestRecord& record);

}  // namespace kiln::train::detail
