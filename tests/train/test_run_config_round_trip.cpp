// Run configs: to_yaml round trips of every section and tricky values,
// --set overrides, loading files and from_pretrained directories, and
// model_differences.
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/models/bit.h"
#include "kiln/models/registry.h"
#include "kiln/train/run_config.h"
#include "test_util.h"
#include "train/run_config_fixture.h"

namespace {

using namespace kiln::testing::run_config;

TEST_F(RunConfigTest, EverySectionRoundTrips) {
  write_bytes(path("ckpt.h5"), "");
  const std::string yaml = std::string(kTinyModel) + "  ignore_mismatched_sizes: true\n" +
                           R"(run:
  name: "my run: 2"
  seed: 18446744073709551615
  device: "cuda:1"
  threads: 3
data:
  train:
    type: image_folder
    path: )" + train_dir_ +
                           R"(
    skip_bad_images: true
    limit: 7
    transforms:
      - random_crop: {size: 28, padding: 2}
      - horizontal_flip
      - to_tensor
      - normalize: {mean: [0.1307], std: [0.3081]}
  eval:
    type: idx
    path: )" + idx_dir_ +
                           R"(
    split: test
  batch_size: 16
  eval_batch_size: 64
  workers: 0
  prefetch: 1
  shuffle: false
  drop_last: false
optim:
  name: sgd
  lr: 0.1
  weight_decay: 5e-4
  momentum: 0.9
  nesterov: true
  no_decay_bias_and_norm: false
schedule:
  name: multistep
  warmup_ratio: 0.05
  gamma: 0.2
  milestone_fractions: [0.3, 0.6, 0.9]
train:
  epochs: 3
  grad_accum: 4
  clip_norm: 1.5
  precision: bf16
  log_every: 5
  eval_every: 20
  nan_policy: skip
  label_smoothing: 0.1
checkpoint:
  every: 100
  keep_last: 0
  keep_best: eval/accuracy
  resume: )" + path("ckpt.h5") +
                           R"(
  resume_strict: false
  init_from: )" + path("ckpt.h5") +
                           R"(
early_stopping:
  metric: eval/loss
  patience: 4
  min_delta: 0.001
)";
  const RunConfig c = parse_run_config(yaml, "all.yaml");
  EXPECT_EQ(c.run.name, "my run: 2");
  EXPECT_EQ(c.run.output_dir, "runs/my run: 2");
  EXPECT_EQ(c.run.seed, 18446744073709551615ull);
  EXPECT_EQ(c.run.device, "cuda:1");
  EXPECT_EQ(c.optim.weight_decay, std::optional<double>(5e-4));
  EXPECT_TRUE(c.optim.nesterov);
  EXPECT_EQ(c.schedule.milestone_fractions, (std::vector<double>{0.3, 0.6, 0.9}));
  EXPECT_EQ(c.train.precision, "bf16");
  EXPECT_EQ(c.checkpoint.keep_best, "eval/accuracy");
  EXPECT_EQ(c.early_stopping.mode, "min");
  EXPECT_TRUE(c.model.ignore_mismatched_sizes);
  expect_round_trip(c);
  // The other schedules' keys too.
  for (const std::string schedule :
       {"{name: step, step_size: 30, gamma: 0.5}", "{name: multistep, milestones: [10, 20]}",
        "{name: polynomial, power: 2.0, lr_end: 1e-6, warmup_steps: 5}", "{name: cosine, min_lr: 1e-5}",
        "{name: linear}"}) {
    const RunConfig s = parse_run_config(minimal("train: {max_steps: 10}\nschedule: " + schedule + "\n"), "s.yaml");
    expect_round_trip(s);
  }
}

TEST_F(RunConfigTest, StringsThatLookLikeOtherThingsRoundTrip) {
  for (const std::string name : {"'123'", "'true'", "'yes'", "'null'", "'1e5'", "'a: b'", "'#x'", "'-'", "\"tab\\there\""}) {
    const RunConfig c = parse_run_config(minimal("train: {max_steps: 1}\nrun: {name: " + name + "}\n"), "s.yaml");
    expect_round_trip(c);
  }
  const RunConfig c = parse_run_config(minimal("train: {max_steps: 1}\nrun: {name: 123}\n"), "s.yaml");
  EXPECT_EQ(c.run.name, "123");  // a plain scalar is read as its text where a string is expected
}

TEST_F(RunConfigTest, DoublesRoundTripExactly) {
  const RunConfig c = parse_run_config(
      minimal("train: {max_steps: 1}\noptim: {lr: 0.1234567890123456789, eps: 1e-300, beta2: 0.98}\n"), "s.yaml");
  EXPECT_EQ(c.optim.lr, 0.1234567890123456789);
  EXPECT_EQ(c.optim.eps, 1e-300);
  expect_round_trip(c);
}

TEST_F(RunConfigTest, OverridesApplyBeforeValidation) {
  const RunConfig c = parse_run_config(minimal(), "o.yaml",
                                       {"train.max_steps=7", "model.config.hidden_sizes=[8, 32]", "data.eval.type=image_folder",
                                        "data.eval.path=" + eval_dir_, "optim.lr = 0.5", "run.name=exp"});
  EXPECT_EQ(c.train.max_steps, 7);
  EXPECT_EQ(c.model.config["hidden_sizes"], nlohmann::json::array({8, 32}));
  ASSERT_TRUE(c.data.eval.has_value());
  EXPECT_EQ(c.data.eval->path, eval_dir_);
  EXPECT_EQ(c.optim.lr, 0.5);
  EXPECT_EQ(c.run.output_dir, "runs/exp");
  // A map value replaces the whole key; the last override wins.
  const RunConfig d = parse_run_config(minimal(), "o.yaml", {"train={epochs: 2}", "train.epochs=5"});
  EXPECT_EQ(d.train.max_steps, 0);
  EXPECT_EQ(d.train.epochs, 5);
  // Overrides create whole sections too.
  const RunConfig e = parse_run_config(minimal(), "o.yaml", {"early_stopping.metric=train/loss", "early_stopping.patience=2"});
  EXPECT_EQ(e.early_stopping.metric, "train/loss");
  EXPECT_EQ(e.early_stopping.patience, 2);
}

TEST_F(RunConfigTest, LoadFromFile) {
  write_bytes(path("run.yaml"), minimal());
  const RunConfig c = load_run_config(path("run.yaml"), {"train.max_steps=4"});
  EXPECT_EQ(c.source, path("run.yaml"));
  EXPECT_EQ(c.train.max_steps, 4);
  try {
    load_run_config(path("nope.yaml"));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path("nope.yaml")), std::string::npos) << e.what();
  }
}

TEST_F(RunConfigTest, FromPretrainedDirectory) {
  models::BitConfig config;
  config.num_channels = 1;
  config.embedding_size = 8;
  config.hidden_sizes = {8};
  config.depths = {1};
  config.num_groups = 4;
  config.validate();
  models::save_pretrained(models::BitForImageClassificationImpl(config), path("bit"));
  const std::string yaml = "model:\n  from_pretrained: " + path("bit") +
                           "\n  num_labels: 5\n  ignore_mismatched_sizes: true\ndata:\n  train: {type: image_folder, path: " +
                           train_dir_ + "}\ntrain: {max_steps: 1}\n";
  const RunConfig c = parse_run_config(yaml, "p.yaml");
  EXPECT_EQ(c.model.from_pretrained, path("bit"));
  EXPECT_TRUE(c.model.architecture.empty());
  EXPECT_TRUE(c.model.config.empty());
  EXPECT_EQ(c.model.num_labels, std::optional<int64_t>(5));
  expect_round_trip(c);
  // Without num_labels: the directory's own count, left unset.
  const RunConfig d = parse_run_config(yaml, "p.yaml", {"model.num_labels=null"});
  EXPECT_FALSE(d.model.num_labels.has_value());
  expect_round_trip(d);
}

TEST_F(RunConfigTest, ModelDifferences) {
  const RunConfig a = parse_run_config(minimal(), "a.yaml");
  EXPECT_TRUE(model_differences(a, a).empty());
  const RunConfig b =
      parse_run_config(minimal(), "b.yaml", {"model.config.hidden_sizes=[8, 32]", "model.num_labels=3", "model.config.drop_path_rate=0.5"});
  const auto lines = model_differences(a, b);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "model.num_labels: 10 in the checkpoint, 3 here");
  // Config fields in the config's (alphabetical) order.
  EXPECT_EQ(lines[1], "model.config.drop_path_rate: 0.0 in the checkpoint, 0.5 here");
  EXPECT_EQ(lines[2], "model.config.hidden_sizes: [8, 16] in the checkpoint, [8, 32] here");
  // Other sections are not the model's business.
  const RunConfig c = parse_run_config(minimal(), "c.yaml", {"optim.lr=0.5", "train.max_steps=99"});
  EXPECT_TRUE(model_differences(a, c).empty());
  // Architecture vs directory, a key only one side has.
  RunConfig d = a;
  d.model.architecture.clear();
  d.model.from_pretrained = "some/dir";
  d.model.config = nlohmann::json::object();
  d.model.config["only_here"] = "x";
  const auto e = model_differences(a, d);
  EXPECT_EQ(e.front(), "model.architecture: BitForImageClassification in the checkpoint, (none) here");
  EXPECT_EQ(e[1], "model.from_pretrained: (none) in the checkpoint, some/dir here");
  EXPECT_EQ(e.back(), "model.config.only_here: (unset) in the checkpoint, x here");
}

}  // namespace
