// ROOT/<class>/.../<file> in torchvision's ImageFolder order: the class
// directories sorted by name, then, inside each class, os.walk's directories
// sorted by path and each one's files sorted by name (so "a/z.png" comes
// before "a/b/x.png"). Only the file list is built here; nothing is decoded
// until load().
#include <algorithm>
#include <cctype>
#include <system_error>
#include <utility>

#include "kiln/core/error.h"
#include "kiln/data/dataset.h"

namespace kiln::data {
namespace fs = std::filesystem;
namespace {

bool has_image_extension(const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

bool is_dir(const fs::path& p) {  // follows symlinks, as os.scandir's is_dir()
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// The images under a class directory, in os.walk(followlinks=True) order
// after sorting: directories by their path string, files by name.
std::vector<fs::path> class_images(const fs::path& class_dir) {
  std::vector<std::pair<std::string, std::vector<std::string>>> dirs;  // (dir path, file names)
  std::vector<fs::path> pending{class_dir};
  while (!pending.empty()) {
    fs::path dir = std::move(pending.back());
    pending.pop_back();
    std::vector<std::string> names;
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    KILN_CHECK(!ec, "ImageFolderDataset: cannot list '", dir.string(), "': ", ec.message());
    for (; it != end; it.increment(ec)) {
      KILN_CHECK(!ec, "ImageFolderDataset: cannot list '", dir.string(), "': ", ec.message());
      const fs::path& p = it->path();
      if (is_dir(p)) {
        pending.push_back(p);
      } else if (has_image_extension(p)) {  // any non-directory, as os.walk's file list
        names.push_back(p.filename().string());
      }
    }
    std::sort(names.begin(), names.end());
    dirs.emplace_back(dir.string(), std::move(names));
  }
  std::sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<fs::path> files;
  for (const auto& [dir, names] : dirs)
    for (const auto& name : names) files.push_back(fs::path(dir) / name);
  return files;
}

}  // namespace

ImageFolderDataset::ImageFolderDataset(fs::path root, ImageFolderOptions options)
    : root_(std::move(root)), options_(options) {
  std::error_code ec;
  KILN_CHECK(fs::exists(root_, ec), "ImageFolderDataset: '", root_.string(), "' does not exist");
  KILN_CHECK(is_dir(root_), "ImageFolderDataset: '", root_.string(), "' is not a directory");
  fs::directory_iterator it(root_, ec), end;
  KILN_CHECK(!ec, "ImageFolderDataset: cannot list '", root_.string(), "': ", ec.message());
  for (; it != end; it.increment(ec)) {
    KILN_CHECK(!ec, "ImageFolderDataset: cannot list '", root_.string(), "': ", ec.message());
    if (is_dir(it->path())) classes_.push_back(it->path().filename().string());
  }
  KILN_CHECK(!classes_.empty(), "ImageFolderDataset: no class directories in '", root_.string(),
             "' (expected ROOT/<class>/<image>.{jpg,jpeg,png})");
  std::sort(classes_.begin(), classes_.end());
  for (size_t label = 0; label < classes_.size(); ++label) {
    std::vector<fs::path> images = class_images(root_ / classes_[label]);
    KILN_CHECK(!images.empty(), "ImageFolderDataset: class '", classes_[label], "' (",
               (root_ / classes_[label]).string(), ") has no .jpg, .jpeg or .png files");
    for (auto& file : images) {
      files_.push_back(std::move(file));
      labels_.push_back(static_cast<int64_t>(label));
    }
  }
}

int64_t ImageFolderDataset::size() const { return static_cast<int64_t>(files_.size()); }

const fs::path& ImageFolderDataset::path(int64_t index) const {
  KILN_CHECK(index >= 0 && index < size(), "ImageFolderDataset: index ", index, " out of range [0, ", size(), ")");
  return files_[static_cast<size_t>(index)];
}

Image ImageFolderDataset::load(int64_t index) const {
  const fs::path& file = path(index);
  try {
    return decode_image(file);
  } catch (const Error& e) {
    if (options_.skip_bad_images) throw SkippedImage(e.what());
    KILN_ERROR("ImageFolderDataset: ", e.what(), " (skip_bad_images is off; turn it on to skip unreadable images)");
  }
}

int64_t ImageFolderDataset::label(int64_t index) const {
  KILN_CHECK(index >= 0 && index < size(), "ImageFolderDataset: index ", index, " out of range [0, ", size(), ")");
  return labels_[static_cast<size_t>(index)];
}

const std::vector<std::string>& ImageFolderDataset::classes() const { return classes_; }

std::string ImageFolderDataset::describe(int64_t index) const { return path(index).string(); }

}  // namespace kiln::data
