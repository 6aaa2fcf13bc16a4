// best.json reading and writing (nlohmann::json). Keys other than the three
// known ones are ignored, so later versions may add some.
#include "best_record.h"

#include <charconv>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"
#include "kiln/nn/serialize/atomic_file.h"

namespace kiln::train::detail {

std::optional<BestRecord> read_best_record(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  KILN_CHECK(in, "CheckpointManager: cannot read '", file.string(), "'");
  const nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const char* what) { KILN_ERROR("CheckpointManager: '", file.string(), "': ", what); };
  if (doc.is_discarded()) bad("is not valid JSON");
  if (!doc.is_object()) bad("expected a JSON object");
  BestRecord r;
  const auto metric = doc.find("metric");
  if (metric == doc.end() || !metric->is_string()) bad("'metric' must be a string");
  r.metric = metric->get<std::string>();
  const auto mode = doc.find("mode");
  if (mode == doc.end() || !mode->is_string() || (*mode != "max" && *mode != "min"))
    bad("'mode' must be \"max\" or \"min\"");
  r.higher = *mode == "max";
  const auto steps = doc.find("steps");
  if (steps == doc.end() || !steps->is_object()) bad("'steps' must be an object");
  for (const auto& [key, value] : steps->items()) {
    int64_t step = -1;
    auto [ptr, err] = std::from_chars(key.data(), key.data() + key.size(), step);
    if (err != std::errc() || ptr != key.data() + key.size() || step < 0) bad("'steps' keys must be step numbers");
    if (!value.is_number() || !std::isfinite(value.get<double>())) bad("'steps' values must be numbers");
    r.steps[step] = value.get<double>();
  }
  return r;
}

void write_best_record(const std::filesystem::path& file, const BestRecord& record) {
  nlohmann::json steps = nlohmann::json::object();
  for (const auto& [step, value] : record.steps) steps[std::to_string(step)] = value;  // round-trips exactly
  const nlohmann::json doc = {{"metric", record.metric}, {"mode", record.higher ? "max" : "min"}, {"steps", steps}};
  nn::serialize::write_file_atomically(file.string(), doc.dump(2) + "\n", "CheckpointManager");
}

}  // namespace kiln::train::detail
