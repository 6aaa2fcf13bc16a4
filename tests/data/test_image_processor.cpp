// BiT/BEiT image processors against Hugging Face transformers 4.37.2
// (tools/fixtures/image_processors.py), their steps in closed form, and the
// preprocessor_config.json reader.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "image_fixtures.h"
#include "kiln/data/image_processor.h"

using namespace kiln;
using namespace kiln::data;
using namespace kiln::testing;

namespace {

const GoldenFile& golden() {
  static GoldenFile file("image_processors/processors.safetensors");
  return file;
}

Image load_input(const std::string& ref) {
  if (ref.rfind("photo:", 0) == 0) return decode_image(photo_dir() / ref.substr(6));
  if (ref.rfind("pattern:", 0) == 0) {  // pattern:<kind>:<w>x<h>
    std::string rest = ref.substr(8);
    std::string kind = rest.substr(0, rest.find(':'));
    std::string size = rest.substr(rest.find(':') + 1);
    int64_t w = std::stoll(size.substr(0, size.find('x'))), h = std::stoll(size.substr(size.find('x') + 1));
    return pattern_image(kind, w, h);
  }
  return decode_image(image_fixture(ref));
}

bool uses_photos(const nlohmann::json& c) {
  for (const auto& r : c["inputs"])
    if (r.get<std::string>().rfind("photo:", 0) == 0) return true;
  return false;
}

// Runs every case (photo cases or the others) and checks shape, the stored
// sample and the checksum of the whole output; counts the cases run.
void run_cases(bool photos, int& ran) {
  const auto& g = golden();
  ran = 0;
  for (const auto& [name, c] : g.cases.items()) {
    if (uses_photos(c) != photos) continue;
    SCOPED_TRACE(name);
    // The processor comes from HF's own to_json_string() of the reference processor.
    ImageProcessor proc(parse_image_processor_config(c["config"].dump(), name + ".json"));
    std::vector<Image> images;
    for (const auto& r : c["inputs"]) images.push_back(load_input(r));
    Tensor out = proc(images);
    std::vector<int64_t> shape = c["shape"];
    ASSERT_EQ(out.sizes().vec(), shape);
    const int64_t n = shape[0], h = shape[2], w = shape[3], s = c["sample_stride"];
    EXPECT_EQ(proc.output_size(images[0].height, images[0].width), (std::pair{h, w}));
    // Sample [:, :, ::s, ::s] against HF's values: report the largest difference.
    Tensor expected = g.get(name + ".sample");
    const float* e = expected.data_ptr<float>();
    const float* o = out.data_ptr<float>();
    double worst = 0.0;
    size_t k = 0;
    for (int64_t i = 0; i < n * 3; ++i)
      for (int64_t y = 0; y < h; y += s)
        for (int64_t x = 0; x < w; x += s, ++k)
          worst = std::max(worst, std::abs(double(o[(i * h + y) * w + x]) - e[k]));
    ASSERT_EQ(static_cast<int64_t>(k), expected.numel());
    EXPECT_EQ(worst, 0.0) << "max |kiln - HF| over the stored sample";
    // Bit-exact over every element.
    EXPECT_EQ(checksum_f32(o, static_cast<size_t>(out.numel())), c["checksum"].get<std::string>());
    ++ran;
  }
}

}  // namespace

TEST(ImageProcessor, SyntheticImagesMatchHuggingFace) {
  int ran = 0;
  run_cases(false, ran);
  EXPECT_EQ(ran, 23);
}

TEST(ImageProcessor, PhotosMatchHuggingFace) {
  KILN_SKIP_WITHOUT_PHOTOS();
  int ran = 0;
  run_cases(true, ran);
  EXPECT_EQ(ran, 9);
}

TEST(ImageProcessor, Defaults) {
  ImageProcessorConfig bit = ImageProcessor::bit().config();
  EXPECT_EQ(bit.type, ImageProcessorType::Bit);
  EXPECT_TRUE(bit.size.is_shortest_edge());
  EXPECT_EQ(bit.size.shortest_edge, 224);
  EXPECT_EQ(bit.resample, Resample::Bicubic);
  EXPECT_EQ(bit.crop_height, 224);
  EXPECT_EQ(bit.crop_width, 224);
  EXPECT_EQ(bit.rescale_factor, 1.0 / 255);
  EXPECT_EQ(bit.image_mean[0], 0.48145466);
  EXPECT_EQ(bit.image_std[2], 0.27577711);
  ImageProcessorConfig beit = ImageProcessor::beit().config();
  EXPECT_EQ(beit.type, ImageProcessorType::Beit);
  EXPECT_FALSE(beit.size.is_shortest_edge());
  EXPECT_EQ(beit.size.height, 256);
  EXPECT_EQ(beit.size.width, 256);
  EXPECT_EQ(beit.crop_height, 224);
  EXPECT_EQ(beit.image_mean[1], 0.5);
  EXPECT_EQ(beit.image_std[1], 0.5);
  EXPECT_FALSE(beit.do_reduce_labels);
}

TEST(ImageProcessor, ShortestEdgeSize) {
  // int(224 * long / short): 224 * 640 / 427 = 335.7 -> 335.
  EXPECT_EQ(shortest_edge_size(427, 640, 224), (std::pair<int64_t, int64_t>{224, 335}));
  EXPECT_EQ(shortest_edge_size(640, 427, 224), (std::pair<int64_t, int64_t>{335, 224}));
  EXPECT_EQ(shortest_edge_size(480, 640, 224), (std::pair<int64_t, int64_t>{224, 298}));  // 298.67
  EXPECT_EQ(shortest_edge_size(100, 100, 224), (std::pair<int64_t, int64_t>{224, 224}));
  EXPECT_EQ(shortest_edge_size(3, 7, 2), (std::pair<int64_t, int64_t>{2, 4}));  // 4.67
  // Exactly representable results are not truncated one too far: 224 * 300 / 200 = 336.
  EXPECT_EQ(shortest_edge_size(200, 300, 224), (std::pair<int64_t, int64_t>{224, 336}));
  EXPECT_KILN_ERROR(shortest_edge_size(0, 5, 224), "positive");
}

TEST(ImageProcessor, CenterCropClosedForm) {
  Image im = pattern_image("noise", 9, 7);
  auto px = [](const Image& i, int64_t y, int64_t x, int c) { return int(i.pixels[(y * i.width + x) * 3 + c]); };
  // Inside: top = (7 - 4) // 2 = 1, left = (9 - 5) // 2 = 2.
  Image a = center_crop(im, 4, 5);
  ASSERT_EQ(a.height, 4);
  ASSERT_EQ(a.width, 5);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(px(a, y, x, c), px(im, y + 1, x + 2, c));
  // Larger by an even amount: zero border of (11 - 7) / 2 = 2 rows above and below.
  Image b = center_crop(im, 11, 9);
  ASSERT_EQ(b.height, 11);
  ASSERT_EQ(b.width, 9);
  for (int y = 0; y < 11; ++y)
    for (int x = 0; x < 9; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(px(b, y, x, c), (y >= 2 && y < 9) ? px(im, y - 2, x, c) : 0);
  // Larger by an odd amount: HF's floor divisions lose one row. Crop 10 of 7
  // rows: top = -2, padding 1 above, window rows [-1, 7) -> [0, 7): 7 rows,
  // the padding row then the image's first six.
  Image c = center_crop(im, 10, 9);
  ASSERT_EQ(c.height, 9);
  ASSERT_EQ(c.width, 9);
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 9; ++x)
      for (int ch = 0; ch < 3; ++ch) EXPECT_EQ(px(c, y, x, ch), (y >= 1 && y < 8) ? px(im, y - 1, x, ch) : 0);
  // Larger in one dimension, smaller in the other.
  Image d = center_crop(im, 9, 3);
  ASSERT_EQ(d.height, 9);
  ASSERT_EQ(d.width, 3);
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 3; ++x) EXPECT_EQ(px(d, y, x, 0), (y >= 1 && y < 8) ? px(im, y - 1, x + 3, 0) : 0);
  EXPECT_KILN_ERROR(center_crop(im, 0, 3), "crop size must be positive");
}

TEST(ImageProcessor, FloatConversionFormula) {
  // Against the formula in double: float32 rounding is the only difference.
  Image im = pattern_image("ramp", 16, 16);
  ImageProcessorConfig cfg = ImageProcessorConfig::bit();
  Tensor t = to_float_normalized(im, cfg);
  ASSERT_EQ(t.sizes().vec(), (std::vector<int64_t>{3, 16, 16}));
  const float* p = t.data_ptr<float>();
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 256; ++i) {
      double v = im.pixels[i * 3 + c];
      double want = (v / 255.0 - cfg.image_mean[c]) / cfg.image_std[c];
      EXPECT_NEAR(p[c * 256 + i], want, 1e-5 * std::max(1.0, std::abs(want)));
    }
  cfg.do_rescale = false;
  cfg.do_normalize = false;
  Tensor raw = to_float_normalized(im, cfg);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 256; ++i) EXPECT_EQ(raw.data_ptr<float>()[c * 256 + i], float(im.pixels[i * 3 + c]));
}

TEST(ImageProcessor, BatchNeedsEqualSizes) {
  ImageProcessorConfig cfg = ImageProcessorConfig::bit();
  cfg.do_center_crop = false;
  ImageProcessor proc(cfg);
  std::vector<Image> images{pattern_image("noise", 40, 30), pattern_image("noise", 30, 40)};
  EXPECT_KILN_ERROR(proc(images), "image 1 (30x40) comes out 224x298 but image 0 (40x30) comes out 298x224");
  EXPECT_KILN_ERROR(proc(std::vector<Image>{}), "no images");
  // Default BiT: both come out 224x224.
  Tensor out = ImageProcessor::bit()(images);
  EXPECT_EQ(out.sizes().vec(), (std::vector<int64_t>{2, 3, 224, 224}));
  EXPECT_EQ(out.dtype(), kFloat32);
  // One image: [1, 3, H, W], the same values as in a batch.
  Tensor one = ImageProcessor::bit()(images[1]);
  EXPECT_EQ(one.sizes().vec(), (std::vector<int64_t>{1, 3, 224, 224}));
  const float* a = one.data_ptr<float>();
  const float* b = out.data_ptr<float>() + 3 * 224 * 224;
  EXPECT_TRUE(std::equal(a, a + 3 * 224 * 224, b));
}

TEST(ImageProcessor, ReduceLabels) {
  std::vector<uint8_t> labels{0, 1, 2, 150, 254, 255};
  reduce_labels(labels);
  EXPECT_EQ(labels, (std::vector<uint8_t>{255, 0, 1, 149, 253, 255}));
}

TEST(ImageProcessor, ConfigFromJsonFile) {
  auto path =
      std::filesystem::temp_directory_path() / ("kiln_preprocessor_config_" + std::to_string(::getpid()) + ".json");
  {
    // An older BEiT hub config: feature_extractor_type, int size and crop_size.
    std::ofstream f(path);
    f << R"({"crop_size": 224, "do_center_crop": false, "do_normalize": true, "do_resize": true,
             "feature_extractor_type": "BeitFeatureExtractor", "image_mean": [0.5, 0.5, 0.5],
             "image_std": [0.5, 0.5, 0.5], "resample": 2, "size": 224, "reduce_labels": true})";
  }
  ImageProcessor p = ImageProcessor::from_json_file(path);
  EXPECT_EQ(p.config().type, ImageProcessorType::Beit);
  EXPECT_EQ(p.config().size.height, 224);
  EXPECT_EQ(p.config().size.width, 224);
  EXPECT_FALSE(p.config().do_center_crop);
  EXPECT_EQ(p.config().resample, Resample::Bilinear);
  EXPECT_TRUE(p.config().do_reduce_labels);
  std::filesystem::remove(path);
  EXPECT_KILN_ERROR(ImageProcessor::from_json_file(path), path.string());

  // BiT: an int size is the shortest edge, a list is [height, width].
  auto bit = parse_image_processor_config(R"({"image_processor_type": "BitImageProcessor", "size": 448,
      "crop_size": [300, 200], "image_mean": 0.5, "image_std": null})",
                                          "bit.json");
  EXPECT_EQ(bit.size.shortest_edge, 448);
  EXPECT_EQ(bit.crop_height, 300);
  EXPECT_EQ(bit.crop_width, 200);
  EXPECT_EQ(bit.image_mean[2], 0.5);
  EXPECT_EQ(bit.image_std[0], 0.26862954);  // null: the default

  // transformers' private bookkeeping keys (newer versions save them) are ignored, as HF does.
  auto newer = parse_image_processor_config(R"({"image_processor_type": "BitImageProcessor",
      "processor_class": "BitImageProcessor", "_valid_processor_keys": ["images", "do_resize"]})",
                                            "newer.json");
  EXPECT_EQ(newer.size.shortest_edge, 224);
}

TEST(ImageProcessor, ConfigErrorsNameKeyAndFile) {
  const std::string head = R"({"image_processor_type": "BitImageProcessor", )";
  auto expect = [&](const std::string& body, const std::string& fragment) {
    try {
      parse_image_processor_config(head + body + "}", "cfg/preprocessor_config.json");
      ADD_FAILURE() << body << ": expected an error containing '" << fragment << "'";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("cfg/preprocessor_config.json"), std::string::npos) << msg;
      EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    }
  };
  expect(R"("crop_pct": 0.9)", "unknown key \"crop_pct\"");
  expect(R"("do_resize": 1)", "key \"do_resize\" must be true or false, got 1");
  expect(R"("size": {"shortest_edge": 224, "longest_edge": 300})", "key \"size\"");
  expect(R"("size": {"height": 224})", "key \"size\"");
  expect(R"("size": {"shortest_edge": -3})", "key \"size.shortest_edge\" must be a positive integer");
  expect(R"("size": "224")", "key \"size\"");
  expect(R"("crop_size": {"shortest_edge": 224})", "key \"crop_size\"");
  expect(R"("resample": 7)", "key \"resample\" must be a PIL filter number");
  expect(R"("resample": "bicubic")", "key \"resample\"");
  expect(R"("rescale_factor": "1/255")", "key \"rescale_factor\" must be a finite number");
  expect(R"("image_mean": [0.5, 0.5])", "key \"image_mean\" must be a number or a list of 3 numbers");
  expect(R"("image_std": [0.5, "a", 0.5])", "key \"image_std[1]\"");
  expect(R"("image_std": [0.5, 0, 0.5])", "image_std[1] is zero");
  expect(R"("do_reduce_labels": true)", "belongs to BeitImageProcessor");
  expect(R"("do_convert_rgb": null)", "key \"do_convert_rgb\" must be true or false");
  auto expect_whole = [&](const std::string& text, const std::string& fragment) {
    EXPECT_KILN_ERROR(parse_image_processor_config(text, "x.json"), fragment);
    EXPECT_KILN_ERROR(parse_image_processor_config(text, "x.json"), "x.json");
  };
  expect_whole(R"({"do_resize": true})", "no \"image_processor_type\"");
  expect_whole(R"({"image_processor_type": "ViTImageProcessor"})", "Kiln implements BitImageProcessor");
  expect_whole(R"({"image_processor_type": 3})", "must be a string");
  expect_whole(R"({"image_processor_type": "BitImageProcessor",)", "not valid JSON");
  expect_whole(R"([1, 2])", "expected a JSON object");
  // BEiT resizes to a fixed size only.
  expect_whole(R"({"image_processor_type": "BeitImageProcessor", "size": {"shortest_edge": 224}})",
               "key \"size\" must be {\"height\": h, \"width\": w}");
  ImageProcessorConfig bad = ImageProcessorConfig::beit();
  bad.size = ResizeTarget::shortest(224);
  EXPECT_KILN_ERROR(ImageProcessor{bad}, "BeitImageProcessor resizes to a fixed height and width");
}
