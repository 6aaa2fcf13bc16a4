// Classifies images with a BiT (or any registered image classifier) saved in
// Hugging Face's layout, preprocessing them as its preprocessor_config.json
// says (BitImageProcessor's defaults when the file is absent):
//
//   bit_classify MODEL_DIR IMAGE [IMAGE...] [--top K]
//
// e.g. with google/bit-50 downloaded by `huggingface-cli download google/bit-50
// --local-dir bit-50` on a machine with network access.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "kiln/data/image.h"
#include "kiln/data/image_processor.h"
#include "kiln/kiln.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  int64_t top = 5;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::printf("usage: bit_classify MODEL_DIR IMAGE [IMAGE...] [--top K]\n");
      return 0;
    } else if (args[i] == "--top" && i + 1 < args.size()) {
      top = std::stoll(args[++i]);
    } else {
      positional.push_back(args[i]);
    }
  }
  if (positional.size() < 2 || top < 1) {
    std::fprintf(stderr, "usage: bit_classify MODEL_DIR IMAGE [IMAGE...] [--top K]\n");
    return 2;
  }
  try {
    const std::filesystem::path dir = positional[0];
    auto model = kiln::models::from_pretrained(dir);
    const auto processor_file = dir / "preprocessor_config.json";
    auto processor = std::filesystem::exists(processor_file) ? kiln::data::ImageProcessor::from_json_file(processor_file)
                                                             : kiln::data::ImageProcessor::bit();
    const auto& labels = model->pretrained_config().id2label;
    kiln::NoGradGuard no_grad;
    for (size_t i = 1; i < positional.size(); ++i) {
      kiln::Tensor pixels = processor(kiln::data::decode_image(positional[i]));
      kiln::Tensor logits = model->forward(kiln::models::ModelInputs{.pixel_values = pixels}).logits;
      KILN_CHECK(logits.defined(), dir.string(), " is a ", model->architecture(), ", not a classifier");
      kiln::Tensor probs = kiln::softmax(logits.select(0, 0), 0).contiguous();
      const float* p = probs.data_ptr<float>();
      std::vector<int64_t> order(static_cast<size_t>(probs.numel()));
      for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int64_t>(k);
      const int64_t k = std::min<int64_t>(top, probs.numel());
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [p](int64_t a, int64_t b) { return p[a] > p[b]; });
      std::printf("%s\n", positional[i].c_str());
      for (int64_t r = 0; r < k; ++r) {
        auto it = labels.find(order[r]);
        std::printf("  %6.2f%%  %s\n", 100.0 * p[order[r]],
                    it == labels.end() ? std::to_string(order[r]).c_str() : it->second.c_str());
      }
    }
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "bit_classify: %s\n", e.what());
    return 1;
  }
  return 0;
}
