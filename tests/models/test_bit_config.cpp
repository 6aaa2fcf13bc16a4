// BitConfig against transformers 4.37.2's BitConfig (defaults, HF's
// config.json files, validation), and the HF directory layout around it:
// from_pretrained's errors and options, save_pretrained round trips.
// Fixtures: tests/fixtures/bit/ (tools/fixtures/bit.py).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "golden.h"
#include "kiln/kiln.h"
#include "kiln/nn/serialize/safetensors.h"

namespace fs = std::filesystem;
namespace km = kiln::models;
namespace st = kiln::nn::serialize;
using kiln::Tensor;
using km::BitConfig;
using km::Json;

namespace {

fs::path case_dir(const std::string& name) { return kiln::testing::fixture_path("bit/" + name); }

Json read_json(const fs::path& p) { return km::read_json_file(p); }

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kiln::testing::fixture_path("bit")))
    if (fs::exists(e.path() / "config.json")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string shape_str(kiln::IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

// The message of the kiln::Error `f` throws ("" and a test failure if none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const kiln::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a kiln::Error";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "'" << (needle) << "' not in: " << (haystack)

void expect_same_config(const BitConfig& a, const BitConfig& b) {
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.id2label, b.id2label);
  EXPECT_EQ(a.problem_type, b.problem_type);
  EXPECT_EQ(a.output_hidden_states, b.output_hidden_states);
  EXPECT_EQ(a.num_channels, b.num_channels);
  EXPECT_EQ(a.embedding_size, b.embedding_size);
  EXPECT_EQ(a.hidden_sizes, b.hidden_sizes);
  EXPECT_EQ(a.depths, b.depths);
  EXPECT_EQ(a.layer_type, b.layer_type);
  EXPECT_EQ(a.hidden_act, b.hidden_act);
  EXPECT_EQ(a.global_padding, b.global_padding);
  EXPECT_EQ(a.num_groups, b.num_groups);
  EXPECT_EQ(a.drop_path_rate, b.drop_path_rate);
  EXPECT_EQ(a.embedding_dynamic_padding, b.embedding_dynamic_padding);
  EXPECT_EQ(a.output_stride, b.output_stride);
  EXPECT_EQ(a.width_factor, b.width_factor);
  EXPECT_EQ(a.out_features, b.out_features);
  EXPECT_EQ(a.out_indices, b.out_indices);
}

// Bitwise equality of two state dicts (same keys, shapes, dtypes, values).
void expect_same_state(const kiln::nn::StateDict& a, const kiln::nn::StateDict& b) {
  ASSERT_EQ(a.keys(), b.keys());
  for (const auto& item : a) {
    const Tensor& other = b.at(item.key);
    EXPECT_EQ(item.value.dtype(), other.dtype()) << item.key;
    ASSERT_EQ(shape_str(item.value.sizes()), shape_str(other.sizes())) << item.key;
    EXPECT_EQ(kiln::testing::values(item.value), kiln::testing::values(other)) << item.key;
  }
}

kiln::nn::StateDict file_tensors(const fs::path& dir) { return st::load_safetensors((dir / "model.safetensors").string()); }

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

// FromPretrainedOptions with some fields set (designated initialisers that
// skip fields trip -Wmissing-field-initializers).
km::FromPretrainedOptions options(std::string architecture = "", std::optional<int64_t> num_labels = std::nullopt,
                                  bool ignore_mismatched_sizes = false, bool strict = true) {
  km::FromPretrainedOptions o;
  o.architecture = std::move(architecture);
  o.num_labels = num_labels;
  o.ignore_mismatched_sizes = ignore_mismatched_sizes;
  o.strict = strict;
  return o;
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("kiln_bit_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // A copy of a fixture case directory to damage.
  fs::path copy_case(const std::string& name, const std::string& as) const {
    fs::path to = dir_ / as;
    fs::create_directories(to);
    fs::copy_file(case_dir(name) / "config.json", to / "config.json");
    fs::copy_file(case_dir(name) / "model.safetensors", to / "model.safetensors");
    return to;
  }
  fs::path dir_;
};

// ---- defaults and HF's files ----

TEST(BitConfigDefaults, EqualHF) {
  // configuration_bit.py's BitConfig.__init__ defaults.
  BitConfig c;
  EXPECT_EQ(c.model_type, "bit");
  EXPECT_EQ(c.num_channels, 3);
  EXPECT_EQ(c.embedding_size, 64);
  EXPECT_EQ(c.hidden_sizes, (std::vector<int64_t>{256, 512, 1024, 2048}));
  EXPECT_EQ(c.depths, (std::vector<int64_t>{3, 4, 6, 3}));
  EXPECT_EQ(c.layer_type, "preactivation");
  EXPECT_EQ(c.hidden_act, "relu");
  EXPECT_FALSE(c.global_padding.has_value());
  EXPECT_EQ(c.num_groups, 32);
  EXPECT_EQ(c.drop_path_rate, 0.0);
  EXPECT_FALSE(c.embedding_dynamic_padding);
  EXPECT_EQ(c.output_stride, 32);
  EXPECT_EQ(c.width_factor, 1);
  EXPECT_EQ(c.num_labels(), 2);
  EXPECT_EQ(c.id2label.at(0), "LABEL_0");
  EXPECT_EQ(c.id2label.at(1), "LABEL_1");
  EXPECT_FALSE(c.problem_type.has_value());
  EXPECT_FALSE(c.output_hidden_states);
  EXPECT_EQ(c.stage_names(), (std::vector<std::string>{"stem", "stage1", "stage2", "stage3", "stage4"}));
  // HF aligns out_features/out_indices in __init__: neither set means the last stage.
  c.validate();
  EXPECT_EQ(c.out_features, (std::vector<std::string>{"stage4"}));
  EXPECT_EQ(c.out_indices, (std::vector<int64_t>{4}));
}

TEST(BitConfigDefaults, HFDefaultConfigFileParsesToDefaults) {
  // BitConfig().to_json_string(use_diff=False): every PretrainedConfig key,
  // nulls included ("architectures": null, "problem_type": null).
  const fs::path file = kiln::testing::fixture_path("bit/default_config.json");
  BitConfig parsed = BitConfig::from_json_file(file);
  BitConfig defaults;
  defaults.validate();
  expect_same_config(parsed, defaults);
  EXPECT_TRUE(parsed.architectures.empty());
  // Keys Kiln does not use are kept for save_pretrained.
  EXPECT_EQ(parsed.extra.value("transformers_version", ""), "4.37.2");
  EXPECT_TRUE(parsed.extra.contains("return_dict"));
  EXPECT_FALSE(parsed.extra.contains("stage_names")) << "stage_names is derived, not extra";
}

TEST(BitConfigFiles, EveryFixtureConfigParsesAsHFBuiltIt) {
  for (const auto& name : case_names()) {
    SCOPED_TRACE(name);
    const Json file = read_json(case_dir(name) / "config.json");
    kiln::testing::GoldenFile golden("bit/" + name + "/golden.safetensors");
    const Json& spec = golden.cases.at(name).at("config");
    BitConfig c = BitConfig::from_json_file(case_dir(name) / "config.json");
    BitConfig d;  // what HF's defaults give for the keys the case did not set
    EXPECT_EQ(c.architectures, file.at("architectures").get<std::vector<std::string>>());
    EXPECT_EQ(c.embedding_size, spec.value("embedding_size", d.embedding_size));
    EXPECT_EQ(c.hidden_sizes, spec.value("hidden_sizes", d.hidden_sizes));
    EXPECT_EQ(c.depths, spec.value("depths", d.depths));
    EXPECT_EQ(c.layer_type, spec.value("layer_type", d.layer_type));
    EXPECT_EQ(c.hidden_act, spec.value("hidden_act", d.hidden_act));
    EXPECT_EQ(c.num_groups, spec.value("num_groups", d.num_groups));
    EXPECT_EQ(c.drop_path_rate, spec.value("drop_path_rate", d.drop_path_rate));
    EXPECT_EQ(c.embedding_dynamic_padding, spec.value("embedding_dynamic_padding", d.embedding_dynamic_padding));
    EXPECT_EQ(c.output_stride, spec.value("output_stride", d.output_stride));
    EXPECT_EQ(c.width_factor, spec.value("width_factor", d.width_factor));
    EXPECT_EQ(c.num_labels(), spec.value("num_labels", int64_t{2}));
    if (spec.contains("global_padding") && !spec["global_padding"].is_null()) {
      EXPECT_EQ(c.global_padding, spec["global_padding"].get<std::string>());
    } else {
      EXPECT_FALSE(c.global_padding.has_value());
    }
    if (spec.contains("problem_type")) {
      EXPECT_EQ(c.problem_type, spec["problem_type"].get<std::string>());
    } else {
      EXPECT_FALSE(c.problem_type.has_value());
    }
    // HF aligned out_features and out_indices before writing them.
    EXPECT_EQ(c.out_features, file.at("out_features").get<std::vector<std::string>>());
    EXPECT_EQ(c.out_indices, file.at("out_indices").get<std::vector<int64_t>>());
    EXPECT_EQ(c.stage_names(), file.at("stage_names").get<std::vector<std::string>>());
  }
}

TEST(BitConfigFiles, ToJsonRoundTripAndKeepsEveryHFKey) {
  for (const auto& name : case_names()) {
    SCOPED_TRACE(name);
    const Json file = read_json(case_dir(name) / "config.json");
    BitConfig c = BitConfig::from_json(file, name);
    const Json out = c.to_json();
    // Every key HF wrote comes back with its value (torch_dtype and
    // transformers_version through `extra`); out_indices [-1] stays [-1].
    for (const auto& [key, value] : file.items()) {
      if (key == "architectures") continue;  // a model's config_json adds it
      ASSERT_TRUE(out.contains(key)) << key;
      EXPECT_EQ(out.at(key), value) << key;
    }
    expect_same_config(BitConfig::from_json(out, "round trip"), c);
    EXPECT_EQ(BitConfig::from_json(out, "round trip").to_json(), out);
  }
}

// ---- validation ----

Json small_config() {
  return Json{{"model_type", "bit"},  {"embedding_size", 8}, {"hidden_sizes", {16, 24, 32}},
              {"depths", {1, 1, 1}}, {"num_groups", 2}};
}

TEST(BitConfigValidation, BadLayerType) {
  Json j = small_config();
  j["layer_type"] = "basic";
  const std::string msg = error_of([&] { BitConfig::from_json(j, "dir/config.json"); });
  EXPECT_CONTAINS(msg, "layer_type");
  EXPECT_CONTAINS(msg, "basic");
  EXPECT_CONTAINS(msg, "dir/config.json");
}

TEST(BitConfigValidation, GlobalPadding) {
  Json j = small_config();
  j["global_padding"] = "same";  // HF upper-cases
  EXPECT_EQ(BitConfig::from_json(j).global_padding, std::optional<std::string>("SAME"));
  j["global_padding"] = "valid";
  EXPECT_EQ(BitConfig::from_json(j).global_padding, std::optional<std::string>("VALID"));
  j["global_padding"] = nullptr;
  EXPECT_FALSE(BitConfig::from_json(j).global_padding.has_value());
  j["global_padding"] = "reflect";
  const std::string msg = error_of([&] { BitConfig::from_json(j, "dir/config.json"); });
  EXPECT_CONTAINS(msg, "reflect");
  EXPECT_CONTAINS(msg, "dir/config.json");
}

TEST(BitConfigValidation, OutFeaturesAndIndices) {
  Json j = small_config();
  j["out_features"] = {"stem", "stage7"};
  std::string msg = error_of([&] { BitConfig::from_json(j, "dir/config.json"); });
  EXPECT_CONTAINS(msg, "stage7");
  EXPECT_CONTAINS(msg, "stage_names");
  EXPECT_CONTAINS(msg, "dir/config.json");

  j = small_config();
  j["out_features"] = {"stage2", "stage1"};  // out of order
  EXPECT_CONTAINS(error_of([&] { BitConfig::from_json(j, "c"); }), "order");

  j = small_config();
  j["out_features"] = {"stage1", "stage2"};
  j["out_indices"] = {1, 3};  // stage1, stage3: misaligned
  msg = error_of([&] { BitConfig::from_json(j, "dir/config.json"); });
  EXPECT_CONTAINS(msg, "out_features and out_indices");
  EXPECT_CONTAINS(msg, "dir/config.json");

  j["out_indices"] = {1};  // different lengths
  EXPECT_CONTAINS(error_of([&] { BitConfig::from_json(j, "c"); }), "same length");

  j = small_config();
  j["out_indices"] = {5};
  EXPECT_CONTAINS(error_of([&] { BitConfig::from_json(j, "c"); }), "out_indices");

  // Alignment, as HF's get_aligned_output_features_output_indices.
  j = small_config();
  j["out_features"] = {"stem", "stage2"};
  BitConfig c = BitConfig::from_json(j);
  EXPECT_EQ(c.out_indices, (std::vector<int64_t>{0, 2}));
  j = small_config();
  j["out_indices"] = {1, -1};
  c = BitConfig::from_json(j);
  EXPECT_EQ(c.out_features, (std::vector<std::string>{"stage1", "stage3"}));
  EXPECT_EQ(c.out_indices, (std::vector<int64_t>{1, -1}));  // kept as given, as HF writes it
}

TEST(BitConfigValidation, WrongJsonTypeNamesKeyAndFile) {
  const std::vector<std::pair<std::string, Json>> bad = {
      {"num_groups", "32"},       {"hidden_sizes", "256"},      {"depths", {1.5, 2}},
      {"layer_type", 3},          {"embedding_dynamic_padding", "yes"}, {"drop_path_rate", "0.1"},
      {"global_padding", 1},      {"out_features", "stage1"},   {"id2label", {1, 2}},
      {"problem_type", "ranking"}};
  for (const auto& [key, value] : bad) {
    SCOPED_TRACE(key);
    Json j = small_config();
    j[key] = value;
    const std::string msg = error_of([&] { BitConfig::from_json(j, "some/dir/config.json"); });
    EXPECT_CONTAINS(msg, key);
    EXPECT_CONTAINS(msg, "some/dir/config.json");
  }
}

class BitConfigFile : public TempDir {};

TEST_F(BitConfigFile, WrongTypeInAFileNamesThePath) {
  Json j = small_config();
  j["width_factor"] = "two";
  write_text(dir_ / "config.json", j.dump());
  const std::string msg = error_of([&] { BitConfig::from_json_file(dir_ / "config.json"); });
  EXPECT_CONTAINS(msg, "width_factor");
  EXPECT_CONTAINS(msg, (dir_ / "config.json").string());

  write_text(dir_ / "config.json", "{\"model_type\": \"bit\", ");  // not JSON
  EXPECT_CONTAINS(error_of([&] { BitConfig::from_json_file(dir_ / "config.json"); }), (dir_ / "config.json").string());
}

TEST(BitConfigLabels, NumLabelsAndId2Label) {
  Json j = small_config();
  j["num_labels"] = 3;
  BitConfig c = BitConfig::from_json(j);
  EXPECT_EQ(c.num_labels(), 3);
  EXPECT_EQ(c.id2label.at(2), "LABEL_2");
  j["id2label"] = {{"0", "cat"}, {"1", "dog"}};  // HF: id2label wins over num_labels
  c = BitConfig::from_json(j);
  EXPECT_EQ(c.num_labels(), 2);
  EXPECT_EQ(c.label2id().at("dog"), 1);
  const Json out = c.to_json();
  EXPECT_EQ(out.at("id2label").at("1"), "dog");
  EXPECT_EQ(out.at("label2id").at("cat"), 0);
}

// ---- the registry ----

TEST(BitRegistry, RegisteredAndCreate) {
  const auto models = km::registered_models();
  for (const char* m : {"bit/BitModel", "bit/BitForImageClassification", "bit/BitBackbone"})
    EXPECT_NE(std::find(models.begin(), models.end(), m), models.end()) << m;
  // No architectures: the model_type's first architecture, as AutoModel.
  auto model = km::create_model(small_config());
  EXPECT_EQ(model->architecture(), "BitModel");
  model = km::create_model(small_config(), "BitBackbone");
  EXPECT_EQ(model->architecture(), "BitBackbone");
}

// ---- from_pretrained errors ----

class BitFromPretrained : public TempDir {};

TEST_F(BitFromPretrained, MissingDirectory) {
  const fs::path missing = dir_ / "nope";
  EXPECT_CONTAINS(error_of([&] { km::from_pretrained(missing); }), missing.string());
}

TEST_F(BitFromPretrained, MissingConfig) {
  fs::path d = copy_case("clf_preact_inferred_single", "m");
  fs::remove(d / "config.json");
  EXPECT_CONTAINS(error_of([&] { km::from_pretrained(d); }), "config.json");
}

TEST_F(BitFromPretrained, MissingWeights) {
  fs::path d = copy_case("clf_preact_inferred_single", "m");
  fs::remove(d / "model.safetensors");
  const std::string msg = error_of([&] { km::from_pretrained(d); });
  EXPECT_CONTAINS(msg, "model.safetensors");
  EXPECT_CONTAINS(msg, d.string());
}

TEST_F(BitFromPretrained, CorruptedWeights) {
  fs::path d = copy_case("clf_preact_inferred_single", "m");
  std::string bytes = read_bytes(d / "model.safetensors");
  write_text(d / "model.safetensors", bytes.substr(0, bytes.size() - 100));  // truncated
  EXPECT_CONTAINS(error_of([&] { km::from_pretrained(d); }), "model.safetensors");
  write_text(d / "model.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10));  // absurd header length
  EXPECT_CONTAINS(error_of([&] { km::from_pretrained(d); }), "model.safetensors");
}

TEST_F(BitFromPretrained, UnknownModelTypeAndArchitecture) {
  fs::path d = copy_case("clf_preact_inferred_single", "m");
  Json j = read_json(d / "config.json");
  j["model_type"] = "resnet";
  j.erase("architectures");
  write_text(d / "config.json", j.dump());
  std::string msg = error_of([&] { km::from_pretrained(d); });
  EXPECT_CONTAINS(msg, "resnet");
  EXPECT_CONTAINS(msg, "bit/BitForImageClassification");  // lists what is registered

  j = read_json(case_dir("clf_preact_inferred_single") / "config.json");
  j["architectures"] = {"BitForObjectDetection"};
  write_text(d / "config.json", j.dump());
  msg = error_of([&] { km::from_pretrained(d); });
  EXPECT_CONTAINS(msg, "BitForObjectDetection");
  EXPECT_CONTAINS(msg, "bit/BitModel");

  EXPECT_CONTAINS(error_of([&] { km::from_pretrained(case_dir("clf_preact_inferred_single"), options("Nope")); }),
                  "bit/BitBackbone");
}

TEST_F(BitFromPretrained, WrongTypeInConfigNamesKeyAndFile) {
  fs::path d = copy_case("clf_preact_inferred_single", "m");
  Json j = read_json(d / "config.json");
  j["depths"] = "1,1,1";
  write_text(d / "config.json", j.dump());
  const std::string msg = error_of([&] { km::from_pretrained(d); });
  EXPECT_CONTAINS(msg, "depths");
  EXPECT_CONTAINS(msg, (d / "config.json").string());
}

TEST_F(BitFromPretrained, WrongShapeNamesKeyAndBothShapes) {
  fs::path d = copy_case("clf_preact_inferred_single", "m");
  auto tensors = file_tensors(d);
  const Tensor right = tensors.at("bit.norm.weight");  // [32]
  tensors.insert_or_assign("bit.norm.weight", kiln::ones({31}));
  st::save_safetensors((d / "model.safetensors").string(), tensors, {{"format", "pt"}});
  const std::string msg = error_of([&] { km::from_pretrained(d); });
  EXPECT_CONTAINS(msg, "bit.norm.weight");
  EXPECT_CONTAINS(msg, shape_str(kiln::ones({31}).sizes()));
  EXPECT_CONTAINS(msg, shape_str(right.sizes()));
}

TEST_F(BitFromPretrained, MissingAndUnexpectedKeys) {
  fs::path d = copy_case("clf_preact_inferred_single", "m");
  auto tensors = file_tensors(d);
  tensors.erase("bit.encoder.stages.1.layers.0.norm2.bias");
  st::save_safetensors((d / "model.safetensors").string(), tensors, {{"format", "pt"}});
  EXPECT_CONTAINS(error_of([&] { km::from_pretrained(d); }), "bit.encoder.stages.1.layers.0.norm2.bias");
  // strict = false: loads, the missing tensor keeps its initialisation (HF's: bias 0).
  auto model = km::from_pretrained(d, options("", std::nullopt, false, false));
  const Tensor bias = model->get_parameter("bit.encoder.stages.1.layers.0.norm2.bias");
  for (double v : kiln::testing::values(bias)) EXPECT_EQ(v, 0.0);
  EXPECT_EQ(kiln::testing::values(model->get_parameter("bit.norm.weight")),
            kiln::testing::values(tensors.at("bit.norm.weight")));

  tensors = file_tensors(case_dir("clf_preact_inferred_single"));
  tensors.insert("bit.encoder.stages.9.extra", kiln::ones({2}));
  st::save_safetensors((d / "model.safetensors").string(), tensors, {{"format", "pt"}});
  EXPECT_CONTAINS(error_of([&] { km::from_pretrained(d); }), "bit.encoder.stages.9.extra");
  EXPECT_NO_THROW(km::from_pretrained(d, options("", std::nullopt, false, false)));
}

// ---- from_pretrained options ----

TEST(BitFromPretrainedOptions, NewHeadWithIgnoreMismatchedSizes) {
  const fs::path d = case_dir("clf_preact_same_single");  // 5 labels
  const auto file = file_tensors(d);
  // Without the flag a 3-label head does not fit the 5-label checkpoint.
  const std::string msg = error_of([&] { km::from_pretrained(d, options("", 3)); });
  EXPECT_CONTAINS(msg, "classifier.1.weight");

  auto model = km::from_pretrained<km::BitForImageClassificationImpl>(
      d, options("", 3, true));
  EXPECT_EQ(model->config.num_labels(), 3);
  EXPECT_EQ(model->config.id2label.at(2), "LABEL_2");
  for (const auto& item : model->state_dict()) {
    SCOPED_TRACE(item.key);
    if (item.key.rfind("classifier.", 0) == 0) continue;
    EXPECT_EQ(kiln::testing::values(item.value), kiln::testing::values(file.at(item.key)));
  }
  const Tensor w = model->get_parameter("classifier.1.weight");
  const Tensor b = model->get_parameter("classifier.1.bias");
  EXPECT_EQ(shape_str(w.sizes()), shape_str(kiln::IntArrayRef({3, 32})));
  EXPECT_EQ(shape_str(b.sizes()), shape_str(kiln::IntArrayRef({3})));
  // Freshly initialised (PyTorch's Linear default: U(-1/sqrt(in), 1/sqrt(in))), not the checkpoint's rows.
  const auto wv = kiln::testing::values(w);
  const auto old = kiln::testing::values(file.at("classifier.1.weight"));
  bool differs = false;
  for (size_t i = 0; i < wv.size(); ++i) {
    EXPECT_LE(std::abs(wv[i]), 1.0 / std::sqrt(32.0));
    differs = differs || wv[i] != old[i];
  }
  EXPECT_TRUE(differs);
  // And it runs: logits [2, 3].
  kiln::testing::GoldenFile golden("bit/clf_preact_same_single/golden.safetensors");
  kiln::NoGradGuard no_grad;
  auto out = model->forward(golden.get("pixel_values"));
  EXPECT_EQ(shape_str(out.logits.sizes()), shape_str(kiln::IntArrayRef({2, 3})));
}

TEST(BitFromPretrainedOptions, HeadCheckpointIntoBareModel) {
  const fs::path d = case_dir("clf_preact_same_single");
  const auto file = file_tensors(d);
  for (bool typed : {false, true}) {
    SCOPED_TRACE(typed ? "typed" : "architecture option");
    auto model = typed ? std::static_pointer_cast<km::PreTrainedModel>(km::from_pretrained<km::BitModelImpl>(d))
                       : km::from_pretrained(d, options("BitModel"));
    EXPECT_EQ(model->architecture(), "BitModel");
    size_t n = 0;
    for (const auto& item : model->state_dict()) {
      EXPECT_EQ(kiln::testing::values(item.value), kiln::testing::values(file.at("bit." + item.key))) << item.key;
      ++n;
    }
    EXPECT_EQ(n + 2, file.size());  // all but classifier.1.{weight,bias}
  }
}

TEST(BitFromPretrainedOptions, BareCheckpointIntoHead) {
  // HF loads a BitModel checkpoint into BitForImageClassification, warns that
  // the classifier is newly initialised, and does not fail; registry.h says
  // so too ("a head's checkpoint loads into the bare model and vice versa").
  const fs::path d = case_dir("model_bottleneck_os16_same");
  const auto file = file_tensors(d);
  for (bool strict : {true, false}) {
    SCOPED_TRACE(strict ? "strict" : "not strict");
    auto model = km::from_pretrained<km::BitForImageClassificationImpl>(d, options("", std::nullopt, false, strict));
    for (const auto& item : file)
      EXPECT_EQ(kiln::testing::values(model->get_parameter("bit." + item.key)), kiln::testing::values(item.value))
          << item.key;
    const Tensor w = model->get_parameter("classifier.1.weight");
    EXPECT_EQ(shape_str(w.sizes()), shape_str(kiln::IntArrayRef({2, 32})));  // HF's default 2 labels
    for (double v : kiln::testing::values(w)) EXPECT_LE(std::abs(v), 1.0 / std::sqrt(32.0));
  }
  // A backbone's checkpoint is a head's ("bit." prefixed): it loads into a BitModel too.
  auto bare = km::from_pretrained(case_dir("backbone_preact_features"), options("BitModel"));
  EXPECT_EQ(bare->architecture(), "BitModel");
}

TEST(BitFromPretrainedOptions, OneHeadsCheckpointIntoAnother) {
  // registry.h: "one head's into another (its own head new, the other unused)".
  const fs::path clf = case_dir("clf_preact_inferred_single");
  const auto clf_file = file_tensors(clf);
  auto backbone = km::from_pretrained<km::BitBackboneImpl>(clf);  // classifier.* unused
  for (const auto& item : backbone->state_dict())
    EXPECT_EQ(kiln::testing::values(item.value), kiln::testing::values(clf_file.at(item.key))) << item.key;

  const fs::path bb = case_dir("backbone_preact_features");  // same widths, no classifier
  const auto bb_file = file_tensors(bb);
  auto head = km::from_pretrained<km::BitForImageClassificationImpl>(bb);
  for (const auto& item : bb_file)
    EXPECT_EQ(kiln::testing::values(head->get_parameter(item.key)), kiln::testing::values(item.value)) << item.key;
  EXPECT_EQ(shape_str(head->get_parameter("classifier.1.weight").sizes()), shape_str(kiln::IntArrayRef({2, 32})));
}

// ---- save_pretrained ----

class BitSavePretrained : public TempDir {};

TEST_F(BitSavePretrained, RoundTripBitwise) {
  for (const char* name : {"clf_preact_same_single", "model_bottleneck_os8", "backbone_bottleneck_width2_last",
                           "clf_bottleneck_inferred_multi"}) {
    SCOPED_TRACE(name);
    auto model = km::from_pretrained(case_dir(name));
    const fs::path out = dir_ / name;
    km::save_pretrained(*model, out);
    auto again = km::from_pretrained(out);
    EXPECT_EQ(again->architecture(), model->architecture());
    expect_same_state(again->state_dict(), model->state_dict());
    EXPECT_EQ(again->config_json(), model->config_json());

    // What transformers reads: the same tensors as HF saved, and every key
    // of HF's config.json with its value.
    expect_same_state(file_tensors(out), file_tensors(case_dir(name)));
    EXPECT_EQ(st::SafetensorsFile((out / "model.safetensors").string()).metadata().at("format"), "pt");
    const Json hf = read_json(case_dir(name) / "config.json");
    const Json ours = read_json(out / "config.json");
    for (const auto& [key, value] : hf.items()) {
      ASSERT_TRUE(ours.contains(key)) << key;
      EXPECT_EQ(ours.at(key), value) << key;
    }
  }
}

TEST_F(BitSavePretrained, WeightsFileIsByteIdenticalToHF) {
  // HF's save_pretrained writes safetensors.torch.save_file(..., metadata={"format": "pt"});
  // Kiln writes the Python layout, so the bytes agree.
  for (const char* name : {"clf_preact_same_single", "backbone_preact_features"}) {
    SCOPED_TRACE(name);
    auto model = km::from_pretrained(case_dir(name));
    km::save_pretrained(*model, dir_ / name);
    EXPECT_TRUE(read_bytes(dir_ / name / "model.safetensors") == read_bytes(case_dir(name) / "model.safetensors"));
  }
}

TEST_F(BitSavePretrained, InferredProblemTypeIsSaved) {
  // As HF: the head writes the problem_type it inferred into its config, and
  // save_pretrained keeps it.
  kiln::testing::GoldenFile golden("bit/clf_preact_inferred_single/golden.safetensors");
  auto model = km::from_pretrained<km::BitForImageClassificationImpl>(case_dir("clf_preact_inferred_single"));
  EXPECT_FALSE(model->config.problem_type.has_value());
  kiln::NoGradGuard no_grad;
  model->forward(golden.get("pixel_values"), golden.get("labels"));
  EXPECT_EQ(model->config.problem_type, std::optional<std::string>("single_label_classification"));
  km::save_pretrained(*model, dir_ / "m");
  EXPECT_EQ(read_json(dir_ / "m" / "config.json").at("problem_type"), "single_label_classification");
}

}  // namespace
