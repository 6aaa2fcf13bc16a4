#pragma once
// Shared by the run-config test files: a tiny model, field-by-field config
// equality written independently of to_yaml, and a fixture with data dirs.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "kiln/train/run_config.h"
#include "nn/temp_dir.h"

namespace kiln::testing::run_config {

using namespace kiln;
using namespace kiln::train;
namespace fs = std::filesystem;


// A tiny single-channel BiT, quick to build.
inline const char* kTinyModel = R"(model:
  architecture: BitForImageClassification
  config: {num_channels: 1, embedding_size: 8, hidden_sizes: [8, 16], depths: [1, 1], layer_type: preactivation, num_groups: 4}
  num_labels: 10
)";

// ---- field-by-field equality, independent of to_yaml ----

inline void expect_same_transform(const data::TransformSpec& a, const data::TransformSpec& b, const std::string& where) {
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

inline void expect_same_dataset(const DatasetSection& a, const DatasetSection& b, const std::string& where) {
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

inline void expect_same_config(const RunConfig& a, const RunConfig& b) {
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
inline void expect_round_trip(const RunConfig& c) {
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

}  // namespace kiln::testing::run_config
