// The fine-tuning path a user takes with a downloaded BiT: a directory in
// HF's layout (written here by save_pretrained), loaded with a new head of a
// different size, trained with AdamW; and save_pretrained/from_pretrained
// round trips.
#include <gtest/gtest.h>

#include "kiln/kiln.h"
#include "nn/temp_dir.h"
#include "test_util.h"

namespace kiln::models {
namespace {

class BitFinetune : public kiln::testing::TempDirTest {};

BitConfig small_config() {
  BitConfig c;
  c.embedding_size = 8;
  c.hidden_sizes = {16, 32};
  c.depths = {1, 1};
  c.num_groups = 4;
  c.global_padding = "SAME";
  c.embedding_dynamic_padding = true;
  c.set_num_labels(5);
  c.validate();
  return c;
}

// Two classes told apart by where the bright square is (top-left vs
// bottom-right), with noise.
std::pair<Tensor, Tensor> synthetic_batch(int64_t n, uint64_t seed) {
  manual_seed(seed);
  Tensor x = mul(randn({n, 3, 24, 24}), 0.3);
  Tensor y = randint(0, 2, {n});
  auto labels = kiln::testing::values(y);
  NoGradGuard g;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t at = labels[i] == 0 ? 2 : 14;
    x.select(0, i).slice(1, at, at + 8).slice(2, at, at + 8).add_(1.5);
  }
  return {x, y};
}

TEST_F(BitFinetune, NewHeadLoadsAndTrains) {
  manual_seed(0);
  auto pretrained = std::make_shared<BitForImageClassificationImpl>(small_config());
  save_pretrained(*pretrained, path("bit-small"));

  // Strict load with a 2-label head fails, naming the head's shapes...
  EXPECT_KILN_ERROR(from_pretrained<BitForImageClassificationImpl>(path("bit-small"), {.num_labels = 2}),
                    "classifier.1.weight");
  // ...and with ignore_mismatched_sizes the body loads and the head is new.
  auto model = from_pretrained<BitForImageClassificationImpl>(
      path("bit-small"), {.num_labels = 2, .ignore_mismatched_sizes = true});
  EXPECT_EQ(model->config.num_labels(), 2);
  EXPECT_FALSE(model->is_training());  // from_pretrained returns eval mode, as HF
  for (const auto& item : pretrained->state_dict()) {
    if (item.key.rfind("classifier", 0) == 0) continue;
    EXPECT_TRUE(kiln::testing::all_close(model->state_dict().at(item.key), item.value, 0, 0)) << item.key;
  }
  EXPECT_EQ(model->classifier->ptr<nn::LinearImpl>(1)->weight.sizes(), IntArrayRef({2, 32}));

  model->train();
  optim::AdamW optimizer(model->parameters(), {.lr = 3e-3, .weight_decay = 0.0});
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    auto [x, y] = synthetic_batch(16, 100 + step);
    auto out = model->forward(x, y);
    if (step == 0) first = out.loss.item<double>();
    last = out.loss.item<double>();
    optimizer.zero_grad();
    out.loss.backward();
    optimizer.step();
  }
  EXPECT_EQ(model->config.problem_type, "single_label_classification");  // inferred from int64 labels
  model->eval();
  auto [x, y] = synthetic_batch(64, 999);
  NoGradGuard g;
  Tensor predicted = argmax(model->forward(x).logits, 1);
  const double accuracy = mean(eq(predicted, y).to(kFloat32)).item<double>();
  EXPECT_LT(last, first * 0.5) << "first loss " << first << ", last " << last;
  EXPECT_GE(accuracy, 0.9);

  // What it learnt survives save_pretrained -> from_pretrained bit for bit.
  save_pretrained(*model, path("finetuned"));
  auto reloaded = from_pretrained(path("finetuned"));
  EXPECT_EQ(reloaded->architecture(), "BitForImageClassification");
  EXPECT_TRUE(kiln::testing::all_close(reloaded->forward(ModelInputs{.pixel_values = x}).logits,
                                       model->forward(x).logits, 0, 0));
}

TEST_F(BitFinetune, BareAndHeadCheckpointsLoadIntoEachOther) {
  manual_seed(1);
  auto head = std::make_shared<BitForImageClassificationImpl>(small_config());
  save_pretrained(*head, path("head"));
  // A head's checkpoint into the bare model: "bit." is stripped, the head unused.
  auto bare = from_pretrained<BitModelImpl>(path("head"));
  EXPECT_TRUE(kiln::testing::all_close(bare->get_parameter("embedder.convolution.weight"),
                                       head->get_parameter("bit.embedder.convolution.weight"), 0, 0));
  // A bare checkpoint into a head: "bit." is added, the head is new.
  save_pretrained(*bare, path("bare"));
  auto again = from_pretrained<BitForImageClassificationImpl>(path("bare"));
  EXPECT_TRUE(kiln::testing::all_close(again->get_parameter("bit.encoder.stages.1.layers.0.conv2.weight"),
                                       head->get_parameter("bit.encoder.stages.1.layers.0.conv2.weight"), 0, 0));
  // A backbone from the same checkpoint gives the stage outputs.
  auto backbone = from_pretrained<BitBackboneImpl>(path("head"));
  Tensor x = randn({1, 3, 32, 32});
  NoGradGuard g;
  auto features = backbone->forward(x).feature_maps;
  ASSERT_EQ(features.size(), 1u);  // out_features defaults to the last stage
  EXPECT_EQ(features[0].sizes(), IntArrayRef({1, 32, 4, 4}));  // 32 / 2 (stem) / 2 (pool) / 2 (stage 2)
}

}  // namespace
}  // namespace kiln::models
