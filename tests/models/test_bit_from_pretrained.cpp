// The HF directory layout around BiT: the registry, from_pretrained's
// errors and options (head/body loading, ignore_mismatched_sizes), and
// save_pretrained round trips, on the HF-written fixture cases.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "models/bit_fixtures.h"

using namespace kiln::testing::bit;

namespace {

// FromPretrainedOptions with some fields set.
km::FromPretrainedOptions options(std::string architecture = "", std::optional<int64_t> num_labels = std::nullopt,
                                  bool ignore_mismatched_sizes = false, bool strict = true) {
  km::FromPretrainedOptions o;
  o.architecture = std::move(architecture);
  o.num_labels = num_labels;
  o.ignore_mismatched_sizes = ignore_mismatched_sizes;
  o.strict = strict;
  return o;
}

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

class BitFromPretrained : public CaseDirTest {};

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

class BitSavePretrained : public CaseDirTest {};

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
