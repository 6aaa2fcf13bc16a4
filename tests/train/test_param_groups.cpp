// Parameter-group helpers on a fake BEiT-like list of named parameters
// (Hugging Face names, plus timm's for the layer-id rule): weight-decay
// exemptions, BEiT's layer ids and layer-wise lr scales, and the groups
// working with an optimizer and a scheduler.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

using namespace kiln;
using namespace kiln::optim;

namespace {

Tensor param(IntArrayRef sizes, bool trainable = true) {
  Tensor t = native::zeros(sizes);
  if (trainable) t.requires_grad_(true);
  return t;
}

// A two-layer HF BEiT for image classification, in registration order.
NamedParameters beit() {
  return {
      {"beit.embeddings.cls_token", param({1, 1, 8})},
      {"beit.embeddings.mask_token", param({1, 1, 8}, /*trainable=*/false)},
      {"beit.embeddings.patch_embeddings.projection.weight", param({8, 3, 4, 4})},
      {"beit.embeddings.patch_embeddings.projection.bias", param({8})},
      {"beit.encoder.layer.0.lambda_1", param({8})},
      {"beit.encoder.layer.0.attention.attention.query.weight", param({8, 8})},
      {"beit.encoder.layer.0.attention.attention.query.bias", param({8})},
      {"beit.encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table", param({10, 2})},
      {"beit.encoder.layer.0.layernorm_before.weight", param({8})},
      {"beit.encoder.layer.1.attention.attention.query.weight", param({8, 8})},
      {"beit.encoder.layer.1.output.dense.weight", param({8, 8})},
      {"beit.encoder.layer.1.output.dense.bias", param({8})},
      {"beit.pooler.layernorm.weight", param({8})},
      {"classifier.weight", param({5, 8})},
      {"classifier.bias", param({5})},
  };
}

std::vector<std::string> names(const ParamGroup& g) { return g.param_names; }

}  // namespace

TEST(ParamGroups, NoWeightDecayRule) {
  EXPECT_TRUE(no_weight_decay("encoder.layer.0.output.dense.bias", param({4, 4})));  // name wins over shape
  EXPECT_TRUE(no_weight_decay("encoder.layer.0.layernorm.weight", param({4})));     // 1-D
  EXPECT_TRUE(no_weight_decay("scale", param({})));                                   // 0-D
  EXPECT_FALSE(no_weight_decay("encoder.layer.0.output.dense.weight", param({4, 4})));
  EXPECT_FALSE(no_weight_decay("unbias", param({4, 4})));  // not ".bias"
  EXPECT_TRUE(no_weight_decay("embeddings.cls_token", param({1, 1, 4}), {"embeddings.cls_token"}));
}

TEST(ParamGroups, WeightDecayGroups) {
  auto groups = param_groups_weight_decay(beit(), 0.05, {"beit.embeddings.cls_token"});
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].get("weight_decay"), 0.0);
  EXPECT_EQ(groups[1].get("weight_decay"), 0.05);
  EXPECT_EQ(names(groups[0]), (std::vector<std::string>{
                                  "beit.embeddings.cls_token",
                                  "beit.embeddings.patch_embeddings.projection.bias",
                                  "beit.encoder.layer.0.lambda_1",
                                  "beit.encoder.layer.0.attention.attention.query.bias",
                                  "beit.encoder.layer.0.layernorm_before.weight",
                                  "beit.encoder.layer.1.output.dense.bias",
                                  "beit.pooler.layernorm.weight",
                                  "classifier.bias",
                              }));
  EXPECT_EQ(names(groups[1]),
            (std::vector<std::string>{
                "beit.embeddings.patch_embeddings.projection.weight",
                "beit.encoder.layer.0.attention.attention.query.weight",
                "beit.encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table",
                "beit.encoder.layer.1.attention.attention.query.weight",
                "beit.encoder.layer.1.output.dense.weight",
                "classifier.weight",
            }));
  EXPECT_EQ(groups[0].params.size(), groups[0].param_names.size());
  // The frozen mask_token is in neither group.
  for (const auto& g : groups)
    for (const auto& n : g.param_names) EXPECT_NE(n, "beit.embeddings.mask_token");
}

TEST(ParamGroups, WeightDecayGroupsFromOrderedDict) {
  nn::OrderedDict<Tensor> dict;
  dict.insert("w", param({2, 2}));
  dict.insert("b", param({2}));
  auto groups = param_groups_weight_decay(dict, 0.1);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(names(groups[0]), (std::vector<std::string>{"b"}));
  EXPECT_EQ(names(groups[1]), (std::vector<std::string>{"w"}));
  EXPECT_TRUE(groups[1].params[0].is_same(dict["w"]));
  // Only decayed parameters: one group, no empty one.
  nn::OrderedDict<Tensor> only_w;
  only_w.insert("w", param({2, 2}));
  EXPECT_EQ(param_groups_weight_decay(only_w, 0.1).size(), 1u);
}

TEST(ParamGroups, BeitLayerIds) {
  const int64_t L = 12;
  // Hugging Face names.
  EXPECT_EQ(beit_layer_id("beit.embeddings.cls_token", L), 0);
  EXPECT_EQ(beit_layer_id("beit.embeddings.mask_token", L), 0);
  EXPECT_EQ(beit_layer_id("beit.embeddings.position_embeddings", L), 0);
  EXPECT_EQ(beit_layer_id("beit.embeddings.patch_embeddings.projection.weight", L), 0);
  EXPECT_EQ(beit_layer_id("beit.encoder.layer.0.attention.attention.query.weight", L), 1);
  EXPECT_EQ(beit_layer_id("beit.encoder.layer.11.output.dense.bias", L), 12);
  EXPECT_EQ(beit_layer_id("beit.encoder.relative_position_bias.relative_position_bias_table", L), L + 1);
  EXPECT_EQ(beit_layer_id("beit.pooler.layernorm.weight", L), L + 1);
  EXPECT_EQ(beit_layer_id("classifier.weight", L), L + 1);
  EXPECT_EQ(beit_layer_id("lm_head.weight", L), L + 1);
  // timm / original BEiT names.
  EXPECT_EQ(beit_layer_id("cls_token", L), 0);
  EXPECT_EQ(beit_layer_id("pos_embed", L), 0);
  EXPECT_EQ(beit_layer_id("patch_embed.proj.weight", L), 0);
  EXPECT_EQ(beit_layer_id("blocks.3.attn.qkv.weight", L), 4);
  EXPECT_EQ(beit_layer_id("rel_pos_bias.relative_position_bias_table", L), L + 1);
  EXPECT_EQ(beit_layer_id("head.weight", L), L + 1);
  // "layer" needs an index after it.
  EXPECT_EQ(beit_layer_id("encoder.layer.norm.weight", L), L + 1);
}

TEST(ParamGroups, LayerDecayGroups) {
  const int64_t L = 2;
  const double decay = 0.65, wd = 0.05;
  auto groups = param_groups_layer_decay(beit(), wd, L, decay, {"beit.embeddings.cls_token"});
  // Groups in first-appearance order of (layer id, decay?).
  struct Expect {
    int64_t layer;
    bool decay;
    std::vector<std::string> names;
  };
  const std::vector<Expect> expected = {
      {0, false, {"beit.embeddings.cls_token", "beit.embeddings.patch_embeddings.projection.bias"}},
      {0, true, {"beit.embeddings.patch_embeddings.projection.weight"}},
      {1, false,
       {"beit.encoder.layer.0.lambda_1", "beit.encoder.layer.0.attention.attention.query.bias",
        "beit.encoder.layer.0.layernorm_before.weight"}},
      {1, true,
       {"beit.encoder.layer.0.attention.attention.query.weight",
        "beit.encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table"}},
      {2, true, {"beit.encoder.layer.1.attention.attention.query.weight", "beit.encoder.layer.1.output.dense.weight"}},
      {2, false, {"beit.encoder.layer.1.output.dense.bias"}},
      {3, false, {"beit.pooler.layernorm.weight", "classifier.bias"}},
      {3, true, {"classifier.weight"}},
  };
  ASSERT_EQ(groups.size(), expected.size());
  for (size_t k = 0; k < groups.size(); ++k) {
    const auto& e = expected[k];
    EXPECT_EQ(names(groups[k]), e.names) << "group " << k;
    EXPECT_EQ(groups[k].get("weight_decay"), e.decay ? wd : 0.0) << "group " << k;
    // BEiT: scale = decay ** (num_layers + 1 - layer_id); the head gets 1.
    EXPECT_DOUBLE_EQ(groups[k].get("lr_scale"), std::pow(decay, static_cast<double>(L + 1 - e.layer)))
        << "group " << k;
  }
  EXPECT_EQ(groups.back().get("lr_scale"), 1.0);
}

TEST(ParamGroups, LayerDecayWithCustomLayerIds) {
  NamedParameters ps = {{"a.weight", param({2, 2})}, {"b.weight", param({2, 2})}};
  auto by_letter = [](const std::string& name, int64_t) -> int64_t { return name[0] == 'a' ? 0 : 1; };
  auto groups = param_groups_layer_decay(ps, 0.0, 0, 0.5, {}, by_letter);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].get("lr_scale"), 0.5);
  EXPECT_EQ(groups[1].get("lr_scale"), 1.0);
  auto out_of_range = [](const std::string&, int64_t) -> int64_t { return 5; };
  EXPECT_KILN_ERROR(param_groups_layer_decay(ps, 0.0, 2, 0.5, {}, out_of_range),
                    "layer id 5 of 'a.weight' is outside [0, 3]");
  EXPECT_KILN_ERROR(param_groups_layer_decay(ps, 0.0, 2, 0.0), "layer_decay must be positive");
}

TEST(ParamGroups, LayerDecayDrivesTheScheduledLr) {
  auto groups = param_groups_layer_decay(beit(), 0.05, 2, 0.5, {"beit.embeddings.cls_token"});
  AdamW opt(groups, {.lr = 1e-3});
  ConstantWithWarmupLR sched(opt, 0);
  for (const auto& g : opt.param_groups()) EXPECT_DOUBLE_EQ(g.lr(), 1e-3 * g.get("lr_scale"));
  EXPECT_EQ(opt.param_groups().front().lr(), 1e-3 * 0.125);  // embeddings: 0.5^3
  EXPECT_EQ(opt.param_groups().back().lr(), 1e-3);            // head
  // The groups' weight decay is what the optimizer uses.
  EXPECT_EQ(opt.param_groups()[0].get("weight_decay"), 0.0);
  EXPECT_EQ(opt.param_groups()[1].get("weight_decay"), 0.05);
}
