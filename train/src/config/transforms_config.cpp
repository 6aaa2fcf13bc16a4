// Transform lists in YAML, both ways: each entry a bare name (`- to_tensor`)
// or a single-key map of its options (`- random_crop: {size: 28, padding: 2}`).
// Every value is checked here with its own line; data::Transforms is then
// built once as the final word on the list as a whole.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kiln/data/image_processor.h"
#include "sections.h"

namespace kiln::train::config {

namespace fs = std::filesystem;
using namespace kiln::data;

namespace {

const std::vector<std::string> kNames = {"random_resized_crop", "random_crop", "horizontal_flip", "resize",
                                         "center_crop",         "to_tensor",   "normalize",       "processor"};

std::vector<std::string> resample_names() {
  std::vector<std::string> names;
  for (int i = 0; i <= 5; ++i) names.push_back(resample_name(static_cast<Resample>(i)));
  return names;
}

void read_interpolation(const MapReader& r, Resample& out) {
  if (!r.has("interpolation")) return;
  std::string name;
  r.read_choice("interpolation", name, resample_names());
  for (int i = 0; i <= 5; ++i)
    if (name == resample_name(static_cast<Resample>(i))) out = static_cast<Resample>(i);
}

// `size`: one positive integer (a square) or [height, width].
void read_size(const MapReader& r, const std::string& key, int64_t& height, int64_t& width) {
  const YAML::Node v = r.get(key);
  if (v.IsSequence()) {
    if (v.size() != 2) r.fail(key, "expected one integer or [height, width], got a list of " + std::to_string(v.size()));
    height = to_int(r.ctx(), r.key_path(key) + "[0]", v[0]);
    width = to_int(r.ctx(), r.key_path(key) + "[1]", v[1]);
  } else if (v.IsScalar()) {
    height = width = to_int(r.ctx(), r.key_path(key), v);
  } else {
    r.fail(key, "expected one integer or [height, width], got " + describe(v));
  }
  if (height < 1 || width < 1) r.fail(key, "must be positive, got " + yaml_list(std::vector<int64_t>{height, width}));
}

// [min, max] with 0 < min <= max.
void read_range(const MapReader& r, const std::string& key, double& lo, double& hi) {
  if (!r.has(key)) return;
  std::vector<double> v;
  r.read(key, v);
  if (v.size() != 2) r.fail(key, "expected [min, max], got " + yaml_list(v));
  if (!(v[0] > 0 && v[0] <= v[1])) r.fail(key, "expected 0 < min <= max, got " + yaml_list(v));
  lo = v[0], hi = v[1];
}

// A per-channel list, or one number for every channel.
std::vector<double> read_channels(const MapReader& r, const std::string& key) {
  if (!r.has(key)) r.fail_missing(key, "one number, or one per channel");
  const YAML::Node v = r.get(key);
  if (v.IsScalar()) return {to_double(r.ctx(), r.key_path(key), v)};
  std::vector<double> out;
  r.read(key, out);
  if (out.empty()) r.fail(key, "must not be empty");
  return out;
}

NormalizeSpec read_normalize(const Context& ctx, const YAML::Node& args, const std::string& path, YAML::Mark mark) {
  if (args.IsScalar() && !is_null(args)) {
    const std::string name = args.Scalar();
    if (name == "imagenet" || name == "imagenet_default") return {{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};
    if (name == "half") return {{0.5}, {0.5}};
    const std::vector<std::string> known{"imagenet", "imagenet_default", "half"};
    ctx.fail(path, args.Mark(),
             "'" + name + "' is not a known normalization (" + one_of(known) + ", or {mean: [...], std: [...]})" +
                 (nearest(name, known).empty() ? "" : " (did you mean '" + nearest(name, known) + "'?)"));
  }
  if (is_null(args)) ctx.fail(path, mark, "needs {mean: [...], std: [...]} or a name (imagenet, half)");
  MapReader r(ctx, args, path, {"mean", "std"}, mark);
  NormalizeSpec s{read_channels(r, "mean"), read_channels(r, "std")};
  for (double d : s.std)
    if (d == 0) r.fail("std", "must be nonzero, got " + yaml_list(s.std));
  return s;
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ProcessorSpec read_processor(const Context& ctx, const YAML::Node& args, const std::string& path, YAML::Mark mark) {
  if (is_null(args)) ctx.fail(path, mark, "needs a model directory or a preprocessor_config.json file");
  std::string json_text, name;
  YAML::Mark where = args.Mark();
  if (args.IsScalar()) {
    fs::path file = args.Scalar();
    if (fs::is_directory(file)) file /= "preprocessor_config.json";
    if (!fs::is_regular_file(file)) ctx.fail(path, where, "'" + file.string() + "' does not exist");
    json_text = read_text_file(file);
    name = file.string();
  } else if (args.IsMap()) {
    // The preprocessor_config.json keys inline, as to_yaml writes them.
    json_text = to_json(ctx, path, args).dump();
    name = path;
  } else {
    ctx.fail(path, where, "expected a model directory, a preprocessor_config.json file or its keys, got " +
                              describe(args));
  }
  try {
    return ProcessorSpec{parse_image_processor_config(json_text, name)};
  } catch (const ConfigError&) {
    throw;
  } catch (const kiln::Error& e) {
    ctx.fail(path, where, e.what());
  }
}

TransformSpec read_one(const Context& ctx, const std::string& name, const YAML::Node& args, const std::string& path,
                       YAML::Mark mark) {
  auto options = [&](std::vector<std::string> keys) {
    if (!is_null(args) && !args.IsMap()) {
      ctx.fail(path, args.Mark(), "expected a map of options (" + one_of(keys) + "), got " + describe(args));
    }
    return MapReader(ctx, args, path, std::move(keys), mark);
  };
  if (name == "random_resized_crop") {
    MapReader r = options({"size", "scale", "ratio", "interpolation"});
    RandomResizedCropSpec s;
    if (r.has("size")) read_size(r, "size", s.height, s.width);
    read_range(r, "scale", s.scale_min, s.scale_max);
    if (s.scale_max > 1) r.fail("scale", "is a fraction of the image's area, at most 1, got max " + yaml_double(s.scale_max));
    read_range(r, "ratio", s.ratio_min, s.ratio_max);
    read_interpolation(r, s.interpolation);
    return s;
  }
  if (name == "random_crop") {
    MapReader r = options({"size", "padding"});
    RandomCropSpec s;
    if (!r.has("size")) r.fail_missing("size", "the crop's size, one integer or [height, width]");
    read_size(r, "size", s.height, s.width);
    r.read("padding", s.padding);
    if (s.padding < 0) r.fail("padding", "must be >= 0, got " + std::to_string(s.padding));
    return s;
  }
  if (name == "horizontal_flip") {
    MapReader r = options({"p"});
    HorizontalFlipSpec s;
    r.read("p", s.p);
    if (!(s.p >= 0 && s.p <= 1)) r.fail("p", "is a probability in [0, 1], got " + yaml_double(s.p));
    return s;
  }
  if (name == "resize") {
    MapReader r = options({"size", "height", "width", "interpolation"});
    ResizeSpec s;
    if (r.has("size")) {
      if (r.has("height") || r.has("width")) r.fail("size", "give size or height and width, not both");
      if (r.get("size").IsSequence()) {
        read_size(r, "size", s.height, s.width);
      } else {
        read_size(r, "size", s.shortest_edge, s.width);
        s.width = 0;
      }
    } else {
      if (!r.has("height") || !r.has("width")) {
        r.fail_missing(r.has("height") ? "width" : "height",
                       "size (the shortest edge, or [height, width]) or both height and width");
      }
      r.read("height", s.height);
      r.read("width", s.width);
      if (s.height < 1) r.fail("height", "must be positive, got " + std::to_string(s.height));
      if (s.width < 1) r.fail("width", "must be positive, got " + std::to_string(s.width));
    }
    read_interpolation(r, s.interpolation);
    return s;
  }
  if (name == "center_crop") {
    MapReader r = options({"size"});
    CenterCropSpec s;
    if (!r.has("size")) r.fail_missing("size", "the crop's size, one integer or [height, width]");
    read_size(r, "size", s.height, s.width);
    return s;
  }
  if (name == "to_tensor") {
    options({});
    return ToTensorSpec{};
  }
  if (name == "normalize") return read_normalize(ctx, args, path, mark);
  return read_processor(ctx, args, path, mark);
}

static_assert(std::variant_size_v<TransformSpec> == 8, "a new transform needs its config name in kNames");

// The config name of a spec: kNames follows the variant's order.
const std::string& name_of(const TransformSpec& s) { return kNames[s.index()]; }

bool is_conversion(const TransformSpec& s) {
  return std::holds_alternative<ToTensorSpec>(s) || std::holds_alternative<ProcessorSpec>(s);
}

}  // namespace

std::vector<TransformSpec> read_transforms(const Context& ctx, const YAML::Node& node, const std::string& path,
                                           YAML::Mark parent, int channels) {
  if (is_null(node)) return {ToTensorSpec{}};
  if (!node.IsSequence()) {
    ctx.fail(path, node.Mark(), "expected a list of transforms (- NAME or - NAME: {options}), got " + describe(node));
  }
  std::vector<TransformSpec> specs;
  std::vector<YAML::Mark> marks;
  std::vector<std::string> paths;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node entry = node[i];
    const std::string item = path + "[" + std::to_string(i) + "]";
    std::string name;
    YAML::Node args(YAML::NodeType::Undefined);
    if (entry.IsScalar()) {
      name = entry.Scalar();
    } else if (entry.IsMap() && entry.size() == 1) {
      name = entry.begin()->first.Scalar();
      args = entry.begin()->second;
    } else {
      ctx.fail(item, entry.Mark(), "expected NAME or NAME: {options} (one transform per list entry), got " +
                                       describe(entry));
    }
    if (std::find(kNames.begin(), kNames.end(), name) == kNames.end()) {
      const std::string guess = nearest(name, kNames);
      ctx.fail(item, entry.Mark(), "unknown transform '" + name + "'" +
                                       (guess.empty() ? " (known: " + one_of(kNames) + ")" : " (did you mean '" + guess + "'?)"));
    }
    const YAML::Mark mark = entry.Mark().is_null() ? parent : entry.Mark();
    specs.push_back(read_one(ctx, name, args, item + "." + name, mark));
    marks.push_back(mark);
    paths.push_back(item + "." + name);
  }
  // The list's shape: pixel ops, one conversion to a tensor, then normalize.
  size_t conversions = 0, conversion_at = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!is_conversion(specs[i])) continue;
    if (++conversions == 2) {
      ctx.fail(paths[i], marks[i], "a second to_tensor/processor; the list converts to a tensor exactly once");
    }
    conversion_at = i;
  }
  if (conversions == 0) {
    ctx.fail(path, node.Mark().is_null() ? parent : node.Mark(),
             "has no to_tensor (or processor): the list must convert the image to a tensor once");
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto* n = std::get_if<NormalizeSpec>(&specs[i]);
    // After a processor the image is RGB whatever the dataset's channels.
    const size_t c = std::holds_alternative<ProcessorSpec>(specs[conversion_at]) ? 3 : static_cast<size_t>(channels);
    if (n && c > 0) {
      for (const auto* values : {&n->mean, &n->std}) {
        if (values->size() != 1 && values->size() != c) {
          ctx.fail(paths[i], marks[i], "has " + std::to_string(values->size()) + (values == &n->mean ? " means" : " stds") +
                                           " for images of " + std::to_string(c) + " channel" + (c == 1 ? "" : "s") +
                                           " (give 1 or " + std::to_string(c) + ")");
        }
      }
    }
    const bool normalize = n != nullptr;
    if (i < conversion_at && normalize) ctx.fail(paths[i], marks[i], "normalize works on tensors: put it after to_tensor");
    if (i > conversion_at && !normalize) {
      ctx.fail(paths[i], marks[i], name_of(specs[i]) + " works on images: put it before " + name_of(specs[conversion_at]));
    }
  }
  try {
    Transforms check(specs);
  } catch (const kiln::Error& e) {
    // Its message names the transform; point at that entry when it is unique.
    const std::string what = e.what();
    size_t best = std::string::npos, at = 0;
    for (size_t i = 0; i < specs.size(); ++i) {
      const size_t pos = what.find(name_of(specs[i]));
      if (pos != std::string::npos && pos < best) best = pos, at = i;
    }
    if (best == std::string::npos) ctx.fail(path, node.Mark(), what);
    ctx.fail(paths[at], marks[at], what);
  }
  return specs;
}

namespace {

std::string size_text(int64_t height, int64_t width) {
  return height == width ? std::to_string(height) : yaml_list(std::vector<int64_t>{height, width});
}

std::string processor_to_yaml(const ImageProcessorConfig& c) {
  const bool bit = c.type == ImageProcessorType::Bit;
  std::string out = std::string("{image_processor_type: ") + (bit ? "BitImageProcessor" : "BeitImageProcessor");
  out += ", do_resize: " + std::string(c.do_resize ? "true" : "false");
  out += ", size: " + (c.size.is_shortest_edge()
                           ? "{shortest_edge: " + std::to_string(c.size.shortest_edge) + "}"
                           : "{height: " + std::to_string(c.size.height) + ", width: " + std::to_string(c.size.width) + "}");
  out += ", resample: " + std::to_string(static_cast<int>(c.resample));
  out += ", do_center_crop: " + std::string(c.do_center_crop ? "true" : "false");
  out += ", crop_size: {height: " + std::to_string(c.crop_height) + ", width: " + std::to_string(c.crop_width) + "}";
  out += ", do_rescale: " + std::string(c.do_rescale ? "true" : "false");
  out += ", rescale_factor: " + yaml_double(c.rescale_factor);
  out += ", do_normalize: " + std::string(c.do_normalize ? "true" : "false");
  out += ", image_mean: " + yaml_list(std::vector<double>(c.image_mean.begin(), c.image_mean.end()));
  out += ", image_std: " + yaml_list(std::vector<double>(c.image_std.begin(), c.image_std.end()));
  out += ", do_convert_rgb: " + std::string(c.do_convert_rgb ? "true" : "false");
  if (!bit) out += ", do_reduce_labels: " + std::string(c.do_reduce_labels ? "true" : "false");
  return out + "}";
}

}  // namespace

std::string transform_to_yaml(const TransformSpec& spec) {
  const std::string& name = name_of(spec);
  return std::visit(
      [&](const auto& s) -> std::string {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, RandomResizedCropSpec>) {
          return name + ": {size: " + size_text(s.height, s.width) + ", scale: " +
                 yaml_list(std::vector<double>{s.scale_min, s.scale_max}) +
                 ", ratio: " + yaml_list(std::vector<double>{s.ratio_min, s.ratio_max}) +
                 ", interpolation: " + resample_name(s.interpolation) + "}";
        } else if constexpr (std::is_same_v<T, RandomCropSpec>) {
          return name + ": {size: " + size_text(s.height, s.width) + ", padding: " + std::to_string(s.padding) + "}";
        } else if constexpr (std::is_same_v<T, HorizontalFlipSpec>) {
          return name + ": {p: " + yaml_double(s.p) + "}";
        } else if constexpr (std::is_same_v<T, ResizeSpec>) {
          const std::string size = s.shortest_edge > 0 ? std::to_string(s.shortest_edge)
                                                       : yaml_list(std::vector<int64_t>{s.height, s.width});
          return name + ": {size: " + size + ", interpolation: " + resample_name(s.interpolation) + "}";
        } else if constexpr (std::is_same_v<T, CenterCropSpec>) {
          return name + ": {size: " + size_text(s.height, s.width) + "}";
        } else if constexpr (std::is_same_v<T, ToTensorSpec>) {
          return name;
        } else if constexpr (std::is_same_v<T, NormalizeSpec>) {
          return name + ": {mean: " + yaml_list(s.mean) + ", std: " + yaml_list(s.std) + "}";
        } else {
          return name + ": " + processor_to_yaml(s.config);
        }
      },
      spec);
}

}  // namespace kiln::train::config
