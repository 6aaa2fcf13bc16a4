// NN ops against PyTorch: tests/fixtures/nn/ops_{f64,f32}.safetensors from
// tools/fixtures/nn_ops.py. Every case's arguments come from the file's
// metadata; outputs and the gradients of sum(output * grad_output) must agree
// to rel 1e-10 (f64) and 1e-5 (f32) of each tensor's scale.
#include <gtest/gtest.h>

#include <string>

#include "golden.h"
#include "kiln/kiln.h"

namespace F = kiln::nn::functional;
using kiln::Tensor;
using kiln::testing::golden_close;
using kiln::testing::GoldenFile;
using nlohmann::json;

namespace {

struct Precision {
  const char* file;
  double rel;
};

class GoldenOps : public ::testing::TestWithParam<Precision> {
 protected:
  void SetUp() override { golden_ = std::make_unique<GoldenFile>(std::string("nn/") + GetParam().file); }
  double rel() const { return GetParam().rel; }
  Tensor leaf(const std::string& name) const { return golden_->get(name).requires_grad_(true); }
  Tensor get(const std::string& name) const { return golden_->get(name); }
  bool has(const std::string& name) const { return golden_->has(name); }

  // The cases whose "op" is `op`; at least one must exist, so a renamed op
  // cannot silently test nothing.
  std::vector<std::pair<std::string, json>> cases(const std::string& op) const {
    std::vector<std::pair<std::string, json>> out;
    for (auto& [name, args] : golden_->cases.items())
      if (args.at("op") == op) out.emplace_back(name, args);
    EXPECT_FALSE(out.empty()) << "no '" << op << "' cases in " << GetParam().file;
    return out;
  }

  // Backpropagates sum(out * grad_output) and compares out and each leaf's gradient.
  void check(const std::string& name, const Tensor& out, std::initializer_list<std::pair<const char*, Tensor>> leaves) {
    EXPECT_TRUE(golden_close(out, get(name + ".output"), rel())) << name << ": output";
    (out * get(name + ".grad_output")).sum().backward();
    for (const auto& [what, t] : leaves) {
      if (!t.defined()) continue;
      EXPECT_TRUE(golden_close(t.grad(), get(name + ".grad_" + what), rel())) << name << ": grad of " << what;
    }
  }

  std::unique_ptr<GoldenFile> golden_;
};

std::vector<int64_t> ints(const json& j) { return j.get<std::vector<int64_t>>(); }

TEST_P(GoldenOps, Conv2d) {
  for (auto& [name, a] : cases("conv2d")) {
    SCOPED_TRACE(name);
    Tensor x = leaf(name + ".input"), w = leaf(name + ".weight");
    Tensor b = has(name + ".bias") ? leaf(name + ".bias") : Tensor();
    Tensor y = F::conv2d(x, w, F::Conv2dFuncOptions()
                                    .bias(b)
                                    .stride(ints(a["stride"]))
                                    .padding(ints(a["padding"]))
                                    .dilation(ints(a["dilation"]))
                                    .groups(a["groups"].get<int64_t>()));
    check(name, y, {{"input", x}, {"weight", w}, {"bias", b}});
  }
}

TEST_P(GoldenOps, GroupNorm) {
  for (auto& [name, a] : cases("group_norm")) {
    SCOPED_TRACE(name);
    Tensor x = leaf(name + ".input");
    Tensor w = has(name + ".weight") ? leaf(name + ".weight") : Tensor();
    Tensor b = has(name + ".bias") ? leaf(name + ".bias") : Tensor();
    check(name, F::group_norm(x, a["num_groups"].get<int64_t>(), w, b, a["eps"].get<double>()),
          {{"input", x}, {"weight", w}, {"bias", b}});
  }
}

TEST_P(GoldenOps, LayerNorm) {
  for (auto& [name, a] : cases("layer_norm")) {
    SCOPED_TRACE(name);
    Tensor x = leaf(name + ".input"), w = leaf(name + ".weight"), b = leaf(name + ".bias");
    check(name, F::layer_norm(x, ints(a["normalized_shape"]), w, b, a["eps"].get<double>()),
          {{"input", x}, {"weight", w}, {"bias", b}});
  }
}

TEST_P(GoldenOps, BatchNormTrainAndEval) {
  for (auto& [name, a] : cases("batch_norm")) {
    SCOPED_TRACE(name);
    Tensor x = leaf(name + ".input"), w = leaf(name + ".weight"), b = leaf(name + ".bias");
    Tensor running_mean = get(name + ".running_mean"), running_var = get(name + ".running_var");
    Tensor y = F::batch_norm(x, running_mean, running_var, w, b, a["training"].get<bool>(),
                             a["momentum"].get<double>(), a["eps"].get<double>());
    // output1/output2: the running statistics after the call (updated in place when training).
    EXPECT_TRUE(golden_close(running_mean, get(name + ".output1"), rel())) << "running_mean";
    EXPECT_TRUE(golden_close(running_var, get(name + ".output2"), rel())) << "running_var";
    check(name, y, {{"input", x}, {"weight", w}, {"bias", b}});
  }
}

TEST_P(GoldenOps, MaxPool2dValuesIndicesAndGradient) {
  for (auto& [name, a] : cases("max_pool2d")) {
    SCOPED_TRACE(name);
    Tensor x = leaf(name + ".input");
    auto [y, indices] = F::max_pool2d_with_indices(x, F::MaxPool2dFuncOptions(ints(a["kernel_size"]))
                                                          .stride(ints(a["stride"]))
                                                          .padding(ints(a["padding"]))
                                                          .dilation(ints(a["dilation"]))
                                                          .ceil_mode(a["ceil_mode"].get<bool>()));
    EXPECT_EQ(kiln::testing::values(indices), kiln::testing::values(get(name + ".output1")));
    check(name, y, {{"input", x}});
  }
}

TEST_P(GoldenOps, AvgPool2d) {
  for (auto& [name, a] : cases("avg_pool2d")) {
    SCOPED_TRACE(name);
    Tensor x = leaf(name + ".input");
    auto options = F::AvgPool2dFuncOptions(ints(a["kernel_size"]))
                       .stride(ints(a["stride"]))
                       .padding(ints(a["padding"]))
                       .ceil_mode(a["ceil_mode"].get<bool>())
                       .count_include_pad(a["count_include_pad"].get<bool>());
    if (a.contains("divisor_override")) options.divisor_override(a["divisor_override"].get<int64_t>());
    check(name, F::avg_pool2d(x, options), {{"input", x}});
  }
}

TEST_P(GoldenOps, AdaptiveAvgPool2d) {
  for (auto& [name, a] : cases("adaptive_avg_pool2d")) {
    SCOPED_TRACE(name);
    Tensor x = leaf(name + ".input");
    check(name, F::adaptive_avg_pool2d(x, ints(a["output_size"])), {{"input", x}});
  }
}

TEST_P(GoldenOps, Interpolate) {
  for (auto& [name, a] : cases("interpolate")) {
    SCOPED_TRACE(name);
    Tensor x = leaf(name + ".input");
    F::InterpolateFuncOptions options;
    options.mode(a["mode"] == "bilinear" ? F::InterpolateMode::Bilinear : F::InterpolateMode::Nearest);
    if (a.contains("size")) options.size(ints(a["size"]));
    if (a.contains("scale_factor")) options.scale_factor(a["scale_factor"].get<std::vector<double>>());
    if (a.contains("align_corners")) options.align_corners(a["align_corners"].get<bool>());
    check(name, F::interpolate(x, options), {{"input", x}});
  }
}

TEST_P(GoldenOps, CrossEntropy) {
  for (auto& [name, a] : cases("cross_entropy")) {
    SCOPED_TRACE(name);
    Tensor x = leaf(name + ".input");
    auto options = F::CrossEntropyFuncOptions()
                       .ignore_index(a["ignore_index"].get<int64_t>())
                       .label_smoothing(a["label_smoothing"].get<double>())
                       .reduction(a["reduction"] == "sum" ? F::Reduction::Sum : F::Reduction::Mean);
    if (has(name + ".weight")) options.weight(get(name + ".weight"));
    check(name, F::cross_entropy(x, get(name + ".target"), options), {{"input", x}});
  }
}

TEST_P(GoldenOps, Embedding) {
  for (auto& [name, a] : cases("embedding")) {
    SCOPED_TRACE(name);
    Tensor w = leaf(name + ".weight");
    check(name, F::embedding(get(name + ".indices"), w, a["padding_idx"].get<int64_t>()), {{"weight", w}});
  }
}

INSTANTIATE_TEST_SUITE_P(Torch, GoldenOps,
                         ::testing::Values(Precision{"ops_f64.safetensors", 1e-10}, Precision{"ops_f32.safetensors", 1e-5}),
                         [](const auto& info) { return std::string(info.param.rel < 1e-6 ? "f64" : "f32"); });

}  // namespace
