// BitConfig against transformers 4.37.2's BitConfig: defaults, HF's
// config.json files (tests/fixtures/bit/, tools/fixtures/bit.py), validation
// and label rules. Loading whole directories: test_bit_from_pretrained.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "models/bit_fixtures.h"

using namespace kiln::testing::bit;

namespace {

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

class BitConfigFile : public kiln::testing::TempDirTest {};

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

}  // namespace
