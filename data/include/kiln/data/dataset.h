#pragma once
// Labelled image datasets for training: an index -> (pixels, label) map that
// many loader threads read at once. Decoding happens in load(), on the
// loader's worker threads; size(), label() and classes() are cheap.
//
//   ImageFolderDataset  ROOT/<class>/<file>.{jpg,jpeg,png} (any case), labels
//                       from the sorted class directory names, files sorted
//                       by path: torchvision's ImageFolder order.
//   IdxDataset          MNIST-format IDX image + label files, gzip'd or not
//                       (Fashion-MNIST from Debian's dataset-fashion-mnist).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/data/image.h"

namespace kiln::data {

class ImageDataset {
 public:
  virtual ~ImageDataset() = default;
  virtual int64_t size() const = 0;
  // The decoded pixels of example `index` (channels() channels). Thread-safe.
  // A file that cannot be read or decoded throws kiln::Error naming it.
  virtual Image load(int64_t index) const = 0;
  virtual int64_t label(int64_t index) const = 0;
  // Class names, label i = classes()[i].
  virtual const std::vector<std::string>& classes() const = 0;
  // 3 for decoded files (always RGB), 1 for greyscale IDX data.
  virtual int channels() const = 0;
  // What error messages call example `index`: its file, or "FILE[index]".
  virtual std::string describe(int64_t index) const = 0;
};

struct ImageFolderOptions {
  // Unreadable images: false = load() throws naming the file; true = the
  // constructor decodes nothing, but load() of a bad file throws
  // SkippedImage, which the loader catches, counts and replaces by the next
  // good example (so batches keep their size).
  bool skip_bad_images = false;
};

class ImageFolderDataset : public ImageDataset {
 public:
  // Errors: root missing or not a directory, no class directories, a class
  // with no images (named), all naming the path.
  explicit ImageFolderDataset(std::filesystem::path root, ImageFolderOptions options = {});
  int64_t size() const override;
  Image load(int64_t index) const override;
  int64_t label(int64_t index) const override;
  const std::vector<std::string>& classes() const override;
  int channels() const override { return 3; }
  std::string describe(int64_t index) const override;
  const std::filesystem::path& path(int64_t index) const;

 private:
  std::filesystem::path root_;
  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::vector<std::filesystem::path> files_;
  std::vector<int64_t> labels_;
};

// Thrown by load() for an unreadable image when the dataset skips them.
struct SkippedImage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class IdxDataset : public ImageDataset {
 public:
  // images: rank-3 uint8 IDX (N, H, W); labels: rank-1 uint8 IDX (N). Sizes
  // must agree. class_names empty: "0".."9" (or the label values present).
  IdxDataset(const std::filesystem::path& images, const std::filesystem::path& labels,
             std::vector<std::string> class_names = {});
  // DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]: split is "train"
  // or "test" (t10k). Fashion-MNIST's class names when fashion is true.
  static std::shared_ptr<IdxDataset> mnist_split(const std::filesystem::path& dir, const std::string& split,
                                                 bool fashion);
  int64_t size() const override;
  Image load(int64_t index) const override;
  int64_t label(int64_t index) const override;
  const std::vector<std::string>& classes() const override;
  int channels() const override { return 1; }
  std::string describe(int64_t index) const override;

 private:
  std::string images_name_;
  Tensor images_;  // uint8 (N, H, W)
  Tensor labels_;  // uint8 (N)
  std::vector<std::string> classes_;
};

// A uint8 tensor with the IDX file's shape (gzip'd or plain, by magic bytes).
// kiln::Error naming the path when it is missing, not IDX, another element
// type than unsigned byte, truncated, or has trailing bytes.
Tensor read_idx(const std::filesystem::path& path);

}  // namespace kiln::data
