// The data section: the train and eval datasets (their files must exist
// now, not an hour into the run), batch sizes and the loader's settings.
#include <filesystem>

#include "sections.h"

namespace kiln::train::config {

namespace fs = std::filesystem;

namespace {

// IdxDataset::mnist_split's file names: DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
void check_idx_files(const MapReader& r, const std::string& dir, const std::string& split) {
  const std::string prefix = split == "train" ? "train" : "t10k";
  for (const char* kind : {"images-idx3", "labels-idx1"}) {
    const std::string name = prefix + "-" + kind + "-ubyte";
    if (!fs::exists(fs::path(dir) / name) && !fs::exists(fs::path(dir) / (name + ".gz"))) {
      r.fail("path", "directory '" + dir + "' has no " + name + " (nor " + name + ".gz) for split " + split);
    }
  }
}

DatasetSection read_dataset(const Context& ctx, const YAML::Node& node, const std::string& path, YAML::Mark parent) {
  MapReader r(ctx, node, path, {"type", "path", "split", "classes", "skip_bad_images", "limit", "transforms"}, parent);
  DatasetSection s;
  if (!r.has("type")) r.fail_missing("type", "image_folder or idx");
  r.read_choice("type", s.type, {"image_folder", "idx"});
  if (!r.has("path")) {
    r.fail_missing("path", s.type == "idx" ? "the directory holding the IDX files" : "the dataset's root directory");
  }
  r.read("path", s.path);
  if (s.path.empty()) r.fail("path", "must not be empty");
  if (!fs::exists(s.path)) r.fail("path", "directory '" + s.path + "' does not exist");
  if (!fs::is_directory(s.path)) r.fail("path", "'" + s.path + "' is not a directory");
  r.read("split", s.split);
  r.read("classes", s.classes);
  r.read("skip_bad_images", s.skip_bad_images);
  if (s.type == "idx") {
    if (!r.has("split")) r.fail_missing("split", "train or test");
    r.read_choice("split", s.split, {"train", "test"});
    if (s.classes.empty()) s.classes = "fashion_mnist";
    r.read_choice("classes", s.classes, {"fashion_mnist", "mnist"});
    if (s.skip_bad_images) r.fail("skip_bad_images", "is an image_folder setting; the type is idx");
    check_idx_files(r, s.path, s.split);
  } else {
    if (!s.split.empty()) r.fail("split", "is an idx setting; the type is image_folder (its split is its folder)");
    if (!s.classes.empty()) {
      r.fail("classes", "is an idx setting; an image_folder's classes are its subdirectories");
    }
  }
  r.read("limit", s.limit);
  if (s.limit < 0) r.fail("limit", "must be >= 0 (0: every example), got " + std::to_string(s.limit));
  // IDX images are greyscale; decoded files are always RGB.
  s.transforms = read_transforms(ctx, r.get("transforms"), r.key_path("transforms"), r.key_mark("transforms"),
                                 s.type == "idx" ? 1 : 3);
  return s;
}

}  // namespace

void read_data_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& c) {
  MapReader r(ctx, node, "data",
              {"train", "eval", "batch_size", "eval_batch_size", "workers", "prefetch", "shuffle", "drop_last"}, parent);
  DataSection& s = c.data;
  if (!r.has("train")) r.fail_missing("train", "the training dataset, with type and path");
  s.train = read_dataset(ctx, r.get("train"), "data.train", r.key_mark("train"));
  if (r.has("eval")) s.eval = read_dataset(ctx, r.get("eval"), "data.eval", r.key_mark("eval"));
  r.read("batch_size", s.batch_size);
  if (s.batch_size < 1) r.fail("batch_size", "must be >= 1, got " + std::to_string(s.batch_size));
  r.read("eval_batch_size", s.eval_batch_size);
  if (s.eval_batch_size < 0) {
    r.fail("eval_batch_size", "must be >= 1 (or 0 for batch_size), got " + std::to_string(s.eval_batch_size));
  }
  if (s.eval_batch_size == 0) s.eval_batch_size = s.batch_size;
  r.read("workers", s.workers);
  if (s.workers < 0) r.fail("workers", "must be >= 0 (0: load on the training thread), got " + std::to_string(s.workers));
  r.read("prefetch", s.prefetch);
  if (s.prefetch < 1) r.fail("prefetch", "must be >= 1, got " + std::to_string(s.prefetch));
  r.read("shuffle", s.shuffle);
  r.read("drop_last", s.drop_last);
}

}  // namespace kiln::train::config
