// MNIST-format data sets: the whole IDX image and label files are read into
// memory once (Fashion-MNIST's training set is 47 MB); load() copies one
// greyscale image out.
#include <algorithm>
#include <cstring>
#include <system_error>

#include "kiln/core/error.h"
#include "kiln/data/dataset.h"

namespace kiln::data {
namespace fs = std::filesystem;
namespace {

// DIR/PREFIX-KIND-ubyte.gz, or the uncompressed file when only that exists.
fs::path idx_file(const fs::path& dir, const std::string& prefix, const std::string& kind) {
  const fs::path plain = dir / (prefix + "-" + kind + "-ubyte");
  fs::path gz = plain;
  gz += ".gz";
  std::error_code ec;
  if (fs::exists(gz, ec)) return gz;
  if (fs::exists(plain, ec)) return plain;
  KILN_ERROR("IdxDataset: neither '", gz.string(), "' nor '", plain.string(), "' exists");
}

}  // namespace

IdxDataset::IdxDataset(const fs::path& images, const fs::path& labels, std::vector<std::string> class_names)
    : images_name_(images.string()), classes_(std::move(class_names)) {
  images_ = read_idx(images);
  labels_ = read_idx(labels);
  KILN_CHECK(images_.dim() == 3, "IdxDataset: '", images.string(), "' holds shape ", images_.sizes(),
             "; images need rank 3 (N, height, width)");
  KILN_CHECK(labels_.dim() == 1, "IdxDataset: '", labels.string(), "' holds shape ", labels_.sizes(),
             "; labels need rank 1 (N)");
  KILN_CHECK(images_.size(0) == labels_.size(0), "IdxDataset: '", images.string(), "' has ", images_.size(0),
             " images but '", labels.string(), "' has ", labels_.size(0), " labels");
  KILN_CHECK(images_.size(1) > 0 && images_.size(2) > 0, "IdxDataset: '", images.string(), "' holds empty images ",
             images_.sizes());
  const uint8_t* l = labels_.data_ptr<uint8_t>();
  const int64_t n = labels_.size(0);
  const int max_label = n == 0 ? 0 : *std::max_element(l, l + n);
  if (classes_.empty()) {
    // "0".."9", or as many as the labels need.
    for (int c = 0; c < std::max(10, max_label + 1); ++c) classes_.push_back(std::to_string(c));
  } else {
    KILN_CHECK(max_label < static_cast<int>(classes_.size()), "IdxDataset: '", labels.string(), "' has label ",
               max_label, " but only ", classes_.size(), " class names were given");
  }
}

std::shared_ptr<IdxDataset> IdxDataset::mnist_split(const fs::path& dir, const std::string& split, bool fashion) {
  KILN_CHECK(split == "train" || split == "test",
             "IdxDataset::mnist_split: split must be \"train\" or \"test\", got \"", split, "\"");
  const std::string prefix = split == "train" ? "train" : "t10k";
  std::vector<std::string> names;
  if (fashion)
    names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  const fs::path images = idx_file(dir, prefix, "images-idx3");
  const fs::path labels = idx_file(dir, prefix, "labels-idx1");
  return std::make_shared<IdxDataset>(images, labels, std::move(names));
}

int64_t IdxDataset::size() const { return images_.size(0); }

Image IdxDataset::load(int64_t index) const {
  KILN_CHECK(index >= 0 && index < size(), "IdxDataset: index ", index, " out of range [0, ", size(), ") of '",
             images_name_, "'");
  const int64_t h = images_.size(1), w = images_.size(2);
  Image image(w, h, 1);
  std::memcpy(image.pixels.data(), images_.data_ptr<uint8_t>() + index * h * w, static_cast<size_t>(h * w));
  return image;
}

int64_t IdxDataset::label(int64_t index) const {
  KILN_CHECK(index >= 0 && index < size(), "IdxDataset: index ", index, " out of range [0, ", size(), ") of '",
             images_name_, "'");
  return labels_.data_ptr<uint8_t>()[index];
}

const std::vector<std::string>& IdxDataset::classes() const { return classes_; }

std::string IdxDataset::describe(int64_t index) const { return images_name_ + "[" + std::to_string(index) + "]"; }

}  // namespace kiln::data
