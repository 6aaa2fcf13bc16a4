// Bad run configs: each must throw ConfigError naming the key and pointing
// at the right place, FILE:LINE:COL (1-based) of the offending key or value,
// or the --set override that put it there.
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/train/run_config.h"
#include "nn/temp_dir.h"

namespace {

using namespace kiln::train;
namespace fs = std::filesystem;

// A valid run: the tiny BiT, one image folder, ten steps.
const char* kBase = R"(model:
  architecture: BitForImageClassification
  config: {num_channels: 1, embedding_size: 8, hidden_sizes: [8, 16], depths: [1, 1], layer_type: preactivation, num_groups: 4}
  num_labels: 10
data:
  train: {type: image_folder, path: TRAIN}
train:
  max_steps: 10
)";

struct Case {
  const char* name;
  // Edits of kBase: `from` replaced by `to` (from empty: `to` appended).
  std::string from, to;
  std::vector<std::string> overrides;
  // Where the error must point: "cfg.yaml:L:C" of the first occurrence of
  // this text in the final YAML (at_nth picks a later one), or taken as is
  // when it starts with "--set" or "cfg.yaml".
  std::string at;
  std::vector<std::string> fragments;  // all must be in the message
  int at_nth = 0;
};

// "cfg.yaml:LINE:COL" of the n-th occurrence of needle.
std::string position_of(const std::string& text, const std::string& needle, int nth) {
  size_t pos = text.find(needle);
  for (int i = 0; i < nth && pos != std::string::npos; ++i) pos = text.find(needle, pos + 1);
  if (pos == std::string::npos) return "<'" + needle + "' not in the YAML>";
  const size_t line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n') + 1;
  const size_t line_start = text.rfind('\n', pos == 0 ? 0 : pos - 1);
  const size_t column = line_start == std::string::npos || pos == 0 ? pos + 1 : pos - line_start;
  return "cfg.yaml:" + std::to_string(line) + ":" + std::to_string(column);
}

class RunConfigErrors : public kiln::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(path("train"));
    fs::create_directories(path("idx"));
    write_bytes(path("idx") + "/train-images-idx3-ubyte", "");
    write_bytes(path("idx") + "/train-labels-idx1-ubyte", "");
  }
  std::string fill(std::string s) const {
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"TRAIN", path("train")},
                                     {"IDXDIR", path("idx")},
                                     {"MISSING", path("missing")}}) {
      for (size_t pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + value.size())) {
        s.replace(pos, key.size(), value);
      }
    }
    return s;
  }
};

TEST_F(RunConfigErrors, TheBaseIsValid) {
  const RunConfig c = parse_run_config(fill(kBase), "cfg.yaml");
  EXPECT_EQ(c.train.max_steps, 10);
}

TEST_F(RunConfigErrors, EachNamesTheKeyAndItsPlace) {
  const std::vector<Case> cases = {
      // Unknown keys, with the nearest valid key.
      {"unknown section", "", "trian:\n  epochs: 1\n", {}, "trian:", {"unknown key 'trian' (did you mean 'train'?)"}},
      {"unknown nested key", "  train: {", "  trian: {", {}, "trian", {"unknown key 'data.trian' (did you mean 'data.train'?)"}},
      {"unknown key far from any", "", "optim:\n  zzzzzz: 1\n", {}, "zzzzzz", {"unknown key 'optim.zzzzzz'"}},
      {"unknown model.config field", "embedding_size: 8, hidden_sizes", "embedding_size: 8, hiden_sizes", {},
       "hiden_sizes", {"unknown key 'model.config.hiden_sizes'", "(did you mean 'model.config.hidden_sizes'?)"}},
      {"duplicate key", "", "optim:\n  lr: 0.1\n  lr: 0.2\n", {}, "lr: 0.2", {"optim.lr: duplicate key"}},
      // Types.
      {"integer expected", "max_steps: 10", "max_steps: abc", {}, "abc", {"train.max_steps: expected an integer, got 'abc'"}},
      {"quoted number", "", "optim:\n  lr: \"0.1\"\n", {}, "\"0.1\"", {"optim.lr: expected a number, got the string '0.1'"}},
      {"section not a map", "", "optim: 3\n", {}, "3\n", {"optim: expected a map of keys"}},
      {"model.config field type", "num_groups: 4", "num_groups: four", {}, "four",
       {"model.config: key \"num_groups\": expected an integer"}},
      // Values.
      {"negative lr", "", "optim:\n  lr: -0.1\n", {}, "-0.1", {"optim.lr: must be > 0, got -0.1"}},
      {"zero lr", "", "optim: {lr: 0}\n", {}, "0}", {"optim.lr: must be > 0"}},
      {"batch_size 0", "path: TRAIN}\n", "path: TRAIN}\n  batch_size: 0\n", {}, "0\ntrain", {"data.batch_size: must be >= 1, got 0"}},
      {"grad_accum 0", "", "  grad_accum: 0  # here\n", {}, "0  # here", {"train.grad_accum: must be >= 1, got 0"}},
      {"negative clip_norm", "", "  clip_norm: -1\n", {}, "-1", {"train.clip_norm: must be >= 0, got -1.0"}},
      {"negative keep_last", "", "checkpoint:\n  keep_last: -1\n", {}, "-1", {"checkpoint.keep_last: must be >= 0, got -1"}},
      {"warmup_ratio 1", "", "schedule: {warmup_ratio: 1.0}\n", {}, "1.0}", {"schedule.warmup_ratio: must be in [0, 1), got 1.0"}},
      {"max_steps and epochs", "", "  epochs: 3\n", {}, "3\n", {"train.epochs: set train.max_steps or train.epochs, not both"}, 0},
      {"neither max_steps nor epochs", "  max_steps: 10", "  log_every: 5", {}, "log_every",
       {"train: one of train.max_steps and train.epochs is required"}},
      {"warmup steps and ratio", "", "schedule:\n  warmup_steps: 5\n  warmup_ratio: 0.1\n", {}, "0.1",
       {"schedule.warmup_ratio: set warmup_steps or warmup_ratio, not both"}},
      {"unknown optimizer", "", "optim:\n  name: adamx\n", {}, "adamx",
       {"optim.name: 'adamx' is not one of sgd, adam or adamw (did you mean 'adamw'?)"}},
      {"bf16 on cpu", "", "  precision: bf16\n", {}, "bf16", {"train.precision: bf16 needs a CUDA device"}},
      {"sgd setting with adamw", "", "optim: {momentum: 0.9}\n", {}, "0.9", {"optim.momentum: is an sgd setting"}},
      {"num_labels 0", "num_labels: 10", "num_labels: 0", {}, "0\n", {"model.num_labels: must be >= 1, got 0"}},
      {"negative seed", "", "run: {seed: -1}\n", {}, "-1", {"run.seed: expected a non-negative integer, got '-1'"}},
      {"eval_every without eval data", "", "  eval_every: 5\n", {}, "5\n", {"train.eval_every: there is no data.eval"}},
      {"polynomial decay without steps", "", "schedule: {name: polynomial, warmup_steps: 10}\n", {}, "10\nschedule",
       {"train.max_steps: 10 leaves no steps after schedule.warmup_steps 10"}},
      {"layer rejects the config", "num_groups: 4", "num_groups: 3", {}, "{num_channels",
       {"model.config: BitGroupNormActivation: num_channels 8 must be divisible by num_groups 3"}},
      // Required keys.
      {"missing data.train.path", "{type: image_folder, path: TRAIN}", "{type: image_folder}", {}, "{type",
       {"data.train.path: missing; required"}},
      {"missing data section", "data:\n  train: {type: image_folder, path: TRAIN}\n", "", {}, "model:",
       {"data: missing; required"}},
      {"idx without split", "{type: image_folder, path: TRAIN}", "{type: idx, path: IDXDIR}", {}, "{type",
       {"data.train.split: missing; required (train or test)"}},
      // Enums.
      {"architecture typo", "BitForImageClassification", "BitForImageClasification", {}, "BitForImageClasification",
       {"model.architecture: 'BitForImageClasification' is not a registered architecture",
        "(did you mean 'BitForImageClassification'?)"}},
      {"idx classes typo", "{type: image_folder, path: TRAIN}", "{type: idx, path: IDXDIR, split: train, classes: fashionmnist}",
       {}, "fashionmnist", {"data.train.classes: 'fashionmnist' is not one of fashion_mnist or mnist", "did you mean 'fashion_mnist'"}},
      {"unknown metric", "", "checkpoint: {keep_best: eval/accurcy}\n", {}, "eval/accurcy",
       {"checkpoint.keep_best: 'eval/accurcy' is not one of", "did you mean 'eval/accuracy'"}},
      {"eval metric without eval data", "", "early_stopping: {metric: eval/accuracy, patience: 2}\n", {}, "eval/accuracy",
       {"early_stopping.metric: 'eval/accuracy' is measured on data.eval"}},
      // Files.
      {"missing data directory", "path: TRAIN", "path: MISSING", {}, "MISSING", {"data.train.path: directory '", "missing' does not exist"}},
      {"missing idx files", "{type: image_folder, path: TRAIN}", "{type: idx, path: TRAIN, split: test}", {}, "TRAIN",
       {"data.train.path:", "has no t10k-images-idx3-ubyte (nor t10k-images-idx3-ubyte.gz) for split test"}},
      {"missing from_pretrained", "  architecture: BitForImageClassification\n  config: {", "  from_pretrained: MISSING\n  config: {", {},
       "MISSING", {"model.from_pretrained: directory '", "missing' does not exist"}},
      {"missing resume checkpoint", "", "checkpoint: {resume: MISSING}\n", {}, "MISSING",
       {"checkpoint.resume: checkpoint '", "missing' does not exist"}},
      {"missing init_from", "", "checkpoint:\n  init_from: MISSING\n", {}, "MISSING", {"checkpoint.init_from: checkpoint '"}},
      // Model config validation by the family.
      {"model config rejected by BitConfig", "layer_type: preactivation", "layer_type: sideways", {}, "sideways",
       {"model.config: layer_type=sideways is not one of preactivation,bottleneck"}},
      {"architectures in model.config", "num_groups: 4}", "num_groups: 4, architectures: [BitModel]}", {}, "[BitModel]",
       {"model.config.architectures: set model.architecture instead"}},
      // Transforms.
      {"unknown transform", "path: TRAIN}", "path: TRAIN, transforms: [randm_crop: {size: 3}, to_tensor]}", {}, "randm_crop",
       {"data.train.transforms[0]: unknown transform 'randm_crop' (did you mean 'random_crop'?)"}},
      {"normalize before to_tensor", "path: TRAIN}", "path: TRAIN, transforms: [horizontal_flip, normalize: half, to_tensor]}", {},
       "normalize", {"data.train.transforms[1].normalize: normalize works on tensors: put it after to_tensor"}},
      {"flip probability", "path: TRAIN}", "path: TRAIN, transforms: [horizontal_flip: {p: 1.5}, to_tensor]}", {}, "1.5",
       {"data.train.transforms[0].horizontal_flip.p: is a probability in [0, 1], got 1.5"}},
      {"normalize channels", "{type: image_folder, path: TRAIN}",
       "{type: idx, path: IDXDIR, split: train, transforms: [to_tensor, normalize: imagenet]}", {}, "normalize",
       {"data.train.transforms[1].normalize: has 3 means for images of 1 channel"}},
      {"unknown transform option", "path: TRAIN}", "path: TRAIN, transforms: [random_crop: {size: 8, pading: 2}, to_tensor]}",
       {}, "pading", {"unknown key 'data.train.transforms[0].random_crop.pading' (did you mean 'data.train.transforms[0].random_crop.padding'?)"}},
      // Syntax.
      {"invalid YAML", "", "run:\n  name: x\n   bad: indent\n", {}, "cfg.yaml:11:7", {"invalid YAML"}},
      // --set overrides.
      {"override of an unknown key", "", "", {"data.trian.path=x"}, "--set data.trian.path=x",
       {"unknown key 'data.trian' (did you mean 'data.train'?)"}},
      {"override of a wrong type", "", "", {"train.max_steps=abc"}, "--set train.max_steps=abc",
       {"train.max_steps: expected an integer, got 'abc'"}},
      {"override of a model field", "", "", {"model.config.hiden_sizes=[8, 8]"}, "--set model.config.hiden_sizes=[8, 8]",
       {"unknown key 'model.config.hiden_sizes'", "did you mean 'model.config.hidden_sizes'"}},
      {"override creating an incomplete section", "", "", {"data.eval.type=image_folder"}, "--set data.eval.type=image_folder",
       {"data.eval.path: missing; required"}},
      {"override without =", "", "", {"train.max_steps"}, "--set train.max_steps", {"expected KEY.PATH=VALUE"}},
      {"override into a scalar", "", "", {"train.max_steps.x=1"}, "--set train.max_steps.x=1", {"train.max_steps is '10', not a map"}},
  };
  int checked = 0;
  for (Case c : cases) {
    SCOPED_TRACE(c.name);
    std::string yaml = kBase;
    if (c.from.empty()) {
      yaml += c.to;
    } else {
      const size_t pos = yaml.find(c.from);
      ASSERT_NE(pos, std::string::npos) << c.from;
      yaml.replace(pos, c.from.size(), c.to);
    }
    yaml = fill(yaml);
    const std::string at = c.at.rfind("--set", 0) == 0 || c.at.rfind("cfg.yaml", 0) == 0
                               ? c.at
                               : position_of(yaml, fill(c.at), c.at_nth);
    try {
      (void)parse_run_config(yaml, "cfg.yaml", c.overrides);
      ADD_FAILURE() << "no error for:\n" << yaml;
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(at + ": ", 0), 0u) << "expected the place " << at << "\n got: " << what << "\n" << yaml;
      for (const auto& f : c.fragments) EXPECT_NE(what.find(f), std::string::npos) << f << "\n got: " << what;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a ConfigError: " << e.what();
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(cases.size()));
}

TEST_F(RunConfigErrors, MissingModelChoice) {
  const std::string yaml = fill("model:\n  num_labels: 3\ndata:\n  train: {type: image_folder, path: TRAIN}\ntrain: {max_steps: 1}\n");
  try {
    (void)parse_run_config(yaml, "cfg.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cfg.yaml:2:3: model: needs model.architecture", 0), 0u) << e.what();
  }
  // Both is as wrong as neither.
  try {
    (void)parse_run_config(fill(kBase), "cfg.yaml", {"model.from_pretrained=" + path("train")});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--set model.from_pretrained=" + path("train") +
                                         ": model.from_pretrained: give model.architecture or model.from_pretrained, not both"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(RunConfigErrors, WrongBool) {
  try {
    (void)parse_run_config(fill(kBase) + "checkpoint: {resume_strict: yes}\n", "cfg.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    // YAML 1.2: `yes` is a string, so it is not taken for true by accident.
    EXPECT_NE(std::string(e.what()).find("cfg.yaml:9:29: checkpoint.resume_strict: expected true or false, got 'yes'"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(RunConfigErrors, MissingFileAndEmptyConfig) {
  try {
    (void)load_run_config(path("none.yaml"));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("none.yaml: cannot read the run config (no such file)"), std::string::npos) << e.what();
  }
  try {
    (void)parse_run_config("", "cfg.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.yaml: the config is empty"), std::string::npos) << e.what();
  }
}

}  // namespace
