// `kiln` as a user meets it: help and usage errors, config errors (exit 2,
// the key and the line named, nothing written), corrupted checkpoints
// (exit 1, the file named), the NaN policies, early stopping, eval, inspect
// and config.
#include <gtest/gtest.h>

#include <algorithm>

#include "cli/cli_test_util.h"
#include "kiln/core/backend.h"

namespace {

using namespace kiln::test_cli;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct Toy {
  ScratchDir tmp;
  fs::path data = tmp.path() / "data";
  fs::path out = tmp.path() / "run";
  Toy() { write_toy_mnist(data, 64, 32); }
  fs::path config(const std::string& extra = "", const std::string& name = "run.yaml") {
    write_text(tmp.path() / name, toy_config(data, out, extra));
    return tmp.path() / name;
  }
  Result kiln(const std::vector<std::string>& args) { return run_kiln(args, tmp.path()); }
};

TEST(Cli, HelpForEveryCommand) {
  Toy t;
  for (const std::string cmd : {"train", "eval", "inspect", "config"}) {
    Result r = t.kiln({cmd, "--help"});
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_TRUE(contains(r.out, "usage: kiln " + cmd)) << r.out;
  }
  Result top = t.kiln({"--help"});
  EXPECT_EQ(top.code, 0);
  EXPECT_TRUE(contains(top.out, "commands:"));
}

TEST(Cli, UsageErrorsExit2) {
  Toy t;
  EXPECT_EQ(t.kiln({}).code, 2);
  Result unknown = t.kiln({"trian"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_TRUE(contains(unknown.err, "unknown command 'trian'"));
  Result flag = t.kiln({"train", t.config().string(), "--frobnicate"});
  EXPECT_EQ(flag.code, 2);
  EXPECT_TRUE(contains(flag.err, "unknown option '--frobnicate'")) << flag.err;
  Result no_config = t.kiln({"train"});
  EXPECT_EQ(no_config.code, 2);
  Result bad_set = t.kiln({"train", t.config().string(), "--set", "train.max_steps"});
  EXPECT_EQ(bad_set.code, 2);
  EXPECT_TRUE(contains(bad_set.err, "key.path=value")) << bad_set.err;
  Result eval = t.kiln({"eval", t.config().string()});
  EXPECT_EQ(eval.code, 2);
  EXPECT_TRUE(contains(eval.err, "--checkpoint")) << eval.err;
}

// Each bad config: exit 2, a message naming the key and where it is, and no
// run directory created.
TEST(Cli, ConfigErrorsNameKeyAndLineAndCreateNothing) {
  Toy t;
  struct Case {
    std::string extra;      // appended to the toy config
    std::string key, where;  // expected in the message
  };
  // Appended sections start on the line after the toy config's last.
  const std::string base = toy_config(t.data, t.out);
  const int64_t first = std::count(base.begin(), base.end(), '\n') + 1;
  auto at = [&](int64_t offset) {
    std::string where = ":";
    where += std::to_string(first + offset);
    where += ":";
    return where;
  };
  const std::vector<Case> cases = {
      {"early_stoping:\n  metric: eval/loss\n", "early_stoping", at(0)},
      {"early_stopping:\n  metric: eval/loss\n  patiense: 3\n", "early_stopping.patiense", at(2)},
      {"early_stopping:\n  metric: eval/loss\n  patience: many\n", "early_stopping.patience", at(2)},
      {"early_stopping:\n  metric: eval/loss\n  patience: -1\n", "early_stopping.patience", at(2)},
  };
  for (const auto& c : cases) {
    const fs::path cfg = t.config(c.extra, "bad.yaml");
    Result r = t.kiln({"train", cfg.string()});
    EXPECT_EQ(r.code, 2) << c.extra << r.err;
    EXPECT_TRUE(contains(r.err, c.key)) << c.extra << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, c.where)) << c.extra << "\n" << r.err;
    EXPECT_FALSE(fs::exists(t.out)) << c.extra;
  }
  // Through --set as well.
  Result r = t.kiln({"train", t.config().string(), "--set", "optim.lr=-1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "optim.lr")) << r.err;
  Result typo = t.kiln({"train", t.config().string(), "--set", "train.max_step=3"});
  EXPECT_EQ(typo.code, 2);
  EXPECT_TRUE(contains(typo.err, "train.max_steps")) << typo.err;  // did you mean
  Result missing = t.kiln({"train", (t.tmp.path() / "nope.yaml").string()});
  EXPECT_EQ(missing.code, 2);
  EXPECT_TRUE(contains(missing.err, "nope.yaml")) << missing.err;
  EXPECT_FALSE(fs::exists(t.out));
}

TEST(Cli, ConfigPrintsResolvedConfigThatRunsTheSame) {
  Toy t;
  Result r = t.kiln({"config", t.config().string(), "--set", "train.max_steps=4"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "max_steps: 4")) << r.out;
  EXPECT_TRUE(contains(r.out, "keep_last: 2")) << r.out;
  EXPECT_TRUE(contains(r.out, "weight_decay")) << r.out;  // a default, filled in
  write_text(t.tmp.path() / "resolved.yaml", r.out);
  Result again = t.kiln({"config", (t.tmp.path() / "resolved.yaml").string()});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, r.out);
}

TEST(Cli, TrainWritesRunDirectoryAndInspectAndEvalReadIt) {
  Toy t;
  Result r = t.kiln({"train", t.config().string(), "--set", "train.max_steps=10"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(t.out / "config.yaml"));
  EXPECT_TRUE(fs::exists(t.out / "metrics.jsonl"));
  EXPECT_TRUE(fs::exists(t.out / "model" / "config.json"));
  EXPECT_TRUE(fs::exists(t.out / "model" / "model.safetensors"));
  EXPECT_EQ(read_text(t.out / "checkpoints" / "latest"), "step_10.h5\n");
  // keep_last 2 of the periodic checkpoints (every 5).
  EXPECT_TRUE(fs::exists(t.out / "checkpoints" / "step_5.h5"));
  const auto lines = deterministic_metrics(t.out / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 11u);  // 10 train lines, 1 eval at step 10
  const auto eval = nlohmann::json::parse(lines.back());
  EXPECT_EQ(eval["event"], "eval");
  EXPECT_EQ(eval["eval/examples"], 32);
  for (const char* k : {"eval/loss", "eval/accuracy", "eval/top5"}) EXPECT_TRUE(eval.contains(k)) << k;

  const std::string ckpt = (t.out / "checkpoints" / "step_10.h5").string();
  Result inspect = t.kiln({"inspect", ckpt});
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  EXPECT_TRUE(contains(inspect.out, "step: 10")) << inspect.out;
  EXPECT_TRUE(contains(inspect.out, "model/bit.embedder.convolution.weight")) << inspect.out;
  EXPECT_TRUE(contains(inspect.out, "max_steps: 10")) << inspect.out;
  EXPECT_TRUE(contains(inspect.out, "checksum: verified")) << inspect.out;

  Result ev = t.kiln({"eval", t.config().string(), "--checkpoint", ckpt});
  ASSERT_EQ(ev.code, 0) << ev.err;
  const auto metrics = nlohmann::json::parse(ev.out);
  EXPECT_DOUBLE_EQ(metrics["eval/accuracy"].get<double>(), eval["eval/accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(metrics["eval/loss"].get<double>(), eval["eval/loss"].get<double>());
}

TEST(Cli, CorruptedCheckpointsAreClearErrors) {
  Toy t;
  ASSERT_EQ(t.kiln({"train", t.config().string(), "--set", "train.max_steps=5"}).code, 0);
  const fs::path good = t.out / "checkpoints" / "step_5.h5";
  const std::string bytes = read_text(good);
  const fs::path truncated = t.tmp.path() / "truncated.h5", flipped = t.tmp.path() / "flipped.h5";
  write_text(truncated, bytes.substr(0, bytes.size() / 2));
  std::string f = bytes;
  f[f.size() * 3 / 4] ^= 0x10;  // inside the tensor data
  write_text(flipped, f);
  for (const fs::path& bad : {truncated, flipped}) {
    Result inspect = t.kiln({"inspect", bad.string()});
    EXPECT_EQ(inspect.code, 1) << bad;
    EXPECT_TRUE(contains(inspect.err, bad.string())) << inspect.err;
    Result resume = t.kiln({"train", t.config().string(), "--set", "checkpoint.resume=" + bad.string(), "--set",
                            "train.max_steps=8"});
    EXPECT_EQ(resume.code, 1) << resume.err;
    EXPECT_TRUE(contains(resume.err, bad.string())) << resume.err;
  }
  Result flipped_inspect = t.kiln({"inspect", flipped.string()});
  EXPECT_TRUE(contains(flipped_inspect.err, "corrupt")) << flipped_inspect.err;
}

TEST(Cli, ResumeRefusesADifferentModel) {
  Toy t;
  ASSERT_EQ(t.kiln({"train", t.config().string(), "--set", "train.max_steps=5"}).code, 0);
  Result r = t.kiln({"train", t.config().string(), "--set", "train.max_steps=8", "--set",
                     "model.config.hidden_sizes=[8, 32]"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "hidden_sizes")) << r.err;
  EXPECT_TRUE(contains(r.err, "resume_strict")) << r.err;
}

TEST(Cli, NanPolicyStopCheckpointsLastGoodStateAndExits1) {
  Toy t;
  Result r = t.kiln({"train", t.config().string(), "--set", "optim.lr=1e30", "--set", "optim.name=sgd"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "non-finite loss or gradient at step")) << r.err;
  EXPECT_TRUE(fs::exists(t.out / "checkpoints" / "latest")) << r.err;
}

TEST(Cli, NanPolicySkipCountsAndFinishes) {
  Toy t;
  Result r = t.kiln({"train", t.config().string(), "--set", "optim.lr=1e30", "--set", "optim.name=sgd", "--set",
                     "train.nan_policy=skip", "--set", "train.max_steps=6"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "update skipped")) << r.err;
  const auto lines = deterministic_metrics(t.out / "metrics.jsonl");
  const auto last_train = nlohmann::json::parse(lines[lines.size() - 2]);
  EXPECT_GT(last_train.value("nan_skips", 0), 0) << lines[lines.size() - 2];
}

TEST(Cli, EarlyStoppingEndsTheRun) {
  Toy t;
  // min_delta 100: no evaluation after the first counts as an improvement.
  Result r = t.kiln(
      {"train",
       t.config("early_stopping:\n  metric: eval/loss\n  mode: min\n  patience: 2\n  min_delta: 100\n").string(),
       "--set", "train.eval_every=2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "early stopping at step 6")) << r.err;
  EXPECT_TRUE(fs::exists(t.out / "model" / "model.safetensors"));
}

// A second `kiln train` on a directory in use is refused before it writes
// anything; the first run is unaffected and, once stopped, resumable.
TEST(Cli, SecondTrainerOnTheSameRunDirectoryIsRefused) {
  Toy t;
  const fs::path cfg = t.config();
  // Long enough that it is still running whatever the machine's load.
  Process first = spawn_kiln({"train", cfg.string(), "--set", "train.max_steps=100000"}, t.tmp.path(), "first");
  ASSERT_GT(first.pid, 0);
  ASSERT_TRUE(wait_for_step(first, t.out / "metrics.jsonl", 2)) << read_text(first.err);
  Result second = t.kiln({"train", cfg.string(), "--set", "train.max_steps=100000"});
  EXPECT_EQ(second.code, 1) << second.err;
  EXPECT_TRUE(contains(second.err, "is in use by another kiln train (pid " + std::to_string(first.pid) + ")"))
      << second.err;
  kill(first.pid, SIGTERM);
  EXPECT_EQ(wait_exit(first), 0) << read_text(first.err);
  // The lock went with the process: the run continues (with its original length).
  Result resumed = t.kiln({"train", cfg.string()});
  EXPECT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(contains(resumed.err, "resumed from") || contains(resumed.err, "already complete")) << resumed.err;
}

TEST(Cli, InitFromLoadsWeightsOnly) {
  Toy t;
  ASSERT_EQ(t.kiln({"train", t.config().string(), "--set", "train.max_steps=5"}).code, 0);
  const std::string ckpt = (t.out / "checkpoints" / "step_5.h5").string();
  Result r = t.kiln({"train", t.config().string(), "--set", "run.output_dir=" + (t.tmp.path() / "ft").string(),
                     "--set", "checkpoint.init_from=" + ckpt, "--set", "train.max_steps=2"});
  ASSERT_EQ(r.code, 0) << r.err;
  // A fresh run (step 1 is its first), starting from the trained weights.
  const auto lines = deterministic_metrics(t.tmp.path() / "ft" / "metrics.jsonl");
  EXPECT_EQ(nlohmann::json::parse(lines.front())["step"], 1);
}

}  // namespace

// run.device: cuda where no GPU answers is a clear error that creates
// nothing; where one does, the same toy run trains there (bf16 autocast
// included) and matches the CPU run's accuracy closely.
TEST(Cli, CudaDeviceIsAClearErrorWithoutAGpuAndTrainsWithOne) {
  Toy t;
  if (!kiln::has_backend(kiln::kCUDA)) {
    Result r = t.kiln({"train", t.config().string(), "--set", "run.device=cuda"});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "run.device: 'cuda' is not available")) << r.err;
    EXPECT_TRUE(contains(r.err, "no GPU was found")) << r.err;
    EXPECT_FALSE(fs::exists(t.out / "checkpoints")) << "a failed start must leave no checkpoints";
    return;
  }
  for (const std::string precision : {"f32", "tf32", "bf16"}) {
    const fs::path out = t.tmp.path() / ("cuda_" + precision);
    Result r = t.kiln({"train", t.config().string(), "--set", "run.device=cuda", "--set", "train.precision=" + precision,
                       "--set", "run.output_dir=" + out.string()});
    ASSERT_EQ(r.code, 0) << precision << "\n" << r.err;
    EXPECT_TRUE(fs::exists(out / "model" / "model.safetensors")) << precision;
  }
}
