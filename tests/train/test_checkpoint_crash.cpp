// Crash safety: a writer SIGKILLed at random moments while saving never
// leaves the directory without a loadable latest checkpoint, and what it
// loads is exactly what was saved for that step.
//
// The writer is this test binary itself, started with fork + execve (nothing
// but async-signal-safe calls in between) and told by environment variables
// to run CheckpointCrash.Writer: a fresh process, so no thread or lock state
// of this one (OpenMP pools, HDF5's mutex) is copied into it.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kiln/kiln.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kiln/train/checkpoint.h"
#include "nn/temp_dir.h"
#include "test_util.h"

extern char** environ;

using namespace kiln;
using kiln::train::Checkpoint;
using kiln::train::CheckpointManager;
using kiln::train::load_checkpoint;
namespace fs = std::filesystem;

namespace {

constexpr const char* kDirVar = "KILN_CHECKPOINT_CRASH_DIR";
constexpr const char* kFdVar = "KILN_CHECKPOINT_CRASH_READY_FD";
constexpr int kKills = 40;
constexpr int64_t kElements = int64_t{1} << 20;  // 4 MB of float32

Checkpoint state_for(int64_t step) {
  Checkpoint c;
  c.step = step;
  c.epoch = step / 7;
  Tensor w = native::empty({kElements}, TensorOptions().dtype(kFloat32));
  float* p = w.data_ptr<float>();
  for (int64_t i = 0; i < kElements; ++i) p[i] = static_cast<float>(step);
  c.model.insert("w", w);
  Tensor s = native::empty({}, TensorOptions().dtype(kInt64));
  *s.data_ptr<int64_t>() = step;
  c.extra.insert("step_copy", s);
  c.config_yaml = "step: " + std::to_string(step) + "\n";
  return c;
}

// Everything in the file agrees with the step it records.
void expect_consistent(const Checkpoint& c) {
  ASSERT_TRUE(c.model.contains("w"));
  const Tensor& w = c.model["w"];
  ASSERT_EQ(w.numel(), kElements);
  const float* p = w.data_ptr<float>();
  int64_t bad = 0;
  for (int64_t i = 0; i < kElements; ++i) bad += p[i] != static_cast<float>(c.step);
  EXPECT_EQ(bad, 0) << "step " << c.step;
  EXPECT_EQ(*c.extra["step_copy"].data_ptr<int64_t>(), c.step);
  EXPECT_EQ(c.epoch, c.step / 7);
  EXPECT_EQ(c.config_yaml, "step: " + std::to_string(c.step) + "\n");
}

// The step `latest` names ("step_<N>.h5\n"), or -1.
int64_t pointer_step(const fs::path& dir) {
  std::string text = kiln::testing::read_file_bytes((dir / "latest").string());
  long long step = -1;
  return std::sscanf(text.c_str(), "step_%lld.h5", &step) == 1 ? step : -1;
}

std::string self_exe() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

}  // namespace

// The writer: only runs when started by the test below.
TEST(CheckpointCrash, Writer) {
  const char* dir = std::getenv(kDirVar);
  const char* fd_text = std::getenv(kFdVar);
  if (!dir || !fd_text) GTEST_SKIP() << "started by CheckpointCrash.KillsNeverLoseTheLatestCheckpoint";
  CheckpointManager manager(dir, {.keep_last = 2});
  int64_t step = 0;
  if (auto latest = manager.latest()) step = load_checkpoint(*latest).step;
  // Ready: from here on the process only saves, so every kill lands in a save.
  int fd = std::atoi(fd_text);
  ASSERT_EQ(::write(fd, "r", 1), 1);
  ::close(fd);
  // Bounded, in case the parent is gone without killing us.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) manager.save(state_for(++step));
}

TEST(CheckpointCrash, KillsNeverLoseTheLatestCheckpoint) {
  if (std::getenv(kDirVar)) GTEST_SKIP() << "inside the writer";
  const std::string exe = self_exe();
  ASSERT_FALSE(exe.empty());
  const fs::path dir = fs::temp_directory_path() / ("kiln_checkpoint_crash_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string log = (dir.parent_path() / (dir.filename().string() + ".log")).string();
  struct Cleanup {
    fs::path dir;
    std::string log;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
      fs::remove(log, ec);
    }
  } cleanup{dir, log};

  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> delay_us(0, 50000);
  int64_t last_step = 0;
  int kills_after_commit = 0;
  for (int iteration = 0; iteration < kKills; ++iteration) {
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    int ready[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(log_fd, 0);

    // Everything execve needs is built before fork.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("GTEST_", 0) != 0) env_strings.emplace_back(*e);  // no sharding or output files
    env_strings.push_back(std::string(kDirVar) + "=" + (dir / "checkpoints").string());
    env_strings.push_back(std::string(kFdVar) + "=" + std::to_string(ready[1]));
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string filter = "--gtest_filter=CheckpointCrash.Writer";
    std::string exe_copy = exe;
    char* argv[] = {exe_copy.data(), filter.data(), nullptr};
    const pid_t parent = ::getpid();

    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Dies with us if this test is interrupted; the pipe's write end and
      // the log survive execve.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      ::fcntl(ready[1], F_SETFD, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execve(exe_copy.c_str(), argv, envp.data());
      ::_exit(127);
    }
    ::close(ready[1]);
    ::close(log_fd);
    char byte = 0;
    ssize_t n;
    do n = ::read(ready[0], &byte, 1);
    while (n < 0 && errno == EINTR);
    ::close(ready[0]);
    if (n != 1) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      FAIL() << "the writer exited before saving; its output:\n" << kiln::testing::read_file_bytes(log);
    }
    // On a slow or busy machine one save can outlast every delay, and no
    // writer would ever commit; so every tenth writer first commits a step
    // past the last one seen (the pointer moves), then dies at random.
    if (iteration % 10 == 0) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
      while (pointer_step(dir / "checkpoints") <= last_step && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer stopped on its own; its output:\n" << kiln::testing::read_file_bytes(log);

    // What a restarted run would do: a manager on the directory, then latest().
    ::testing::internal::CaptureStderr();
    CheckpointManager manager(dir / "checkpoints", {.keep_last = 2});
    auto latest = manager.latest();
    std::string warnings = ::testing::internal::GetCapturedStderr();
    // The pointer always names a complete file, so nothing is ever skipped.
    EXPECT_EQ(warnings, "");
    for (const auto& e : fs::directory_iterator(dir / "checkpoints"))
      EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
    if (last_step > 0) {
      ASSERT_TRUE(latest.has_value()) << "a committed checkpoint was lost";
    }
    if (!latest) continue;
    Checkpoint c = load_checkpoint(*latest);
    EXPECT_EQ(latest->filename().string(), "step_" + std::to_string(c.step) + ".h5");
    EXPECT_GE(c.step, last_step) << "latest went backwards";
    expect_consistent(c);
    last_step = c.step;
    ++kills_after_commit;
  }
  // The kills must have hit a writer that was making progress.
  EXPECT_GT(kills_after_commit, 0);
  EXPECT_GE(last_step, 4);  // at least one commit per waiting iteration
  // Kills between a rename and the pruning after it leave extra files; the
  // next complete save prunes them all.
  {
    CheckpointManager manager(dir / "checkpoints", {.keep_last = 2});
    manager.save(state_for(last_step + 1));
    std::vector<fs::path> kept = manager.list();
    ASSERT_EQ(kept.size(), 2u);
    EXPECT_EQ(kept[0].filename().string(), "step_" + std::to_string(last_step) + ".h5");
    EXPECT_EQ(kept[1].filename().string(), "step_" + std::to_string(last_step + 1) + ".h5");
    expect_consistent(load_checkpoint(*manager.latest()));
  }
  std::printf("[          ] %d kills, the last writer had committed step %lld\n", kKills, static_cast<long long>(last_step));
}
