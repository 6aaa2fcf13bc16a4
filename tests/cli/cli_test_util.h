#pragma once
// Running the `kiln` program from tests as a user would: a tiny IDX data
// set and a tiny BiT config written to a temp dir, the program spawned with
// its output captured, stopped with signals, its files read back.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

extern char** environ;

namespace kiln::test_cli {

namespace fs = std::filesystem;

// A fresh directory, removed when done (kept when KILN_KEEP_TEST_DIRS is set,
// for looking at a failed run's files).
class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() / ("kiln_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!std::getenv("KILN_KEEP_TEST_DIRS")) fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// An IDX file (plain, not gzip'd): magic 0 0 8 rank, big-endian dims, bytes.
inline void write_idx(const fs::path& p, const std::vector<int64_t>& dims, const std::vector<uint8_t>& bytes) {
  std::string s = {0, 0, 8, static_cast<char>(dims.size())};
  for (int64_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((d >> shift) & 0xff));
  s.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  write_text(p, s);
}

// A learnable 4-class problem in MNIST's file layout: class c is a bright
// 6x6 square in quadrant c of a 16x16 noisy image.
inline void write_toy_mnist(const fs::path& dir, int64_t n_train = 256, int64_t n_test = 64) {
  std::mt19937 rng(1234);
  auto split = [&](const std::string& prefix, int64_t n) {
    std::vector<uint8_t> images(static_cast<size_t>(n * 16 * 16)), labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const int c = static_cast<int>(rng() % 4);
      labels[static_cast<size_t>(i)] = static_cast<uint8_t>(c);
      uint8_t* img = images.data() + i * 256;
      for (int k = 0; k < 256; ++k) img[k] = static_cast<uint8_t>(rng() % 90);
      const int y0 = (c / 2) * 8 + 1 + static_cast<int>(rng() % 2), x0 = (c % 2) * 8 + 1 + static_cast<int>(rng() % 2);
      for (int y = y0; y < y0 + 6; ++y)
        for (int x = x0; x < x0 + 6; ++x) img[y * 16 + x] = static_cast<uint8_t>(160 + rng() % 90);
    }
    write_idx(dir / (prefix + "-images-idx3-ubyte"), {n, 16, 16}, images);
    write_idx(dir / (prefix + "-labels-idx1-ubyte"), {n}, labels);
  };
  split("train", n_train);
  split("t10k", n_test);
}

// A small run on the toy data: BiT with drop path (so the generator's state
// matters on resume), random crops and flips (so the loader's does).
inline std::string toy_config(const fs::path& data_dir, const fs::path& out_dir, const std::string& extra = "") {
  std::ostringstream os;
  os << "run:\n  name: toy\n  output_dir: " << out_dir.string() << "\n  seed: 7\n"
     << "model:\n  architecture: BitForImageClassification\n  num_labels: 4\n"
     << "  config: {num_channels: 1, embedding_size: 8, hidden_sizes: [8, 16], depths: [1, 1],\n"
     << "           layer_type: preactivation, num_groups: 4, drop_path_rate: 0.1, global_padding: SAME}\n"
     << "data:\n  batch_size: 16\n  workers: 2\n"
     << "  train:\n    type: idx\n    path: " << data_dir.string() << "\n    split: train\n    classes: mnist\n"
     << "    transforms: [{random_crop: {size: 16, padding: 2}}, horizontal_flip, to_tensor, {normalize: {mean: [0.3], std: [0.3]}}]\n"
     << "  eval:\n    type: idx\n    path: " << data_dir.string() << "\n    split: test\n    classes: mnist\n"
     << "    transforms: [to_tensor, {normalize: {mean: [0.3], std: [0.3]}}]\n"
     << "optim:\n  name: adamw\n  lr: 0.003\n"
     << "schedule:\n  name: cosine\n  warmup_steps: 3\n"
     << "train:\n  max_steps: 40\n  log_every: 1\n  eval_every: 10\n"
     << "checkpoint:\n  every: 5\n  keep_last: 2\n"
     << extra;
  return os.str();
}

struct Process {
  pid_t pid = -1;
  fs::path out, err;
  int status = -1;  // set once reaped
  bool reaped = false;
};

inline int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Starts `kiln args...` with stdout/stderr redirected to files in `dir`.
inline Process spawn_kiln(const std::vector<std::string>& args, const fs::path& dir, const std::string& tag = "kiln") {
  Process p;
  p.out = dir / (tag + ".stdout");
  p.err = dir / (tag + ".stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, p.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, p.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<std::string> full = {KILN_CLI_PATH};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = posix_spawn(&p.pid, KILN_CLI_PATH, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) p.pid = -1;
  return p;
}

// The exit status (128 + signal when killed).
inline int wait_exit(Process& p) {
  if (!p.reaped) {
    int status = 0;
    if (waitpid(p.pid, &status, 0) < 0) return -1;
    p.status = decode_status(status);
    p.reaped = true;
  }
  return p.status;
}

struct Result {
  int code = -1;
  std::string out, err;
};

inline Result run_kiln(const std::vector<std::string>& args, const fs::path& dir, const std::string& tag = "kiln") {
  Process p = spawn_kiln(args, dir, tag);
  Result r;
  if (p.pid < 0) return r;
  r.code = wait_exit(p);
  r.out = read_text(p.out);
  r.err = read_text(p.err);
  return r;
}

// The largest "step" of the train events in a metrics.jsonl (0 if none).
inline int64_t logged_step(const fs::path& metrics) {
  std::ifstream in(metrics);
  std::string line;
  int64_t step = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.value("event", "") == "train") step = j.value("step", int64_t{0});
  }
  return step;
}

// metrics.jsonl without the wall-clock fields, which no two runs share.
inline std::vector<std::string> deterministic_metrics(const fs::path& metrics) {
  std::ifstream in(metrics);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    j.erase("images_per_sec");
    j.erase("elapsed_s");
    lines.push_back(j.dump());
  }
  return lines;
}

// Waits (up to `timeout`) until the run has logged `step`; false when it ended first.
inline bool wait_for_step(Process& p, const fs::path& metrics, int64_t step,
                          std::chrono::seconds timeout = std::chrono::seconds(120)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (logged_step(metrics) >= step) return true;
    int status;
    if (waitpid(p.pid, &status, WNOHANG) == p.pid) {
      p.status = decode_status(status);
      p.reaped = true;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace kiln::test_cli
