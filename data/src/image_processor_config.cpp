// ImageProcessorConfig: HF's defaults, validation, and preprocessor_config.json.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/core/error.h"
#include "kiln/data/image_processor.h"

namespace kiln::data {
namespace {

using nlohmann::json;

const char* type_name(ImageProcessorType t) {
  return t == ImageProcessorType::Bit ? "BitImageProcessor" : "BeitImageProcessor";
}

std::string describe(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s + " (" + v.type_name() + ")";
}

// Typed readers: each names the key and the file when the value is wrong.
struct Reader {
  const std::string& file;

  [[noreturn]] void fail(const std::string& key, const std::string& expected, const json& v) const {
    KILN_ERROR(file, ": key \"", key, "\" must be ", expected, ", got ", describe(v));
  }
  bool boolean(const std::string& key, const json& v) const {
    if (!v.is_boolean()) fail(key, "true or false", v);
    return v.get<bool>();
  }
  int64_t positive_int(const std::string& key, const json& v) const {
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(key, "a positive integer", v);
    return v.get<int64_t>();
  }
  double number(const std::string& key, const json& v) const {
    if (!v.is_number() || !std::isfinite(v.get<double>())) fail(key, "a finite number", v);
    return v.get<double>();
  }
  // A number (used for all three channels) or a list of three.
  std::array<double, 3> per_channel(const std::string& key, const json& v) const {
    if (v.is_number()) {
      double x = number(key, v);
      return {x, x, x};
    }
    if (!v.is_array() || v.size() != 3) fail(key, "a number or a list of 3 numbers (one per RGB channel)", v);
    std::array<double, 3> out{};
    for (size_t i = 0; i < 3; ++i) out[i] = number(key + "[" + std::to_string(i) + "]", v[i]);
    return out;
  }
  // HF's get_size_dict: an int, a [height, width] list, or a dict with
  // exactly {"shortest_edge"} or {"height", "width"}. An int means a square
  // when default_to_square, else the shortest edge.
  ResizeTarget size(const std::string& key, const json& v, bool default_to_square, bool allow_shortest) const {
    ResizeTarget t;
    if (v.is_number_integer()) {
      int64_t n = positive_int(key, v);
      t = default_to_square ? ResizeTarget::fixed(n, n) : ResizeTarget::shortest(n);
    } else if (v.is_array()) {
      if (v.size() != 2) fail(key, "a [height, width] list", v);
      t = ResizeTarget::fixed(positive_int(key + "[0]", v[0]), positive_int(key + "[1]", v[1]));
    } else if (v.is_object()) {
      if (v.size() == 1 && v.contains("shortest_edge")) {
        t = ResizeTarget::shortest(positive_int(key + ".shortest_edge", v["shortest_edge"]));
      } else if (v.size() == 2 && v.contains("height") && v.contains("width")) {
        t = ResizeTarget::fixed(positive_int(key + ".height", v["height"]), positive_int(key + ".width", v["width"]));
      } else {
        fail(key,
             allow_shortest ? "{\"shortest_edge\": n} or {\"height\": h, \"width\": w}"
                            : "{\"height\": h, \"width\": w}",
             v);
      }
    } else {
      fail(key, "an integer, a [height, width] list or a size dict", v);
    }
    if (t.is_shortest_edge() && !allow_shortest)
      fail(key, "{\"height\": h, \"width\": w} (this processor resizes to a fixed size)", v);
    return t;
  }
};

ImageProcessorType type_from(const json& j, const std::string& file) {
  for (const char* key : {"image_processor_type", "feature_extractor_type"}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_string()) KILN_ERROR(file, ": key \"", key, "\" must be a string, got ", describe(*it));
    const std::string name = it->get<std::string>();
    if (name == "BitImageProcessor" || name == "BitFeatureExtractor") return ImageProcessorType::Bit;
    if (name == "BeitImageProcessor" || name == "BeitFeatureExtractor") return ImageProcessorType::Beit;
    KILN_ERROR(file, ": key \"", key, "\" is \"", name, "\"; Kiln implements BitImageProcessor and BeitImageProcessor");
  }
  KILN_ERROR(file,
             ": no \"image_processor_type\" (or \"feature_extractor_type\") key: cannot tell which "
             "processor's defaults apply");
}

}  // namespace

ImageProcessorConfig ImageProcessorConfig::bit() { return ImageProcessorConfig{}; }

ImageProcessorConfig ImageProcessorConfig::beit() {
  ImageProcessorConfig c;
  c.type = ImageProcessorType::Beit;
  c.size = ResizeTarget::fixed(256, 256);
  c.image_mean = {0.5, 0.5, 0.5};  // IMAGENET_STANDARD_MEAN
  c.image_std = {0.5, 0.5, 0.5};   // IMAGENET_STANDARD_STD
  return c;
}

void ImageProcessorConfig::validate(const std::string& where) const {
  if (do_resize) {
    if (size.is_shortest_edge()) {
      KILN_CHECK(type == ImageProcessorType::Bit, where, ": ", type_name(type),
                 " resizes to a fixed height and width, not a shortest edge");
    } else {
      KILN_CHECK(size.height > 0 && size.width > 0, where, ": resize size must be positive, got height ", size.height,
                 ", width ", size.width);
    }
  }
  if (do_center_crop)
    KILN_CHECK(crop_height > 0 && crop_width > 0, where, ": crop size must be positive, got height ", crop_height,
               ", width ", crop_width);
  if (do_rescale) KILN_CHECK(std::isfinite(rescale_factor), where, ": rescale_factor must be finite");
  if (do_normalize)
    for (int c = 0; c < 3; ++c) {
      KILN_CHECK(std::isfinite(image_mean[c]) && std::isfinite(image_std[c]), where,
                 ": image_mean and image_std must be finite");
      KILN_CHECK(static_cast<float>(image_std[c]) != 0.0f, where, ": image_std[", c, "] is zero");
    }
}

ImageProcessorConfig parse_image_processor_config(const std::string& json_text, const std::string& name) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    KILN_ERROR(name, ": not valid JSON: ", e.what());
  }
  KILN_CHECK(j.is_object(), name, ": expected a JSON object, got ", j.type_name());
  const ImageProcessorType type = type_from(j, name);
  ImageProcessorConfig c = type == ImageProcessorType::Bit ? ImageProcessorConfig::bit() : ImageProcessorConfig::beit();
  const bool bit = type == ImageProcessorType::Bit;
  Reader r{name};
  bool saw_reduce = false;
  for (const auto& [key, v] : j.items()) {
    // HF's constructors treat null as "use the default" for these.
    if (v.is_null() && (key == "size" || key == "crop_size" || key == "image_mean" || key == "image_std")) continue;
    if (key == "image_processor_type" || key == "feature_extractor_type") {
      continue;  // read above
    } else if (!key.empty() && key[0] == '_') {
      continue;  // transformers' bookkeeping (newer versions write "_valid_processor_keys")
    } else if (key == "processor_class") {
      if (!v.is_string()) r.fail(key, "a string", v);
    } else if (key == "do_resize") {
      c.do_resize = r.boolean(key, v);
    } else if (key == "size") {
      // BiT: an int is the shortest edge; BEiT: a square.
      c.size = r.size(key, v, /*default_to_square=*/!bit, /*allow_shortest=*/bit);
    } else if (key == "resample") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 5)
        r.fail(key, "a PIL filter number (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)", v);
      c.resample = resample_from_pil(v.get<int64_t>());
    } else if (key == "do_center_crop") {
      c.do_center_crop = r.boolean(key, v);
    } else if (key == "crop_size") {
      ResizeTarget t = r.size(key, v, /*default_to_square=*/true, /*allow_shortest=*/false);
      c.crop_height = t.height, c.crop_width = t.width;
    } else if (key == "do_rescale") {
      c.do_rescale = r.boolean(key, v);
    } else if (key == "rescale_factor") {
      c.rescale_factor = r.number(key, v);
    } else if (key == "do_normalize") {
      c.do_normalize = r.boolean(key, v);
    } else if (key == "image_mean") {
      c.image_mean = r.per_channel(key, v);
    } else if (key == "image_std") {
      c.image_std = r.per_channel(key, v);
    } else if (key == "do_convert_rgb") {
      c.do_convert_rgb = r.boolean(key, v);
    } else if (key == "do_reduce_labels" || key == "reduce_labels") {
      KILN_CHECK(!bit, name, ": key \"", key, "\" belongs to BeitImageProcessor, not BitImageProcessor");
      KILN_CHECK(!saw_reduce, name, ": both \"do_reduce_labels\" and \"reduce_labels\" given");
      saw_reduce = true;
      c.do_reduce_labels = r.boolean(key, v);
    } else {
      KILN_ERROR(name, ": unknown key \"", key, "\" for ", type_name(type),
                 " (known: image_processor_type, do_resize, size, resample, do_center_crop, crop_size, do_rescale, "
                 "rescale_factor, do_normalize, image_mean, image_std, do_convert_rgb",
                 bit ? "" : ", do_reduce_labels", ")");
    }
  }
  c.validate(name);
  return c;
}

ImageProcessor ImageProcessor::from_json_file(const std::filesystem::path& path) {
  std::ifstream f(path);
  KILN_CHECK(f, "ImageProcessor::from_json_file: cannot open '", path.string(), "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ImageProcessor(parse_image_processor_config(ss.str(), path.string()));
}

}  // namespace kiln::data
