// Run configs: sections, defaults, the model section (built and resolved to
// the family's full config), transforms and datasets. Round trips,
// overrides and model_differences are in test_run_config_round_trip.cpp; bad
// configs in test_run_config_errors.cpp.
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/core/generator.h"
#include "kiln/models/bit.h"
#include "kiln/models/registry.h"
#include "kiln/train/run_config.h"
#include "test_util.h"
#include "train/run_config_fixture.h"

namespace {

using namespace kiln::testing::run_config;

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

}  // namespace
