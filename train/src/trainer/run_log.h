#pragma once
// What a run tells its user: metrics.jsonl (one JSON object per event,
// flushed as written, so `tail -f` and crash recovery see every line), and
// progress on stderr: a redrawn bar on a terminal, plain lines otherwise.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace kiln::train::detail {

class RunLog {
 public:
  // resume_step < 0: a fresh run (the file is emptied); otherwise the lines
  // of events after resume_step are dropped (a killed run may have logged
  // past its last checkpoint), so the file reads as if never interrupted.
  RunLog(std::filesystem::path metrics_path, int64_t total_steps, bool quiet, int64_t resume_step);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  void event(const nlohmann::json& line);
  // Redraws the bar (at most ~10 times a second) on a terminal.
  void progress(int64_t step, double loss, double lr, double images_per_sec);
  // A line for the user (clears the bar first).
  void message(const std::string& text);
  void warning(const std::string& text);

 private:
  void clear_bar();
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  int64_t total_;
  bool quiet_, tty_;
  bool bar_shown_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int64_t start_step_ = -1;
};

}  // namespace kiln::train::detail
