// BiT against Hugging Face transformers 4.37.2: every directory under
// tests/fixtures/bit/ (written by tools/fixtures/bit.py) is a model HF saved
// (config.json + model.safetensors) and golden.safetensors with HF's inputs,
// outputs and gradients. Each case loads only through the public
// from_pretrained, runs in the mode HF ran, and must agree with HF to rel 1e-5
// (outputs) and rel 1e-4 (input and every parameter gradient of the case's
// scalar objective) of each tensor's scale, in f32 on CPU (and on CUDA when a
// CUDA backend is present).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "golden.h"
#include "models/bit_fixtures.h"
#include "kiln/kiln.h"

namespace fs = std::filesystem;
namespace km = kiln::models;
using kiln::Tensor;
using kiln::testing::golden_close;
using kiln::testing::GoldenFile;
using nlohmann::json;

namespace {

constexpr double kOutputRel = 1e-5;
constexpr double kGradRel = 1e-4;

std::vector<std::string> discover_cases() { return kiln::testing::bit::case_names("golden.safetensors"); }

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// tools/fixtures/bit.py's probe: exact integer arithmetic, one division and
// one subtraction in double, then rounding to f32, so it is the same tensor
// Python multiplied with.
Tensor probe(kiln::IntArrayRef sizes, int64_t k) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<double>((i * 7919 + k * 104729) % 2003) / 1001.5 - 1.0;
  return kiln::testing::make(sizes, v, kiln::kFloat32);
}

// A returned tensor by the name golden files give it; undefined when absent.
Tensor pick(const km::ModelOutput& out, const std::string& name) {
  auto indexed = [&](const std::vector<Tensor>& v, const std::string& prefix) {
    const size_t i = std::stoul(name.substr(prefix.size()));
    return i < v.size() ? v[i] : Tensor();
  };
  if (name == "loss") return out.loss;
  if (name == "logits") return out.logits;
  if (name == "last_hidden_state") return out.last_hidden_state;
  if (name == "pooler_output") return out.pooler_output;
  if (starts_with(name, "hidden_states.")) return indexed(out.hidden_states, "hidden_states.");
  if (starts_with(name, "feature_maps.")) return indexed(out.feature_maps, "feature_maps.");
  ADD_FAILURE() << "unknown output name " << name;
  return Tensor();
}

std::optional<std::string> optional_string(const json& j) {
  if (j.is_null()) return std::nullopt;
  return j.get<std::string>();
}

std::shared_ptr<km::PreTrainedModel> load_typed(const fs::path& dir, const std::string& architecture) {
  if (architecture == km::BitModelImpl::kArchitecture) return km::from_pretrained<km::BitModelImpl>(dir);
  if (architecture == km::BitForImageClassificationImpl::kArchitecture)
    return km::from_pretrained<km::BitForImageClassificationImpl>(dir);
  if (architecture == km::BitBackboneImpl::kArchitecture) return km::from_pretrained<km::BitBackboneImpl>(dir);
  ADD_FAILURE() << "no typed loader for " << architecture;
  return nullptr;
}

km::ModelOutput typed_forward(km::PreTrainedModel& model, const Tensor& pixel_values, const Tensor& labels,
                              std::optional<bool> output_hidden_states) {
  if (auto* m = dynamic_cast<km::BitForImageClassificationImpl*>(&model))
    return m->forward(pixel_values, labels, output_hidden_states);
  if (auto* m = dynamic_cast<km::BitBackboneImpl*>(&model)) return m->forward(pixel_values, output_hidden_states);
  if (auto* m = dynamic_cast<km::BitModelImpl*>(&model)) return m->forward(pixel_values, output_hidden_states);
  ADD_FAILURE() << "typed_forward: not a BiT model: " << model.architecture();
  return {};
}

enum class Path { Generic, Typed };

class BitGolden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    golden_ = std::make_unique<GoldenFile>("bit/" + name() + "/golden.safetensors");
    meta_ = golden_->cases.at(name());
  }
  const std::string& name() const { return GetParam(); }
  fs::path dir() const { return kiln::testing::fixture_path("bit/" + name()); }
  const json& meta() const { return meta_; }
  Tensor get(const std::string& key) const { return golden_->get(key); }
  bool has(const std::string& key) const { return golden_->has(key); }

  std::shared_ptr<km::PreTrainedModel> load(Path path) const {
    auto model = path == Path::Typed ? load_typed(dir(), meta_.at("architecture")) : km::from_pretrained(dir());
    if (!model) return model;
    EXPECT_EQ(model->architecture(), meta_.at("architecture").get<std::string>());
    EXPECT_FALSE(model->is_training()) << "from_pretrained returns the model in eval mode, as HF";
    EXPECT_EQ(model->pretrained_config().problem_type, optional_string(meta_.at("problem_type_before")))
        << "problem_type as config.json holds it";
    return model;
  }

  km::ModelOutput forward(Path path, km::PreTrainedModel& model, const Tensor& x, const Tensor& labels,
                          std::optional<bool> output_hidden_states) const {
    if (path == Path::Typed) return typed_forward(model, x, labels, output_hidden_states);
    km::ModelInputs in;
    in.pixel_values = x;
    in.labels = labels;
    in.output_hidden_states = output_hidden_states;
    return model.forward(in);
  }

  // Every output HF returned, and nothing more.
  void expect_outputs(const km::ModelOutput& out, const std::string& prefix = "") const {
    size_t hidden = 0, features = 0;
    for (const auto& key : meta_.at("outputs")) {
      const std::string k = key.get<std::string>();
      if (!starts_with(k, prefix) || k == "pixel_values" || k == "labels") continue;
      const std::string field = k.substr(prefix.size());
      hidden += starts_with(field, "hidden_states.");
      features += starts_with(field, "feature_maps.");
      EXPECT_TRUE(golden_close(pick(out, field), get(k), kOutputRel)) << name() << ": " << field;
    }
    EXPECT_EQ(out.hidden_states.size(), hidden) << "hidden_states count";
    EXPECT_EQ(out.feature_maps.size(), features) << "feature_maps count";
    for (const char* field : {"loss", "logits", "last_hidden_state", "pooler_output"}) {
      if (!has(prefix + field)) {
        EXPECT_FALSE(pick(out, field).defined()) << field << " returned but HF has none";
      }
    }
  }

  // The gradient of every parameter (and of the input) against HF's; those
  // HF left without a gradient must have none (or a zero one) here.
  void expect_gradients(const km::PreTrainedModel& model, const Tensor& x) const {
    ASSERT_TRUE(x.grad().defined()) << "no gradient reached pixel_values";
    EXPECT_TRUE(golden_close(x.grad(), get("grad.pixel_values"), kGradRel)) << name() << ": grad of pixel_values";
    std::vector<std::string> without;
    for (const auto& p : meta_.at("params_without_grad")) without.push_back(p.get<std::string>());
    size_t compared = 0;
    for (const auto& item : model.named_parameters()) {
      SCOPED_TRACE(item.key);
      const Tensor& grad = item.value.grad();
      if (has("grad." + item.key)) {
        ASSERT_TRUE(grad.defined()) << "no gradient for " << item.key;
        EXPECT_TRUE(golden_close(grad, get("grad." + item.key), kGradRel)) << name() << ": grad of " << item.key;
        ++compared;
      } else {
        EXPECT_NE(std::find(without.begin(), without.end(), item.key), without.end())
            << item.key << " is not a parameter of HF's model";
        if (grad.defined()) {
          for (double v : kiln::testing::values(grad)) ASSERT_EQ(v, 0.0) << item.key << " has a gradient, HF none";
        }
      }
    }
    // Every HF gradient was matched by name: no parameter is missing or renamed.
    size_t golden_grads = 0;
    for (const auto& n : golden_->file.names())
      golden_grads += starts_with(n, "grad.") && n != "grad.pixel_values";
    EXPECT_EQ(compared, golden_grads) << "parameters with an HF gradient that Kiln's model lacks";
  }

  Tensor objective(const km::ModelOutput& out, kiln::Device device) const {
    const json& obj = meta_.at("objective");
    if (obj.at("kind") == "loss") {
      EXPECT_TRUE(out.loss.defined()) << "labels given but no loss";
      return out.loss;
    }
    Tensor total;
    int64_t k = 0;
    for (const auto& term : obj.at("terms")) {
      const Tensor t = pick(out, term.get<std::string>());
      if (!t.defined()) {
        ADD_FAILURE() << "objective term " << term << " missing";
        return Tensor();
      }
      Tensor s = (t * probe(t.sizes(), k++).to(device)).sum();
      total = total.defined() ? total + s : s;
    }
    return total;
  }

  void expect_drop_path_rates(const km::PreTrainedModel& model) const {
    for (const auto& [path, rate] : meta_.at("drop_path_rates").items()) {
      auto layer = model.get_submodule(path);
      ASSERT_TRUE(layer) << path;
      double got = -1.0;
      if (const auto* l = layer->as<km::BitPreActivationBottleneckLayerImpl>()) got = l->drop_path_rate;
      if (const auto* l = layer->as<km::BitBottleneckLayerImpl>()) got = l->drop_path_rate;
      // HF's rates went through a float32 torch.Tensor.
      EXPECT_NEAR(got, rate.get<double>(), 1e-6) << "drop-path rate of " << path;
    }
  }

  void run(Path path, kiln::Device device) const {
    auto model = load(path);
    ASSERT_TRUE(model);
    if (!device.is_cpu()) model->to(device);
    expect_drop_path_rates(*model);
    model->train(meta_.at("mode") == "train");
    if (meta_.value("stochastic", false)) return run_stochastic(path, *model, device);

    Tensor x = get("pixel_values");
    if (!device.is_cpu()) x = x.to(device);
    x.requires_grad_(true);
    Tensor labels = has("labels") ? get("labels").to(device) : Tensor();

    km::ModelOutput out;
    if (meta_.contains("part")) {
      // HF cannot run this model at all (see "hf_error"); Kiln must refuse
      // with an error too, and match HF on the part that runs.
      SCOPED_TRACE("HF: " + meta_.at("hf_error").get<std::string>());
      EXPECT_THROW(forward(path, *model, x, labels, true), kiln::Error);
      ASSERT_EQ(meta_.at("part"), "bit.embedder");
      auto* embedder = model->get_submodule("bit.embedder")->as<km::BitEmbeddingsImpl>();
      ASSERT_NE(embedder, nullptr);
      out.last_hidden_state = embedder->forward(x);
      EXPECT_TRUE(golden_close(out.last_hidden_state, get("output"), kOutputRel)) << name() << ": embedder output";
      Tensor t = out.last_hidden_state;
      (t * probe(t.sizes(), 0).to(device)).sum().backward();
      expect_gradients(*model, x);
      return;
    }

    out = forward(path, *model, x, labels, true);
    expect_outputs(out);
    EXPECT_EQ(model->pretrained_config().problem_type, optional_string(meta_.at("problem_type_after")))
        << "problem_type after the forward (HF writes an inferred one back)";
    Tensor obj = objective(out, device);
    ASSERT_TRUE(obj.defined());
    obj.backward();
    expect_gradients(*model, x);
  }

  // Train mode with drop path: HF's values are torch's random draws, so
  // only what does not depend on them is compared: shapes, that the result
  // is random (and reproducible under one seed), and the eval-mode outputs.
  void run_stochastic(Path path, km::PreTrainedModel& model, kiln::Device device) const {
    ASSERT_TRUE(model.is_training());
    Tensor x = get("pixel_values").to(device);
    Tensor labels = has("labels") ? get("labels").to(device) : Tensor();
    kiln::manual_seed(1234);
    km::ModelOutput a = forward(path, model, x, labels, true);
    km::ModelOutput b = forward(path, model, x, labels, true);
    kiln::manual_seed(1234);
    km::ModelOutput a2 = forward(path, model, x, labels, true);
    for (const auto& [field, shape] : meta_.at("shapes").items()) {
      const Tensor t = pick(a, field);
      ASSERT_TRUE(t.defined()) << field;
      EXPECT_EQ(t.sizes().vec(), shape.get<std::vector<int64_t>>()) << field;
      EXPECT_TRUE(golden_close(pick(a2, field), t, 0.0)) << field << ": not reproducible under one seed";
    }
    // HF saw these differ between two calls; with drop rates up to 0.8 the
    // chance that every mask repeats is far below 1e-3.
    bool any_differs = false;
    for (const auto& field : meta_.at("train_outputs_differ_between_calls")) {
      const std::string f = field.get<std::string>();
      any_differs = any_differs || !golden_close(pick(a, f), pick(b, f), 0.0);
    }
    EXPECT_TRUE(any_differs) << "drop path had no effect in train mode";
    // What HF saw repeat (the stem, and stage 1 whose rate is 0: the rates
    // rise linearly from 0) must repeat here too.
    const json& differ = meta_.at("train_outputs_differ_between_calls");
    for (const auto& [field, shape] : meta_.at("shapes").items()) {
      if (std::find(differ.begin(), differ.end(), field) == differ.end()) {
        EXPECT_TRUE(golden_close(pick(a, field), pick(b, field), 0.0)) << field << " is random but HF's was not";
      }
    }
    Tensor loss = a.loss;
    ASSERT_TRUE(loss.defined());
    loss.backward();  // the random masks must be differentiable through
    for (const auto& item : model.named_parameters()) EXPECT_TRUE(item.value.grad().defined()) << item.key;

    model.eval();
    km::ModelOutput e = forward(path, model, x, labels, true);
    expect_outputs(e, "eval.");
  }

  std::unique_ptr<GoldenFile> golden_;
  json meta_;
};

TEST_P(BitGolden, FromPretrainedGenericForwardBackwardCpu) { run(Path::Generic, kiln::Device(kiln::kCPU)); }

TEST_P(BitGolden, FromPretrainedTypedForwardBackwardCpu) { run(Path::Typed, kiln::Device(kiln::kCPU)); }

TEST_P(BitGolden, FromPretrainedGenericForwardBackwardCuda) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA backend in this build/machine";
  run(Path::Generic, kiln::Device(kiln::kCUDA));
}

// Without output_hidden_states the config's default (false) applies: no
// hidden states, the same other outputs.
TEST_P(BitGolden, HiddenStatesFollowConfigByDefault) {
  if (meta().contains("part")) GTEST_SKIP() << "HF cannot run this case whole";
  if (meta().value("stochastic", false)) GTEST_SKIP() << "random in train mode (its eval outputs are checked by the other tests)";
  auto model = load(Path::Typed);
  ASSERT_TRUE(model);
  model->train(meta().at("mode") == "train");
  kiln::NoGradGuard no_grad;
  const Tensor labels = has("labels") ? get("labels") : Tensor();
  km::ModelOutput out = typed_forward(*model, get("pixel_values"), labels, std::nullopt);
  EXPECT_TRUE(out.hidden_states.empty());
  for (const char* field : {"loss", "logits", "last_hidden_state", "pooler_output"}) {
    if (has(field)) {
      EXPECT_TRUE(golden_close(pick(out, field), get(field), kOutputRel)) << field;
    }
  }
  for (size_t i = 0; has("feature_maps." + std::to_string(i)); ++i) {
    ASSERT_LT(i, out.feature_maps.size());
    EXPECT_TRUE(golden_close(out.feature_maps[i], get("feature_maps." + std::to_string(i)), kOutputRel));
  }
}

std::string case_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

INSTANTIATE_TEST_SUITE_P(HF, BitGolden, ::testing::ValuesIn(discover_cases()), case_name);

// The fixture folder is found and complete (a missing folder would
// instantiate no cases and pass silently).
TEST(BitGoldenFixtures, CasesPresent) {
  const auto cases = discover_cases();
  EXPECT_GE(cases.size(), 15u) << "tests/fixtures/bit/ incomplete; run tools/fixtures/bit.py";
  for (const auto& c : cases) {
    EXPECT_TRUE(fs::exists(kiln::testing::fixture_path("bit/" + c + "/config.json"))) << c;
    EXPECT_TRUE(fs::exists(kiln::testing::fixture_path("bit/" + c + "/model.safetensors"))) << c;
  }
}

}  // namespace
