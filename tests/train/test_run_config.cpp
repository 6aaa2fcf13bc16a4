// Run configs: sections, defaults, transforms, the model section (built and
// resolved to the family's full config), --set overrides, to_yaml round trips
// and model_differences. Bad configs are in test_run_config_errors.cpp.
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/core/generator.h"
#include "kiln/models/bit.h"
#include "kiln/models/registry.h"
#include "kiln/train/run_config.h"
#include "nn/temp_dir.h"
#include "test_util.h"

namespace {

using namespace kiln;
using namespace kiln::train;
namespace fs = std::filesystem;

// A tiny single-channel BiT, quick to build.
const char* kTinyModel = R"(model:
  architecture: BitForImageClassification
  config: {num_channels: 1, embedding_size: 8, hidden_sizes: [8, 16], depths: [1, 1], layer_type: preactivation, num_groups: 4}
  num_labels: 10
)";

// ---- field-by-field equality, independent of to_yaml ----

void expect_same_transform(const data::TransformSpec& a, const data::TransformSpec& b, const std::string& where) {
  ASSERT_EQ(a.index(), b.index()) << where;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        const T& y = std::get<T>(b);
        if constexpr (std::is_same_v<T, data::RandomResizedCropSpec>) {
          EXPECT_EQ(x.height, y.height) << where;
          EXPECT_EQ(x.width, y.width) << where;
          EXPECT_EQ(x.scale_min, y.scale_min) << where;
          EXPECT_EQ(x.scale_max, y.scale_max) << where;
          EXPECT_EQ(x.ratio_min, y.ratio_min) << where;
          EXPECT_EQ(x.ratio_max, y.ratio_max) << where;
          EXPECT_EQ(x.interpolation, y.interpolation) << where;
        } else if constexpr (std::is_same_v<T, data::RandomCropSpec>) {
          EXPECT_EQ(x.height, y.height) << where;
          EXPECT_EQ(x.width, y.width) << where;
          EXPECT_EQ(x.padding, y.padding) << where;
        } else if constexpr (std::is_same_v<T, data::HorizontalFlipSpec>) {
          EXPECT_EQ(x.p, y.p) << where;
        } else if constexpr (std::is_same_v<T, data::ResizeSpec>) {
          EXPECT_EQ(x.shortest_edge, y.shortest_edge) << where;
          EXPECT_EQ(x.height, y.height) << where;
          EXPECT_EQ(x.width, y.width) << where;
          EXPECT_EQ(x.interpolation, y.interpolation) << where;
        } else if constexpr (std::is_same_v<T, data::CenterCropSpec>) {
          EXPECT_EQ(x.height, y.height) << where;
          EXPECT_EQ(x.width, y.width) << where;
        } else if constexpr (std::is_same_v<T, data::NormalizeSpec>) {
          EXPECT_EQ(x.mean, y.mean) << where;
          EXPECT_EQ(x.std, y.std) << where;
        } else if constexpr (std::is_same_v<T, data::ProcessorSpec>) {
          const auto &p = x.config, &q = y.config;
          EXPECT_EQ(p.type, q.type) << where;
          EXPECT_EQ(p.do_resize, q.do_resize) << where;
          EXPECT_EQ(p.size.shortest_edge, q.size.shortest_edge) << where;
          EXPECT_EQ(p.size.height, q.size.height) << where;
          EXPECT_EQ(p.size.width, q.size.width) << where;
          EXPECT_EQ(p.resample, q.resample) << where;
          EXPECT_EQ(p.do_center_crop, q.do_center_crop) << where;
          EXPECT_EQ(p.crop_height, q.crop_height) << where;
          EXPECT_EQ(p.crop_width, q.crop_width) << where;
          EXPECT_EQ(p.do_rescale, q.do_rescale) << where;
          EXPECT_EQ(p.rescale_factor, q.rescale_factor) << where;
          EXPECT_EQ(p.do_normalize, q.do_normalize) << where;
          EXPECT_EQ(p.image_mean, q.image_mean) << where;
          EXPECT_EQ(p.image_std, q.image_std) << where;
          EXPECT_EQ(p.do_convert_rgb, q.do_convert_rgb) << where;
          EXPECT_EQ(p.do_reduce_labels, q.do_reduce_labels) << where;
        }
      },
      a);
}

void expect_same_dataset(const DatasetSection& a, const DatasetSection& b, const std::string& where) {
  EXPECT_EQ(a.type, b.type) << where;
  EXPECT_EQ(a.path, b.path) << where;
  EXPECT_EQ(a.split, b.split) << where;
  EXPECT_EQ(a.classes, b.classes) << where;
  EXPECT_EQ(a.skip_bad_images, b.skip_bad_images) << where;
  EXPECT_EQ(a.limit, b.limit) << where;
  ASSERT_EQ(a.transforms.size(), b.transforms.size()) << where;
  for (size_t i = 0; i < a.transforms.size(); ++i) {
    expect_same_transform(a.transforms[i], b.transforms[i], where + ".transforms[" + std::to_string(i) + "]");
  }
}

void expect_same_config(const RunConfig& a, const RunConfig& b) {
  EXPECT_EQ(a.run.name, b.run.name);
  EXPECT_EQ(a.run.output_dir, b.run.output_dir);
  EXPECT_EQ(a.run.seed, b.run.seed);
  EXPECT_EQ(a.run.device, b.run.device);
  EXPECT_EQ(a.run.threads, b.run.threads);

  EXPECT_EQ(a.model.architecture, b.model.architecture);
  EXPECT_EQ(a.model.config, b.model.config) << a.model.config.dump() << "\nvs\n" << b.model.config.dump();
  EXPECT_EQ(a.model.from_pretrained, b.model.from_pretrained);
  EXPECT_EQ(a.model.num_labels, b.model.num_labels);
  EXPECT_EQ(a.model.ignore_mismatched_sizes, b.model.ignore_mismatched_sizes);

  expect_same_dataset(a.data.train, b.data.train, "data.train");
  ASSERT_EQ(a.data.eval.has_value(), b.data.eval.has_value());
  if (a.data.eval) expect_same_dataset(*a.data.eval, *b.data.eval, "data.eval");
  EXPECT_EQ(a.data.batch_size, b.data.batch_size);
  EXPECT_EQ(a.data.eval_batch_size, b.data.eval_batch_size);
  EXPECT_EQ(a.data.workers, b.data.workers);
  EXPECT_EQ(a.data.prefetch, b.data.prefetch);
  EXPECT_EQ(a.data.shuffle, b.data.shuffle);
  EXPECT_EQ(a.data.drop_last, b.data.drop_last);

  EXPECT_EQ(a.optim.name, b.optim.name);
  EXPECT_EQ(a.optim.lr, b.optim.lr);
  EXPECT_EQ(a.optim.weight_decay, b.optim.weight_decay);
  EXPECT_EQ(a.optim.momentum, b.optim.momentum);
  EXPECT_EQ(a.optim.dampening, b.optim.dampening);
  EXPECT_EQ(a.optim.nesterov, b.optim.nesterov);
  EXPECT_EQ(a.optim.beta1, b.optim.beta1);
  EXPECT_EQ(a.optim.beta2, b.optim.beta2);
  EXPECT_EQ(a.optim.eps, b.optim.eps);
  EXPECT_EQ(a.optim.no_decay_bias_and_norm, b.optim.no_decay_bias_and_norm);

  EXPECT_EQ(a.schedule.name, b.schedule.name);
  EXPECT_EQ(a.schedule.warmup_steps, b.schedule.warmup_steps);
  EXPECT_EQ(a.schedule.warmup_ratio, b.schedule.warmup_ratio);
  EXPECT_EQ(a.schedule.min_lr, b.schedule.min_lr);
  EXPECT_EQ(a.schedule.gamma, b.schedule.gamma);
  EXPECT_EQ(a.schedule.step_size, b.schedule.step_size);
  EXPECT_EQ(a.schedule.milestones, b.schedule.milestones);
  EXPECT_EQ(a.schedule.milestone_fractions, b.schedule.milestone_fractions);
  EXPECT_EQ(a.schedule.power, b.schedule.power);
  EXPECT_EQ(a.schedule.lr_end, b.schedule.lr_end);

  EXPECT_EQ(a.train.max_steps, b.train.max_steps);
  EXPECT_EQ(a.train.epochs, b.train.epochs);
  EXPECT_EQ(a.train.grad_accum, b.train.grad_accum);
  EXPECT_EQ(a.train.clip_norm, b.train.clip_norm);
  EXPECT_EQ(a.train.precision, b.train.precision);
  EXPECT_EQ(a.train.log_every, b.train.log_every);
  EXPECT_EQ(a.train.eval_every, b.train.eval_every);
  EXPECT_EQ(a.train.nan_policy, b.train.nan_policy);
  EXPECT_EQ(a.train.label_smoothing, b.train.label_smoothing);

  EXPECT_EQ(a.checkpoint.every, b.checkpoint.every);
  EXPECT_EQ(a.checkpoint.keep_last, b.checkpoint.keep_last);
  EXPECT_EQ(a.checkpoint.keep_best, b.checkpoint.keep_best);
  EXPECT_EQ(a.checkpoint.best_mode, b.checkpoint.best_mode);
  EXPECT_EQ(a.checkpoint.resume, b.checkpoint.resume);
  EXPECT_EQ(a.checkpoint.resume_strict, b.checkpoint.resume_strict);
  EXPECT_EQ(a.checkpoint.init_from, b.checkpoint.init_from);

  EXPECT_EQ(a.early_stopping.metric, b.early_stopping.metric);
  EXPECT_EQ(a.early_stopping.patience, b.early_stopping.patience);
  EXPECT_EQ(a.early_stopping.mode, b.early_stopping.mode);
  EXPECT_EQ(a.early_stopping.min_delta, b.early_stopping.min_delta);
}

// The config parsed, written, parsed again: the same run, and the same text.
void expect_round_trip(const RunConfig& c) {
  const std::string text = to_yaml(c);
  RunConfig back;
  try {
    back = parse_run_config(text, "resolved.yaml");
  } catch (const kiln::Error& e) {
    FAIL() << e.what() << "\n" << text;
  }
  expect_same_config(c, back);
  EXPECT_EQ(to_yaml(back), text);
}

class RunConfigTest : public kiln::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    train_dir_ = path("train");
    eval_dir_ = path("eval");
    idx_dir_ = path("idx");
    fs::create_directories(train_dir_);
    fs::create_directories(eval_dir_);
    fs::create_directories(idx_dir_);
    // Only their existence is checked here; the dataset reads them later.
    for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte",
                             "t10k-labels-idx1-ubyte"}) {
      write_bytes((fs::path(idx_dir_) / name).string(), "");
    }
  }
  // The tiny model, a train folder, and `rest` appended.
  std::string minimal(const std::string& rest = "train:\n  max_steps: 10\n") const {
    return std::string(kTinyModel) + "data:\n  train: {type: image_folder, path: " + train_dir_ + "}\n" + rest;
  }
  std::string train_dir_, eval_dir_, idx_dir_;
};

TEST_F(RunConfigTest, MinimalConfigGetsDefaults) {
  const RunConfig c = parse_run_config(minimal(), "min.yaml");
  EXPECT_EQ(c.source, "min.yaml");
  EXPECT_EQ(c.run.name, "run");
  EXPECT_EQ(c.run.output_dir, "runs/run");
  EXPECT_EQ(c.run.device, "cpu");
  EXPECT_EQ(c.data.train.type, "image_folder");
  EXPECT_EQ(c.data.train.path, train_dir_);
  EXPECT_FALSE(c.data.eval.has_value());
  EXPECT_EQ(c.data.batch_size, 32);
  EXPECT_EQ(c.data.eval_batch_size, 32);
  ASSERT_EQ(c.data.train.transforms.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<data::ToTensorSpec>(c.data.train.transforms[0]));
  EXPECT_EQ(c.optim.name, "adamw");
  ASSERT_TRUE(c.optim.weight_decay.has_value());
  EXPECT_EQ(*c.optim.weight_decay, 0.01);
  EXPECT_EQ(c.train.max_steps, 10);
  EXPECT_EQ(c.train.epochs, 0);
  EXPECT_EQ(c.checkpoint.resume, "auto");
  EXPECT_EQ(c.checkpoint.best_mode, "max");
  expect_round_trip(c);
}

TEST_F(RunConfigTest, DefaultsFollowOtherKeys) {
  const std::string data = "data:\n  train: {type: image_folder, path: " + train_dir_ + "}\n";
  const RunConfig c = parse_run_config(std::string(kTinyModel) + "run: {name: exp1}\n" + data +
                                           "  batch_size: 8\noptim: {name: sgd, lr: 0.1}\ntrain: {epochs: 2}\n",
                                       "x.yaml");
  EXPECT_EQ(c.run.output_dir, "runs/exp1");
  EXPECT_EQ(c.data.eval_batch_size, 8);
  EXPECT_EQ(*c.optim.weight_decay, 0.0);  // sgd and adam: no decay unless asked
  EXPECT_EQ(c.train.epochs, 2);
  // Explicit values are kept.
  const RunConfig d = parse_run_config(std::string(kTinyModel) + data +
                                           "  eval_batch_size: 5\noptim: {name: adam, weight_decay: 0.3}\n"
                                           "run: {output_dir: out/here}\ntrain: {max_steps: 1}\n",
                                       "y.yaml");
  EXPECT_EQ(d.data.eval_batch_size, 5);
  EXPECT_EQ(*d.optim.weight_decay, 0.3);
  EXPECT_EQ(d.run.output_dir, "out/here");
}

TEST_F(RunConfigTest, BestModeDefaultsToMinForLosses) {
  const RunConfig c = parse_run_config(
      minimal("train: {max_steps: 1}\ncheckpoint: {keep_best: train/loss}\nearly_stopping: {metric: train/loss, patience: 3}\n"),
      "x.yaml");
  EXPECT_EQ(c.checkpoint.best_mode, "min");
  EXPECT_EQ(c.early_stopping.mode, "min");
  EXPECT_EQ(c.early_stopping.patience, 3);
}

TEST_F(RunConfigTest, ModelConfigResolvesToEveryFamilyField) {
  const RunConfig c = parse_run_config(minimal(), "m.yaml");
  EXPECT_EQ(c.model.architecture, "BitForImageClassification");
  EXPECT_EQ(c.model.num_labels, std::optional<int64_t>(10));
  const auto& cfg = c.model.config;
  // The user's fields...
  EXPECT_EQ(cfg["num_channels"], 1);
  EXPECT_EQ(cfg["embedding_size"], 8);
  EXPECT_EQ(cfg["hidden_sizes"], nlohmann::json::array({8, 16}));
  EXPECT_EQ(cfg["depths"], nlohmann::json::array({1, 1}));
  EXPECT_EQ(cfg["num_groups"], 4);
  // ...and BitConfig's defaults for the rest.
  EXPECT_EQ(cfg["hidden_act"], "relu");
  EXPECT_TRUE(cfg["global_padding"].is_null());
  EXPECT_EQ(cfg["drop_path_rate"], 0.0);
  EXPECT_EQ(cfg["embedding_dynamic_padding"], false);
  EXPECT_EQ(cfg["output_stride"], 32);
  EXPECT_EQ(cfg["width_factor"], 1);
  EXPECT_EQ(cfg["out_features"], nlohmann::json::array({"stage2"}));
  EXPECT_EQ(cfg["out_indices"], nlohmann::json::array({2}));
  // Bookkeeping the model section holds elsewhere is not repeated.
  for (const char* key : {"architectures", "model_type", "id2label", "label2id", "num_labels", "stage_names"}) {
    EXPECT_FALSE(cfg.contains(key)) << key;
  }
  // Every field BitConfig writes is there, less the bookkeeping.
  models::BitConfig defaults;
  const nlohmann::json all = defaults.to_json();
  for (const auto& [key, value] : all.items()) {
    if (key == "architectures" || key == "model_type" || key == "id2label" || key == "label2id" || key == "stage_names")
      continue;
    EXPECT_TRUE(cfg.contains(key)) << key;
  }
  expect_round_trip(c);
}

// Unset: the trainer sizes the head from the training set's classes.
TEST_F(RunConfigTest, ModelWithoutNumLabelsLeavesItToTheData) {
  const std::string text = "model:\n  architecture: bit/BitForImageClassification\n  config: {num_channels: 1, "
                           "embedding_size: 8, hidden_sizes: [8], depths: [1], num_groups: 4}\n"
                           "data:\n  train: {type: image_folder, path: " +
                           train_dir_ + "}\ntrain: {max_steps: 1}\n";
  const RunConfig c = parse_run_config(text, "x.yaml");
  EXPECT_EQ(c.model.architecture, "BitForImageClassification");  // the registry's "family/" prefix is dropped
  EXPECT_EQ(c.model.num_labels, std::nullopt);
  expect_round_trip(c);
}

TEST_F(RunConfigTest, CustomLabelsAreKept) {
  const std::string text = "model:\n  architecture: BitForImageClassification\n  config: {num_channels: 1, "
                           "embedding_size: 8, hidden_sizes: [8], depths: [1], num_groups: 4, "
                           "id2label: {'0': cat, '1': dog, '2': 'yes'}}\n"
                           "data:\n  train: {type: image_folder, path: " +
                           train_dir_ + "}\ntrain: {max_steps: 1}\n";
  const RunConfig c = parse_run_config(text, "x.yaml");
  EXPECT_EQ(c.model.num_labels, std::optional<int64_t>(3));
  EXPECT_EQ(c.model.config["id2label"], (nlohmann::json{{"0", "cat"}, {"1", "dog"}, {"2", "yes"}}));
  EXPECT_FALSE(c.model.config.contains("label2id"));
  expect_round_trip(c);
}

TEST_F(RunConfigTest, ParsingLeavesTheGlobalGeneratorAlone) {
  manual_seed(1234);
  default_generator().advance(7);
  (void)parse_run_config(minimal(), "x.yaml");
  EXPECT_EQ(default_generator().seed(), 1234u);
  EXPECT_EQ(default_generator().offset(), 7u);
}

TEST_F(RunConfigTest, TransformsOfEveryKind) {
  const std::string proc_dir = path("proc");
  fs::create_directories(proc_dir);
  write_bytes(proc_dir + "/preprocessor_config.json",
              R"({"image_processor_type": "BitImageProcessor", "size": {"shortest_edge": 40}, "crop_size": 32,
                  "resample": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]})");
  std::string yaml = std::string(kTinyModel) + "data:\n  train:\n    type: image_folder\n    path: " + train_dir_ +
                     R"(
    transforms:
      - random_resized_crop: {size: 24, scale: [0.25, 1], ratio: [0.5, 2.0], interpolation: bicubic}
      - random_crop: {size: [20, 18], padding: 2}
      - horizontal_flip
      - horizontal_flip: {p: 0.25}
      - resize: {size: 30}
      - resize: {size: [22, 26], interpolation: nearest}
      - resize: {height: 21, width: 23}
      - center_crop: {size: 16}
      - center_crop: {size: [12, 14]}
      - to_tensor
      - normalize: imagenet
      - normalize: {mean: [0.1, 0.2, 0.3], std: 0.5}
      - normalize: half
  eval:
    type: image_folder
    path: )" + eval_dir_ +
                     R"(
    transforms:
      - processor: )" + proc_dir +
                     "\ntrain: {max_steps: 3}\n";
  const RunConfig c = parse_run_config(yaml, "t.yaml");
  const auto& t = c.data.train.transforms;
  ASSERT_EQ(t.size(), 13u);
  const auto& rrc = std::get<data::RandomResizedCropSpec>(t[0]);
  EXPECT_EQ(rrc.height, 24);
  EXPECT_EQ(rrc.width, 24);
  EXPECT_EQ(rrc.scale_min, 0.25);
  EXPECT_EQ(rrc.scale_max, 1.0);
  EXPECT_EQ(rrc.ratio_min, 0.5);
  EXPECT_EQ(rrc.ratio_max, 2.0);
  EXPECT_EQ(rrc.interpolation, data::Resample::Bicubic);
  const auto& rc = std::get<data::RandomCropSpec>(t[1]);
  EXPECT_EQ(rc.height, 20);
  EXPECT_EQ(rc.width, 18);
  EXPECT_EQ(rc.padding, 2);
  EXPECT_EQ(std::get<data::HorizontalFlipSpec>(t[2]).p, 0.5);
  EXPECT_EQ(std::get<data::HorizontalFlipSpec>(t[3]).p, 0.25);
  const auto& r1 = std::get<data::ResizeSpec>(t[4]);
  EXPECT_EQ(r1.shortest_edge, 30);
  EXPECT_EQ(r1.interpolation, data::Resample::Bilinear);
  const auto& r2 = std::get<data::ResizeSpec>(t[5]);
  EXPECT_EQ(r2.shortest_edge, 0);
  EXPECT_EQ(r2.height, 22);
  EXPECT_EQ(r2.width, 26);
  EXPECT_EQ(r2.interpolation, data::Resample::Nearest);
  const auto& r3 = std::get<data::ResizeSpec>(t[6]);
  EXPECT_EQ(r3.height, 21);
  EXPECT_EQ(r3.width, 23);
  EXPECT_EQ(std::get<data::CenterCropSpec>(t[7]).height, 16);
  EXPECT_EQ(std::get<data::CenterCropSpec>(t[7]).width, 16);
  EXPECT_EQ(std::get<data::CenterCropSpec>(t[8]).height, 12);
  EXPECT_EQ(std::get<data::CenterCropSpec>(t[8]).width, 14);
  EXPECT_TRUE(std::holds_alternative<data::ToTensorSpec>(t[9]));
  EXPECT_EQ(std::get<data::NormalizeSpec>(t[10]).mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(std::get<data::NormalizeSpec>(t[10]).std, (std::vector<double>{0.229, 0.224, 0.225}));
  EXPECT_EQ(std::get<data::NormalizeSpec>(t[11]).mean, (std::vector<double>{0.1, 0.2, 0.3}));
  EXPECT_EQ(std::get<data::NormalizeSpec>(t[11]).std, (std::vector<double>{0.5}));
  EXPECT_EQ(std::get<data::NormalizeSpec>(t[12]).mean, (std::vector<double>{0.5}));
  EXPECT_EQ(std::get<data::NormalizeSpec>(t[12]).std, (std::vector<double>{0.5}));

  ASSERT_TRUE(c.data.eval.has_value());
  ASSERT_EQ(c.data.eval->transforms.size(), 1u);
  const auto& proc = std::get<data::ProcessorSpec>(c.data.eval->transforms[0]).config;
  EXPECT_EQ(proc.type, data::ImageProcessorType::Bit);
  EXPECT_EQ(proc.size.shortest_edge, 40);
  EXPECT_EQ(proc.crop_height, 32);
  EXPECT_EQ(proc.crop_width, 32);
  EXPECT_EQ(proc.resample, data::Resample::Bilinear);
  EXPECT_EQ(proc.image_std[1], 0.25);
  // The processor is written inline, and reads back the same.
  expect_round_trip(c);
}

TEST_F(RunConfigTest, ProcessorFromAFileAndBeitDefaults) {
  write_bytes(path("beit.json"), R"({"image_processor_type": "BeitImageProcessor", "do_reduce_labels": true})");
  const std::string yaml = std::string(kTinyModel) + "data:\n  train:\n    type: image_folder\n    path: " + train_dir_ +
                           "\n    transforms: [{processor: " + path("beit.json") + "}]\ntrain: {max_steps: 1}\n";
  const RunConfig c = parse_run_config(yaml, "x.yaml");
  const auto& proc = std::get<data::ProcessorSpec>(c.data.train.transforms[0]).config;
  EXPECT_EQ(proc.type, data::ImageProcessorType::Beit);
  EXPECT_EQ(proc.size.height, 256);
  EXPECT_TRUE(proc.do_reduce_labels);
  expect_round_trip(c);
}

TEST_F(RunConfigTest, IdxDatasets) {
  const std::string yaml = std::string(kTinyModel) + "data:\n  train: {type: idx, path: " + idx_dir_ +
                           ", split: train}\n  eval: {type: idx, path: " + idx_dir_ +
                           ", split: test, classes: mnist, limit: 100}\ntrain: {max_steps: 1}\n";
  const RunConfig c = parse_run_config(yaml, "x.yaml");
  EXPECT_EQ(c.data.train.type, "idx");
  EXPECT_EQ(c.data.train.split, "train");
  EXPECT_EQ(c.data.train.classes, "fashion_mnist");
  EXPECT_EQ(c.data.eval->split, "test");
  EXPECT_EQ(c.data.eval->classes, "mnist");
  EXPECT_EQ(c.data.eval->limit, 100);
  expect_round_trip(c);
}

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
