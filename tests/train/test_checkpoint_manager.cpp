// CheckpointManager: step_<N>.h5 naming, the `latest` pointer and its
// fallbacks, keep_last / keep_best pruning (max and min, kept across
// managers through best.json), stale temporary files, replacing a step.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "kiln/train/checkpoint.h"
#include "nn/temp_dir.h"
#include "test_util.h"

using namespace kiln;
using kiln::train::Checkpoint;
using kiln::train::CheckpointManager;
using kiln::train::CheckpointPolicy;
using kiln::train::load_checkpoint;
namespace fs = std::filesystem;

namespace {

// A small checkpoint whose weights hold `fill`, so a file's content shows
// which save wrote it.
Checkpoint ckpt(int64_t step, float fill = 0) {
  Checkpoint c;
  c.step = step;
  Tensor w = native::empty({16}, TensorOptions().dtype(kFloat32));
  for (int i = 0; i < 16; ++i) w.data_ptr<float>()[i] = fill == 0 ? static_cast<float>(step) : fill;
  c.model.insert("w", w);
  return c;
}

// The bytes of ckpt()'s weights holding `fill`, to find them in a file.
std::string weights_bytes(float fill) {
  std::vector<float> w(16, fill);
  return std::string(reinterpret_cast<const char*>(w.data()), w.size() * sizeof(float));
}

float fill_of(const fs::path& p) { return load_checkpoint(p).model["w"].data_ptr<float>()[0]; }

class CheckpointDir : public kiln::testing::TempDirTest {
 protected:
  fs::path ckdir() const { return dir_ / "checkpoints"; }
  // The steps of the step_<N>.h5 files, as list() returns them.
  static std::vector<int64_t> steps(const CheckpointManager& m) {
    std::vector<int64_t> out;
    for (const auto& p : m.list()) out.push_back(load_checkpoint(p).step);
    return out;
  }
  static std::vector<std::string> names(const CheckpointManager& m) {
    std::vector<std::string> out;
    for (const auto& p : m.list()) out.push_back(p.filename().string());
    return out;
  }
  std::string pointer() const { return read_bytes((ckdir() / "latest").string()); }
};

}  // namespace

TEST_F(CheckpointDir, SavesStepFilesAndPointsLatestAtTheNewest) {
  CheckpointManager m(ckdir(), {.keep_last = 0});
  EXPECT_TRUE(fs::is_directory(ckdir()));  // created
  EXPECT_FALSE(m.latest().has_value());
  EXPECT_TRUE(m.list().empty());
  fs::path p = m.save(ckpt(10));
  EXPECT_EQ(p, ckdir() / "step_10.h5");
  EXPECT_EQ(pointer(), "step_10.h5\n");
  m.save(ckpt(2));
  m.save(ckpt(100));
  // Numeric order, not by name.
  EXPECT_EQ(names(m), (std::vector<std::string>{"step_2.h5", "step_10.h5", "step_100.h5"}));
  EXPECT_EQ(steps(m), (std::vector<int64_t>{2, 10, 100}));
  EXPECT_EQ(pointer(), "step_100.h5\n");
  EXPECT_EQ(m.latest(), ckdir() / "step_100.h5");
}

TEST_F(CheckpointDir, KeepLastPrunesOlderCheckpoints) {
  CheckpointManager m(ckdir(), {.keep_last = 2});
  for (int64_t s = 1; s <= 5; ++s) m.save(ckpt(s * 100));
  EXPECT_EQ(steps(m), (std::vector<int64_t>{400, 500}));
  EXPECT_EQ(m.latest(), ckdir() / "step_500.h5");
  // Other files in the directory are never touched.
  write_bytes((ckdir() / "notes.txt").string(), "hello");
  write_bytes((ckdir() / "step_x.h5").string(), "not ours");
  m.save(ckpt(600));
  EXPECT_EQ(steps(m), (std::vector<int64_t>{500, 600}));
  EXPECT_TRUE(fs::exists(ckdir() / "notes.txt"));
  EXPECT_TRUE(fs::exists(ckdir() / "step_x.h5"));
}

TEST_F(CheckpointDir, KeepLastZeroKeepsEverything) {
  CheckpointManager m(ckdir(), {.keep_last = 0});
  for (int64_t s = 1; s <= 6; ++s) m.save(ckpt(s));
  EXPECT_EQ(steps(m), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
}

TEST_F(CheckpointDir, KeepBestByMaximum) {
  CheckpointPolicy policy{.keep_last = 1, .best_metric = "eval/accuracy", .best_higher = true, .keep_best = 1};
  CheckpointManager m(ckdir(), policy);
  m.save(ckpt(1), 0.5);
  m.save(ckpt(2), 0.9);
  m.save(ckpt(3), 0.7);
  m.save(ckpt(4), 0.6);
  EXPECT_EQ(steps(m), (std::vector<int64_t>{2, 4}));  // the best (2) and the newest (4)
  m.save(ckpt(5), 0.95);
  EXPECT_EQ(steps(m), (std::vector<int64_t>{5}));  // both at once
  m.save(ckpt(6));                                 // not evaluated
  EXPECT_EQ(steps(m), (std::vector<int64_t>{5, 6}));
  m.save(ckpt(7), std::numeric_limits<double>::quiet_NaN());  // NaN is never best
  EXPECT_EQ(steps(m), (std::vector<int64_t>{5, 7}));
  m.save(ckpt(8), 0.95);  // a tie: the earlier step reached it first
  EXPECT_EQ(steps(m), (std::vector<int64_t>{5, 8}));
  m.save(ckpt(9), 0.1);
  EXPECT_EQ(steps(m), (std::vector<int64_t>{5, 9}));
  EXPECT_EQ(m.latest(), ckdir() / "step_9.h5");
}

TEST_F(CheckpointDir, KeepBestByMinimumKeepsSeveral) {
  CheckpointPolicy policy{.keep_last = 1, .best_metric = "eval/loss", .best_higher = false, .keep_best = 2};
  CheckpointManager m(ckdir(), policy);
  const double loss[] = {3.0, 1.0, 2.0, 5.0, 4.0};
  for (int64_t s = 1; s <= 5; ++s) m.save(ckpt(s), loss[s - 1]);
  EXPECT_EQ(steps(m), (std::vector<int64_t>{2, 3, 5}));  // best two (1.0, 2.0) and the newest
  m.save(ckpt(6), 0.5);
  EXPECT_EQ(steps(m), (std::vector<int64_t>{2, 6}));
  // best.json records what scored what, for the kept checkpoints.
  std::string best = read_bytes((ckdir() / "best.json").string());
  EXPECT_NE(best.find("\"eval/loss\""), std::string::npos) << best;
  EXPECT_NE(best.find("\"min\""), std::string::npos) << best;
  EXPECT_NE(best.find("\"2\": 1"), std::string::npos) << best;
  EXPECT_NE(best.find("\"6\": 0.5"), std::string::npos) << best;
  EXPECT_EQ(best.find("\"3\""), std::string::npos) << best;
}

TEST_F(CheckpointDir, BestSurvivesANewManager) {
  CheckpointPolicy policy{.keep_last = 1, .best_metric = "eval/accuracy", .best_higher = true, .keep_best = 1};
  {
    CheckpointManager m(ckdir(), policy);
    m.save(ckpt(1), 0.9);
    m.save(ckpt(2), 0.3);
  }
  CheckpointManager m(ckdir(), policy);
  m.save(ckpt(3), 0.4);
  m.save(ckpt(4));
  EXPECT_EQ(steps(m), (std::vector<int64_t>{1, 4}));
  // A different metric starts over: the old values say nothing about it.
  CheckpointManager other(ckdir(), {.keep_last = 1, .best_metric = "eval/f1", .keep_best = 1});
  other.save(ckpt(5), 0.2);
  EXPECT_EQ(steps(other), (std::vector<int64_t>{5}));
}

TEST_F(CheckpointDir, WithoutBestMetricMetricsAreIgnored) {
  CheckpointManager m(ckdir(), {.keep_last = 1});
  m.save(ckpt(1), 100.0);
  m.save(ckpt(2), 0.0);
  EXPECT_EQ(steps(m), (std::vector<int64_t>{2}));
  EXPECT_FALSE(fs::exists(ckdir() / "best.json"));
}

TEST_F(CheckpointDir, MalformedBestJsonIsRebuiltWithAWarning) {
  CheckpointPolicy policy{.keep_last = 1, .best_metric = "acc", .keep_best = 1};
  CheckpointManager m(ckdir(), policy);
  m.save(ckpt(1), 0.5);
  write_bytes((ckdir() / "best.json").string(), "{\"metric\": ");
  ::testing::internal::CaptureStderr();
  m.save(ckpt(2), 0.4);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("best.json"), std::string::npos) << err;
  EXPECT_EQ(steps(m), (std::vector<int64_t>{2}));  // step 1's value was lost with the file
  m.save(ckpt(3), 0.3);
  EXPECT_EQ(steps(m), (std::vector<int64_t>{2, 3}));
}

TEST_F(CheckpointDir, SavingTheSameStepReplacesIt) {
  CheckpointPolicy policy{.keep_last = 1, .best_metric = "acc", .keep_best = 1};
  CheckpointManager m(ckdir(), policy);
  m.save(ckpt(3, 1.0f), 0.9);
  m.save(ckpt(3, 2.0f));  // no metric now: the old value was the old file's
  EXPECT_EQ(steps(m), (std::vector<int64_t>{3}));
  EXPECT_EQ(fill_of(ckdir() / "step_3.h5"), 2.0f);
  EXPECT_EQ(read_bytes((ckdir() / "best.json").string()).find("\"3\""), std::string::npos);
  m.save(ckpt(4), 0.1);
  EXPECT_EQ(steps(m), (std::vector<int64_t>{4}));
}

TEST_F(CheckpointDir, SavingAnEarlierStepKeepsItAsLatest) {
  // A run resumed from an older checkpoint saves steps below the newest file.
  CheckpointManager m(ckdir(), {.keep_last = 1});
  m.save(ckpt(5));
  m.save(ckpt(3));
  EXPECT_EQ(m.latest(), ckdir() / "step_3.h5");
  EXPECT_EQ(steps(m), (std::vector<int64_t>{3, 5}));  // the newest by step, and what latest names
  m.save(ckpt(4));
  EXPECT_EQ(steps(m), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(m.latest(), ckdir() / "step_4.h5");
}

TEST_F(CheckpointDir, LatestFollowsThePointerEvenWhenNewerFilesExist) {
  CheckpointManager m(ckdir(), {.keep_last = 0});
  m.save(ckpt(1));
  m.save(ckpt(2));
  // As after a crash between renaming step_3.h5 into place and moving the pointer.
  write_bytes((ckdir() / "latest").string(), "step_2.h5\n");
  fs::copy_file(ckdir() / "step_2.h5", ckdir() / "step_3.h5");
  EXPECT_EQ(m.latest(), ckdir() / "step_2.h5");
}

TEST_F(CheckpointDir, LatestFallsBackWhenTheNamedFileIsCorrupt) {
  CheckpointManager m(ckdir(), {.keep_last = 0});
  for (int64_t s = 1; s <= 3; ++s) m.save(ckpt(s));
  std::string bytes = read_bytes((ckdir() / "step_3.h5").string());
  write_bytes((ckdir() / "step_3.h5").string(), bytes.substr(0, bytes.size() / 2));
  ::testing::internal::CaptureStderr();
  auto latest = m.latest();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(latest, ckdir() / "step_2.h5");
  EXPECT_NE(err.find("warning"), std::string::npos) << err;
  EXPECT_NE(err.find((ckdir() / "step_3.h5").string()), std::string::npos) << err;

  // A damaged file below it is skipped too, each with its warning.
  bytes = read_bytes((ckdir() / "step_2.h5").string());
  size_t at = bytes.find(weights_bytes(2.0f));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 20] ^= 0x04;
  write_bytes((ckdir() / "step_2.h5").string(), bytes);
  ::testing::internal::CaptureStderr();
  latest = m.latest();
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(latest, ckdir() / "step_1.h5");
  EXPECT_NE(err.find((ckdir() / "step_3.h5").string()), std::string::npos) << err;
  EXPECT_NE(err.find((ckdir() / "step_2.h5").string()), std::string::npos) << err;
  EXPECT_NE(err.find("checksum mismatch"), std::string::npos) << err;

  fs::remove(ckdir() / "step_1.h5");
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(m.latest().has_value());
  ::testing::internal::GetCapturedStderr();
}

TEST_F(CheckpointDir, LatestFallsBackWhenThePointerIsMissingOrWrong) {
  CheckpointManager m(ckdir(), {.keep_last = 0});
  for (int64_t s = 1; s <= 3; ++s) m.save(ckpt(s));
  fs::remove(ckdir() / "latest");
  EXPECT_EQ(m.latest(), ckdir() / "step_3.h5");

  for (const char* named : {"step_9.h5\n", "../step_2.h5\n", "\n"}) {
    write_bytes((ckdir() / "latest").string(), named);
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(m.latest(), ckdir() / "step_3.h5") << named;
    std::string err = ::testing::internal::GetCapturedStderr();
    if (std::string(named) != "\n") {
      EXPECT_NE(err.find("warning"), std::string::npos) << named;
    }
  }
  // The pointer is trimmed, so a hand-written one without newline works.
  write_bytes((ckdir() / "latest").string(), "step_1.h5");
  EXPECT_EQ(m.latest(), ckdir() / "step_1.h5");
}

TEST_F(CheckpointDir, ConstructorRemovesStaleTemporaryFiles) {
  fs::create_directories(ckdir());
  const std::vector<std::string> stale = {"step_7.h5.tmp.12345", ".latest.tmp.999.0", ".best.json.tmp.4.17"};
  const std::vector<std::string> kept = {"notes.txt", "backup.tmp.txt", "step_7.h5"};
  for (const auto& f : stale) write_bytes((ckdir() / f).string(), "partial");
  for (const auto& f : kept) write_bytes((ckdir() / f).string(), "keep");
  CheckpointManager m(ckdir(), {});
  for (const auto& f : stale) EXPECT_FALSE(fs::exists(ckdir() / f)) << f;
  for (const auto& f : kept) EXPECT_TRUE(fs::exists(ckdir() / f)) << f;
  // A step file that does not load is listed (it is named like one) but
  // latest() skips it.
  EXPECT_EQ(m.list().size(), 1u);
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(m.latest().has_value());
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("step_7.h5"), std::string::npos) << err;
}

TEST_F(CheckpointDir, SaveLeavesNoTemporaryFiles) {
  CheckpointManager m(ckdir(), {.keep_last = 2, .best_metric = "acc", .keep_best = 1});
  for (int64_t s = 1; s <= 4; ++s) m.save(ckpt(s), 0.1 * static_cast<double>(s));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(ckdir())) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"best.json", "latest", "step_3.h5", "step_4.h5"}));
}

TEST_F(CheckpointDir, BadPoliciesAndSteps) {
  EXPECT_KILN_ERROR(CheckpointManager(ckdir(), {.keep_last = -1}), "keep_last");
  EXPECT_KILN_ERROR(CheckpointManager(ckdir(), {.keep_best = -2}), "keep_best");
  CheckpointManager m(ckdir(), {});
  EXPECT_KILN_ERROR(m.save(ckpt(-1)), "step");
  write_bytes(path("file"), "x");
  EXPECT_KILN_ERROR(CheckpointManager(path("file"), {}), path("file"));
}
