// BiT's building blocks against their definitions (independent float64
// references), HF's construction rules (make_div, stride/dilation schedule,
// drop-path rates, parameter names and counts), and gradcheck of a whole
// small model.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/gradcheck_util.h"
#include "conv_reference.h"
#include "kiln/kiln.h"
#include "test_util.h"

namespace kiln::models {
namespace {

using kiln::testing::values;

BitConfig tiny_config(const std::string& layer_type = "preactivation") {
  BitConfig c;
  c.layer_type = layer_type;
  c.embedding_size = 8;
  c.hidden_sizes = {16, 32};
  c.depths = {1, 2};
  c.num_groups = 2;
  c.set_num_labels(3);
  c.validate();
  return c;
}

TEST(BitMakeDiv, MatchesHuggingFace) {
  // (value, HF's make_div(value)) computed with transformers 4.37.2.
  const std::pair<double, int64_t> cases[] = {{3, 8},   {10, 16},  {12, 16}, {20, 24},    {64, 64},
                                              {100, 104}, {36, 40}, {44, 48}, {1000, 1000}};
  for (auto [v, expected] : cases) EXPECT_EQ(bit_make_div(v), expected) << v;
}

TEST(BitDynamicPad, PadsForCeilOutputsWithTheOddPixelLast) {
  DynamicPad2d pad(3, 2, 1);
  // 29 -> 15 outputs need 2*14 + 3 = 31: one each side; 30 -> 31: 0 + 1.
  Tensor x = randn({1, 2, 29, 30}, TensorOptions().dtype(kFloat64));
  Tensor y = pad->forward(x);
  ASSERT_EQ(y.sizes(), IntArrayRef({1, 2, 31, 31}));
  auto xv = values(x), yv = values(y);
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < 31; ++i)
      for (int64_t j = 0; j < 31; ++j) {
        const int64_t si = i - 1, sj = j;  // top pad 1, left pad 0
        const double expected = (si >= 0 && si < 29 && sj < 30) ? xv[(c * 29 + si) * 30 + sj] : 0.0;
        EXPECT_EQ(yv[(c * 31 + i) * 31 + j], expected);
      }
  // Nothing to pad: the input comes back as is.
  DynamicPad2d none(1, 1, 1);
  EXPECT_TRUE(none->forward(x).is_same(x));
}

TEST(BitWeightStandardizedConv, StandardisesPerOutputChannel) {
  manual_seed(3);
  WeightStandardizedConv2d conv(4, 6, 3, 1, std::nullopt, 1, 2, false, 1e-6);
  conv->to(kFloat64);
  {
    NoGradGuard g;
    conv->weight.mul_(3.0).add_(0.5);
  }
  auto w = values(conv->weight);
  auto ws = values(conv->standardized_weight());
  const int64_t fan = 2 * 3 * 3;
  for (int64_t o = 0; o < 6; ++o) {
    double mean = 0, var = 0;
    for (int64_t k = 0; k < fan; ++k) mean += w[o * fan + k];
    mean /= fan;
    for (int64_t k = 0; k < fan; ++k) var += (w[o * fan + k] - mean) * (w[o * fan + k] - mean);
    var /= fan;  // biased, as batch_norm
    for (int64_t k = 0; k < fan; ++k)
      EXPECT_NEAR(ws[o * fan + k], (w[o * fan + k] - mean) / std::sqrt(var + 1e-6), 1e-12);
  }
  // The forward is a plain convolution with that weight (symmetric padding 1 when unset).
  Tensor x = randn({2, 4, 7, 5}, TensorOptions().dtype(kFloat64));
  kiln::testing::ConvSpec spec;
  spec.padding[0] = spec.padding[1] = 1;
  spec.groups = 2;
  auto ref = kiln::testing::conv_reference(values(x), x.sizes(), ws, conv->weight.sizes(), {}, {}, spec);
  EXPECT_TRUE(kiln::testing::all_close(conv->forward(x), kiln::testing::make({2, 6, 7, 5}, ref.y), 1e-10, 1e-10));
}

TEST(BitWeightStandardizedConv, PaddingModesFollowHF) {
  // Unset: symmetric ((s-1) + d(k-1)) / 2; SAME: static when stride 1 and an
  // odd window, otherwise dynamic; VALID: none.
  WeightStandardizedConv2d sym(2, 2, 3, 2, std::nullopt);
  EXPECT_EQ(sym->static_padding, 1);
  EXPECT_FALSE(sym->pad);
  WeightStandardizedConv2d same1(2, 2, 3, 1, std::string("SAME"));
  EXPECT_EQ(same1->static_padding, 1);
  EXPECT_FALSE(same1->pad);
  WeightStandardizedConv2d same2(2, 2, 3, 2, std::string("SAME"));
  EXPECT_EQ(same2->static_padding, 0);
  ASSERT_TRUE(same2->pad);
  WeightStandardizedConv2d valid(2, 2, 3, 1, std::string("VALID"));
  EXPECT_EQ(valid->static_padding, 0);
  Tensor x = randn({1, 2, 9, 8});
  EXPECT_EQ(sym->forward(x).sizes(), IntArrayRef({1, 2, 5, 4}));    // floor((9+2-3)/2)+1
  EXPECT_EQ(same2->forward(x).sizes(), IntArrayRef({1, 2, 5, 4}));  // ceil(9/2), ceil(8/2)
  EXPECT_EQ(valid->forward(x).sizes(), IntArrayRef({1, 2, 7, 6}));
  // The dynamic pad holds nothing: the weights are the only state.
  EXPECT_EQ(same2->state_dict().size(), 1u);
}

TEST(BitGroupNormActivation, IsGroupNormThenTheConfiguredActivation) {
  BitConfig c = tiny_config();
  c.hidden_act = "gelu";
  BitGroupNormActivation with(c, 4), without(c, 4, 1e-5, true, false);
  Tensor x = randn({2, 4, 3, 3});
  Tensor gn = nn::functional::group_norm(x, 2, with->weight, with->bias, 1e-5);
  EXPECT_TRUE(kiln::testing::all_close(with->forward(x), gelu(gn), 0, 0));
  EXPECT_TRUE(kiln::testing::all_close(without->forward(x), gn, 0, 0));
  EXPECT_KILN_ERROR(BitGroupNormActivation(c, 5), "divisible by num_groups");
  c.hidden_act = "no_such_act";
  EXPECT_KILN_ERROR(BitGroupNormActivation(c, 4), "unknown activation");
}

// Walks a model's blocks: (stride, dilation) of each conv2.
std::vector<std::pair<int64_t, int64_t>> conv2_geometry(BitModelImpl& model) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& item : model.named_modules()) {
    if (item.key.size() > 6 && item.key.substr(item.key.size() - 6) == ".conv2") {
      auto* conv = item.value->as<WeightStandardizedConv2d>();
      out.emplace_back(conv->stride, conv->dilation);
    }
  }
  return out;
}

TEST(BitEncoder, OutputStrideTurnsStridesIntoDilation) {
  BitConfig c = tiny_config("bottleneck");
  c.hidden_sizes = {16, 16, 16, 16};
  c.depths = {1, 1, 2, 2};
  c.output_stride = 8;
  c.validate();
  BitModel bottleneck(c);
  // Stage 1 stride 1; stage 2 stride 2 (reaching 8); stages 3 and 4 dilate
  // by 2 and 4, their first block entering at 1 and 2 (HF's first_dilation).
  using P = std::pair<int64_t, int64_t>;
  EXPECT_EQ(conv2_geometry(*bottleneck), (std::vector<P>{{1, 1}, {2, 1}, {1, 1}, {1, 2}, {1, 2}, {1, 4}}));
  // HF quirk kept: pre-activation blocks never dilate.
  c.layer_type = "preactivation";
  BitModel preact(c);
  EXPECT_EQ(conv2_geometry(*preact), (std::vector<P>{{1, 1}, {2, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}}));
  Tensor x = randn({1, 3, 64, 64});
  EXPECT_EQ(bottleneck->forward(x).last_hidden_state.sizes(), IntArrayRef({1, 16, 8, 8}));
  c.output_stride = 32;
  BitModel full(c);
  EXPECT_EQ(full->forward(x).last_hidden_state.sizes(), IntArrayRef({1, 16, 2, 2}));
}

TEST(BitEncoder, DropPathRatesRiseLinearlyInFloat32) {
  BitConfig c = tiny_config();
  c.depths = {1, 3};
  c.drop_path_rate = 0.1;
  BitModel model(c);
  std::vector<double> rates;
  for (const auto& item : model->named_modules()) {
    if (auto* layer = item.value->as<BitPreActivationBottleneckLayer>()) rates.push_back(layer->drop_path_rate);
  }
  // torch.Tensor(np.linspace(0, 0.1, 4)).tolist() in HF.
  const std::vector<double> expected{0.0, 0.03333333507180214, 0.06666667014360428, 0.10000000149011612};
  ASSERT_EQ(rates.size(), expected.size());
  for (size_t i = 0; i < rates.size(); ++i) EXPECT_DOUBLE_EQ(rates[i], expected[i]);
}

TEST(BitModels, ParameterNamesAndCountsAreHF) {
  BitConfig r50;  // HF defaults: ResNetV2-50
  r50.set_num_labels(1000);
  BitForImageClassification model(r50);
  // sum(p.numel() for p in BitForImageClassification(BitConfig(num_labels=1000)).parameters())
  EXPECT_EQ(model->num_parameters(), 25549352);
  const auto names = model->state_dict();
  for (const char* key : {"bit.embedder.convolution.weight", "bit.encoder.stages.0.layers.0.downsample.conv.weight",
                          "bit.encoder.stages.3.layers.2.conv3.weight", "bit.encoder.stages.1.layers.0.norm1.bias",
                          "bit.norm.weight", "classifier.1.weight", "classifier.1.bias"}) {
    EXPECT_TRUE(names.contains(key)) << key;
  }
  EXPECT_FALSE(names.contains("bit.embedder.norm.weight"));  // pre-activation stem has no norm

  BitConfig wide = tiny_config("bottleneck");
  wide.width_factor = 2;
  BitModel bottleneck(wide);
  // BitModel(BitConfig(layer_type='bottleneck', width_factor=2, hidden_sizes=[16,32],
  //                    depths=[1,1], embedding_size=8, num_groups=2))
  wide.depths = {1, 1};
  BitModel same_as_hf(wide);
  EXPECT_EQ(same_as_hf->num_parameters(), 8712);
  EXPECT_TRUE(same_as_hf->state_dict().contains("embedder.norm.weight"));
  EXPECT_FALSE(same_as_hf->state_dict().contains("norm.weight"));
}

TEST(BitModels, WidthFactorWithAPreActivationNormFailsClearly) {
  // HF quirk kept: the final norm is sized hidden_sizes[-1].
  BitConfig c = tiny_config();
  c.width_factor = 2;
  BitModel model(c);
  EXPECT_KILN_ERROR(model->forward(randn({1, 3, 32, 32})), "hidden_sizes[-1]");
}

TEST(BitModels, WrongChannelCountNamesTheShape) {
  BitModel model(tiny_config());
  EXPECT_KILN_ERROR(model->forward(randn({1, 1, 32, 32})), "num_channels");
}

TEST(BitModels, DropPathIsStochasticInTrainingOnly) {
  BitConfig c = tiny_config();
  c.drop_path_rate = 0.5;
  BitModel model(c);
  Tensor x = randn({4, 3, 32, 32});
  model->eval();
  Tensor e1 = model->forward(x).last_hidden_state, e2 = model->forward(x).last_hidden_state;
  EXPECT_TRUE(kiln::testing::all_close(e1, e2, 0, 0));
  model->train();
  manual_seed(1);
  Tensor t1 = model->forward(x).last_hidden_state;
  manual_seed(2);
  Tensor t2 = model->forward(x).last_hidden_state;
  EXPECT_FALSE(kiln::testing::all_close(t1, t2, 1e-6, 1e-6));
  manual_seed(1);
  EXPECT_TRUE(kiln::testing::all_close(model->forward(x).last_hidden_state, t1, 0, 0));  // seeded: reproducible
}

TEST(BitGradcheck, WholeClassifierInFloat64) {
  for (const char* layer_type : {"preactivation", "bottleneck"}) {
    BitConfig c = tiny_config(layer_type);
    c.global_padding = "SAME";
    c.embedding_dynamic_padding = true;
    c.hidden_sizes = {8, 16};
    c.depths = {1, 1};
    c.num_channels = 1;  // keeps the stem's weight (and the numerical Jacobian) small
    manual_seed(7);
    BitForImageClassification model(c);
    model->to(kFloat64);
    {
      // Away from 1/0 so the norms' affine parameters matter in the check.
      NoGradGuard g;
      for (auto& p : model->parameters())
        if (p.dim() == 1) p.add_(mul(randn(p.sizes(), TensorOptions().dtype(kFloat64)), 0.2));
    }
    Tensor x = randn({2, 1, 11, 9}, TensorOptions().dtype(kFloat64)).requires_grad_(true);
    Tensor gn_weight = model->get_parameter("bit.encoder.stages.1.layers.0.norm2.weight");
    Tensor head = model->get_parameter("classifier.1.weight");
    Tensor stem = model->get_parameter("bit.embedder.convolution.weight");
    auto fn = [&](const autograd::variable_list& in) { return model->forward(in[0]).logits; };
    EXPECT_GRADCHECK(fn, {x, gn_weight, head}) << layer_type;
    // The stem conv through weight standardisation.
    auto fn_stem = [&](const autograd::variable_list&) { return model->forward(x).logits; };
    EXPECT_GRADCHECK(fn_stem, {stem}) << layer_type;
  }
}

}  // namespace
}  // namespace kiln::models
