// CheckpointManager: a directory of step_<N>.h5 files, the `latest` pointer,
// best.json, and pruning. Every step that changes what a restart would see
// (the checkpoint, best.json, `latest`) is an atomic rename, done in an
// order where a crash between any two leaves a directory that resumes
// correctly: a checkpoint is complete before anything names it, and files
// are deleted only after `latest` has moved past them.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "best_record.h"
#include "kiln/core/error.h"
#include "kiln/nn/serialize/atomic_file.h"
#include "kiln/train/checkpoint.h"

namespace kiln::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLatest = "latest";
constexpr const char* kBest = "best.json";

void warn(const std::string& text) { std::fprintf(stderr, "warning: %s\n", text.c_str()); }

std::string step_name(int64_t step) { return "step_" + std::to_string(step) + ".h5"; }

// The step of "step_<N>.h5", or -1 for any other name.
int64_t step_of(const std::string& name) {
  constexpr std::string_view prefix = "step_", suffix = ".h5";
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size() - suffix.size();
  if (!std::all_of(first, last, [](char c) { return c >= '0' && c <= '9'; })) return -1;
  int64_t step = -1;
  auto [ptr, ec] = std::from_chars(first, last, step);
  return ec == std::errc() && ptr == last ? step : -1;
}

// A temporary file of ours: "<name>.tmp.<pid>" from save_checkpoint or
// ".<name>.tmp.<pid>.<n>" from AtomicFileWriter (latest, best.json).
bool is_temporary(const std::string& name) {
  size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0) return false;
  std::string_view tail(name.data() + at + 5, name.size() - at - 5);
  return !tail.empty() && std::all_of(tail.begin(), tail.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

// The file name `latest` holds (trimmed), or "" when it is missing/unreadable.
std::string read_pointer(const fs::path& dir) {
  std::ifstream in(dir / kLatest, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// A name that can only mean a file directly inside the directory.
bool plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// Whether the checkpoint at `path` is complete and intact; the reason when not.
bool loads(const fs::path& path, std::string& reason) {
  try {
    inspect_checkpoint(path, /*verify=*/true);
    return true;
  } catch (const Error& e) {
    reason = e.what();
    return false;
  }
}

}  // namespace

CheckpointManager::CheckpointManager(fs::path dir, CheckpointPolicy policy)
    : dir_(std::move(dir)), policy_(std::move(policy)) {
  KILN_CHECK(!dir_.empty(), "CheckpointManager: empty directory name");
  KILN_CHECK(policy_.keep_last >= 0, "CheckpointManager: keep_last must be >= 0 (0 keeps all), got ",
             policy_.keep_last);
  KILN_CHECK(policy_.keep_best >= 0, "CheckpointManager: keep_best must be >= 0, got ", policy_.keep_best);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  KILN_CHECK(!ec && fs::is_directory(dir_), "CheckpointManager: cannot create the directory '", dir_.string(),
             "'", ec ? ": " + ec.message() : std::string());
  // Left by a writer that died mid-save: never complete, never named by
  // anything. One directory has one writer, so none of these is in use.
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    std::error_code ec2;
    if (is_temporary(name) && entry.is_regular_file(ec2)) {
      fs::remove(entry.path(), ec2);
      if (ec2) warn("CheckpointManager: cannot remove the stale temporary file '" + entry.path().string() + "': " + ec2.message());
    }
  }
}

std::vector<fs::path> CheckpointManager::list() const {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    int64_t step = step_of(entry.path().filename().string());
    std::error_code ec2;
    if (step >= 0 && entry.is_regular_file(ec2)) found.emplace_back(step, entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [step, path] : found) out.push_back(std::move(path));
  return out;
}

std::optional<fs::path> CheckpointManager::latest() const {
  std::string reason;
  std::string named = read_pointer(dir_);
  if (!named.empty()) {
    if (!plain_file_name(named)) {
      warn("CheckpointManager: '" + (dir_ / kLatest).string() + "' names '" + named +
           "', which is not a file in the directory; looking for the newest checkpoint that loads");
      named.clear();
    } else if (loads(dir_ / named, reason)) {
      return dir_ / named;
    } else {
      warn("CheckpointManager: skipping '" + (dir_ / named).string() + "', which '" + (dir_ / kLatest).string() +
           "' names: " + reason);
    }
  }
  std::vector<fs::path> all = list();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->filename().string() == named) continue;  // already tried
    if (loads(*it, reason)) return *it;
    warn("CheckpointManager: skipping '" + it->string() + "': " + reason);
  }
  return std::nullopt;
}

fs::path CheckpointManager::save(const Checkpoint& checkpoint, std::optional<double> metric) {
  KILN_CHECK(checkpoint.step >= 0, "CheckpointManager::save: step must be >= 0, got ", checkpoint.step);
  const std::string name = step_name(checkpoint.step);
  const fs::path path = dir_ / name;
  save_checkpoint(path, checkpoint);

  std::vector<fs::path> all = list();
  std::vector<int64_t> steps;
  for (const auto& p : all) steps.push_back(step_of(p.filename().string()));

  std::set<int64_t> keep{checkpoint.step};
  if (policy_.keep_last == 0) {
    keep.insert(steps.begin(), steps.end());
  } else {
    auto first = steps.size() > static_cast<size_t>(policy_.keep_last) ? steps.end() - policy_.keep_last : steps.begin();
    keep.insert(first, steps.end());
  }

  const bool track_best = !policy_.best_metric.empty();
  detail::BestRecord best{policy_.best_metric, policy_.best_higher, {}};
  if (track_best) {
    std::optional<detail::BestRecord> old;
    try {
      old = detail::read_best_record(dir_ / kBest);
    } catch (const Error& e) {
      warn(std::string(e.what()) + "; starting it afresh");
    }
    // Values of another metric mean nothing for this one.
    if (old && old->metric == policy_.best_metric)
      for (const auto& [s, v] : old->steps)
        if (std::binary_search(steps.begin(), steps.end(), s)) best.steps[s] = v;
    // This step's file was just replaced: an old value for it is stale. NaN
    // is never best, so it is not recorded.
    best.steps.erase(checkpoint.step);
    if (metric && std::isfinite(*metric)) best.steps[checkpoint.step] = *metric;

    std::vector<std::pair<double, int64_t>> ranked;
    for (const auto& [s, v] : best.steps) ranked.emplace_back(policy_.best_higher ? -v : v, s);
    // Best first; on a tie the earlier step, which reached the value first.
    std::sort(ranked.begin(), ranked.end());
    for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(policy_.keep_best); ++i)
      keep.insert(ranked[i].second);
    // Only kept checkpoints keep their entries: a pruned one can never rank
    // again, since later values only push it further down.
    for (auto it = best.steps.begin(); it != best.steps.end();)
      it = keep.count(it->first) ? std::next(it) : best.steps.erase(it);
    detail::write_best_record(dir_ / kBest, best);
  }

  nn::serialize::write_file_atomically((dir_ / kLatest).string(), name + "\n", "CheckpointManager");

  // `latest` now names this step, which is in `keep`; whatever it named
  // before is no longer what a restart would pick.
  for (size_t i = 0; i < all.size(); ++i) {
    if (keep.count(steps[i])) continue;
    std::error_code ec;
    fs::remove(all[i], ec);
    if (ec) warn("CheckpointManager: cannot remove the old checkpoint '" + all[i].string() + "': " + ec.message());
  }
  return path;
}

}  // namespace kiln::train
