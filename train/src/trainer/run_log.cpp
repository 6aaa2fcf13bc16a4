#include "run_log.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::train::detail {

namespace {

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

// The lines of `path` whose event step is <= keep_step.
std::string kept_lines(const std::filesystem::path& path, int64_t keep_step) {
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    // A torn last line (killed mid-write) is not valid JSON: dropped.
    if (j.is_discarded() || !j.is_object()) continue;
    if (j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() > keep_step) continue;
    kept += line + "\n";
  }
  return kept;
}

}  // namespace

RunLog::RunLog(std::filesystem::path metrics_path, int64_t total_steps, bool quiet, int64_t resume_step)
    : path_(std::move(metrics_path)), total_(total_steps), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {
  std::string kept = resume_step >= 0 && std::filesystem::exists(path_) ? kept_lines(path_, resume_step) : "";
  file_ = std::fopen(path_.c_str(), "w");
  KILN_CHECK(file_ != nullptr, "cannot write ", path_.string());
  std::fwrite(kept.data(), 1, kept.size(), file_);
  std::fflush(file_);
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

RunLog::~RunLog() {
  clear_bar();
  if (file_) std::fclose(file_);
}

void RunLog::event(const nlohmann::json& line) {
  const std::string text = line.dump() + "\n";
  std::fwrite(text.data(), 1, text.size(), file_);
  std::fflush(file_);
  if (quiet_) return;
  // Off a terminal the log lines are the progress report.
  std::ostringstream os;
  const std::string kind = line.value("event", "");
  os << "step " << line.value("step", int64_t{0}) << "/" << total_;
  for (const auto& [key, value] : line.items()) {
    if (key == "event" || key == "step") continue;
    os << "  " << key << " ";
    if (value.is_number_float()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.4g", value.get<double>());
      os << buf;
    } else {
      os << value.dump();
    }
  }
  if (kind == "eval" || !tty_) message(os.str());
}

void RunLog::progress(int64_t step, double loss, double lr, double images_per_sec) {
  if (quiet_ || !tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (start_step_ < 0) start_step_ = step - 1;
  if (step != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double done = static_cast<double>(step - start_step_);
  const double eta = done > 0 ? elapsed / done * static_cast<double>(total_ - step) : -1;
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * step / total_) : kWidth;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r[%s] %lld/%lld  loss %.4f  lr %.3g  %.0f img/s  ETA %s\033[K", bar.c_str(),
               static_cast<long long>(step), static_cast<long long>(total_), loss, lr, images_per_sec,
               format_duration(eta).c_str());
  std::fflush(stderr);
  bar_shown_ = true;
}

void RunLog::clear_bar() {
  if (!bar_shown_) return;
  std::fprintf(stderr, "\r\033[K");
  bar_shown_ = false;
}

void RunLog::message(const std::string& text) {
  if (quiet_) return;
  clear_bar();
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

void RunLog::warning(const std::string& text) {
  clear_bar();
  std::fprintf(stderr, "warning: %s\n", text.c_str());
  std::fflush(stderr);
}

}  // namespace kiln::train::detail
