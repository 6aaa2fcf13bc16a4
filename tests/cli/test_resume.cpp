// The promise of `kiln train`: a run stopped at any moment (SIGTERM, or
// SIGKILL at a random point, even mid-checkpoint) and started again with the
// same command ends with bitwise the same weights, optimizer moments and
// metrics lines as a run never stopped. With 1 and 2 loader workers.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "cli/cli_test_util.h"
#include "kiln/train/checkpoint.h"

namespace {

using namespace kiln::test_cli;

void expect_same_dicts(const kiln::nn::StateDict& a, const kiln::nn::StateDict& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& item : a) {
    const kiln::Tensor* other = b.find(item.key);
    ASSERT_NE(other, nullptr) << what << ": " << item.key;
    const kiln::Tensor x = item.value.contiguous(), y = other->contiguous();
    ASSERT_EQ(x.sizes().vec(), y.sizes().vec()) << what << ": " << item.key;
    ASSERT_EQ(x.dtype(), y.dtype()) << what << ": " << item.key;
    EXPECT_EQ(std::memcmp(x.data_ptr(), y.data_ptr(), static_cast<size_t>(x.nbytes())), 0)
        << what << ": " << item.key << " differs";
  }
}

struct Runs {
  ScratchDir tmp;
  fs::path data = tmp.path() / "data";
  Runs() { write_toy_mnist(data); }

  fs::path config(const std::string& name, const std::string& extra) {
    const fs::path file = tmp.path() / (name + ".yaml");
    write_text(file, toy_config(data, tmp.path() / name, extra));
    return file;
  }
};

void expect_same_runs(const fs::path& a, const fs::path& b) {
  const auto final_a = kiln::train::load_checkpoint(a / "checkpoints" / "step_40.h5");
  const auto final_b = kiln::train::load_checkpoint(b / "checkpoints" / "step_40.h5");
  expect_same_dicts(final_a.model, final_b.model, "model");
  expect_same_dicts(final_a.optimizer, final_b.optimizer, "optimizer");
  expect_same_dicts(final_a.scheduler, final_b.scheduler, "scheduler");
  EXPECT_EQ(final_a.generator_offset, final_b.generator_offset);
  EXPECT_EQ(final_a.loader_epoch, final_b.loader_epoch);
  EXPECT_EQ(final_a.loader_batch, final_b.loader_batch);
  EXPECT_EQ(deterministic_metrics(a / "metrics.jsonl"), deterministic_metrics(b / "metrics.jsonl"));
  EXPECT_EQ(read_text(a / "model" / "model.safetensors"), read_text(b / "model" / "model.safetensors"));
}

class Resume : public ::testing::TestWithParam<int> {};

TEST_P(Resume, SigtermThenSameCommandMatchesUninterruptedRun) {
  Runs r;
  const fs::path whole = r.config("whole", "");
  const fs::path parts = r.config("parts", "");
  const std::vector<std::string> set = {"--set", "data.workers=" + std::to_string(GetParam())};
  auto args = [&](const fs::path& cfg) {
    std::vector<std::string> a = {"train", cfg.string()};
    a.insert(a.end(), set.begin(), set.end());
    return a;
  };
  Result full = run_kiln(args(whole), r.tmp.path(), "whole");
  ASSERT_EQ(full.code, 0) << full.err;

  // Stop part-way through, twice (once before any periodic checkpoint).
  for (int64_t stop_at : {3, 17}) {
    Process p = spawn_kiln(args(parts), r.tmp.path(), "parts");
    ASSERT_GT(p.pid, 0);
    ASSERT_TRUE(wait_for_step(p, r.tmp.path() / "parts" / "metrics.jsonl", stop_at)) << read_text(p.err);
    kill(p.pid, SIGTERM);
    EXPECT_EQ(wait_exit(p), 0) << read_text(p.err);
    const std::string err = read_text(p.err);
    EXPECT_NE(err.find("stopped at step"), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(r.tmp.path() / "parts" / "checkpoints" / "step_40.h5"));
  }
  Result rest = run_kiln(args(parts), r.tmp.path(), "parts-rest");
  ASSERT_EQ(rest.code, 0) << rest.err;
  EXPECT_NE(rest.err.find("resumed from"), std::string::npos) << rest.err;
  expect_same_runs(r.tmp.path() / "whole", r.tmp.path() / "parts");

  // Running a finished run again changes nothing.
  Result again = run_kiln(args(parts), r.tmp.path(), "parts-again");
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("already complete"), std::string::npos) << again.err;
}

TEST_P(Resume, SigkillAtRandomMomentsThenSameCommandMatchesUninterruptedRun) {
  Runs r;
  const std::vector<std::string> set = {"--set", "data.workers=" + std::to_string(GetParam()), "--set",
                                        "checkpoint.every=2"};
  auto args = [&](const fs::path& cfg) {
    std::vector<std::string> a = {"train", cfg.string()};
    a.insert(a.end(), set.begin(), set.end());
    return a;
  };
  Result full = run_kiln(args(r.config("whole", "")), r.tmp.path(), "whole");
  ASSERT_EQ(full.code, 0) << full.err;
  const fs::path parts = r.config("parts", "");
  std::mt19937 rng(static_cast<unsigned>(GetParam()) * 7919u);
  int kills = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    Process p = spawn_kiln(args(parts), r.tmp.path(), "parts");
    ASSERT_GT(p.pid, 0);
    const int64_t done = logged_step(r.tmp.path() / "parts" / "metrics.jsonl");
    if (!wait_for_step(p, r.tmp.path() / "parts" / "metrics.jsonl", std::min<int64_t>(done + 3, 38))) break;
    // A random moment within the next few steps: often mid-checkpoint.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    kill(p.pid, SIGKILL);
    wait_exit(p);
    ++kills;
  }
  EXPECT_GE(kills, 2);
  Result rest = run_kiln(args(parts), r.tmp.path(), "parts-rest");
  ASSERT_EQ(rest.code, 0) << rest.err;
  expect_same_runs(r.tmp.path() / "whole", r.tmp.path() / "parts");
}

INSTANTIATE_TEST_SUITE_P(Workers, Resume, ::testing::Values(1, 2), [](const auto& info) {
  return std::to_string(info.param) + "_workers";
});

}  // namespace
