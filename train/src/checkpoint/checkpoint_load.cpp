// load_checkpoint and inspect_checkpoint: every way a file can fail to be a
// good checkpoint becomes an error naming it, checked in the order that
// gives the most useful message (missing, not HDF5, not ours, too new,
// incomplete, corrupted).
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>

#include "checkpoint_format.h"
#include "kiln/train/checkpoint.h"

namespace kiln::train {

using detail::checkpoint_error;
using detail::CheckpointError;
using nn::serialize::Hdf5Attr;
using nn::serialize::Hdf5File;

namespace {

// An open checkpoint whose format and version have been checked.
class Reader {
 public:
  Reader(const char* op, const std::filesystem::path& path) : op_(op), path_(path.string()) {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
      if (errno == ENOENT) checkpoint_error(op_, ": checkpoint '", path_, "' does not exist");
      checkpoint_error(op_, ": checkpoint '", path_, "' cannot be read: ", std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) checkpoint_error(op_, ": checkpoint '", path_, "' is not a regular file");
    try {
      file_.emplace(path_, Hdf5File::Mode::Read);
    } catch (const Error& e) {
      // Hdf5File says "not an HDF5 file" for a foreign signature and quotes
      // HDF5 otherwise ("truncated file: eof = ...").
      checkpoint_error(op_, ": checkpoint '", path_,
                       "' is not a readable HDF5 file (not a checkpoint, or truncated): ", e.what());
    }
    guarded([&] {
      if (!file_->has_attr("", "format"))
        checkpoint_error(op_, ": '", path_, "' is not a Kiln checkpoint (it has no 'format' attribute)");
      Hdf5Attr format = file_->attr("", "format");
      if (!std::holds_alternative<std::string>(format) || std::get<std::string>(format) != detail::kFormat)
        checkpoint_error(op_, ": '", path_, "' is not a Kiln checkpoint (its 'format' attribute is not '",
                         detail::kFormat, "')");
      Hdf5Attr version = require_attr("format_version");
      if (!std::holds_alternative<int64_t>(version))
        checkpoint_error(op_, ": checkpoint '", path_, "' has a non-integer format_version");
      format_version_ = std::get<int64_t>(version);
      if (format_version_ > detail::kFormatVersion)
        checkpoint_error(op_, ": checkpoint '", path_, "' has format_version ", format_version_,
                         ", newer than this Kiln reads (up to ", detail::kFormatVersion,
                         "); it was written by a newer Kiln");
      if (format_version_ < 1)
        checkpoint_error(op_, ": checkpoint '", path_, "' has an invalid format_version ", format_version_);
      for (const char* group : detail::kGroups)
        if (!file_->is_group(group))
          checkpoint_error(op_, ": checkpoint '", path_, "' is incomplete: it has no group '", group, "'");
      checksum_ = std::get<std::string>(require_attr(detail::kChecksumAttr, true));
    });
  }

  // Runs f, turning errors from the HDF5 layer (a damaged file can fail
  // anywhere) into errors about the checkpoint.
  template <typename F>
  auto guarded(F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const CheckpointError&) {
      throw;
    } catch (const Error& e) {
      checkpoint_error(op_, ": checkpoint '", path_, "' is corrupted or unreadable: ", e.what());
    }
  }

  Hdf5Attr require_attr(const char* name, bool string = false) {
    return guarded([&] {
      if (!file_->has_attr("", name))
        checkpoint_error(op_, ": checkpoint '", path_, "' is incomplete: it has no attribute '", name, "'");
      Hdf5Attr v = file_->attr("", name);
      if (string && !std::holds_alternative<std::string>(v))
        checkpoint_error(op_, ": checkpoint '", path_, "': attribute '", name, "' is not a string");
      if (!string && !std::holds_alternative<int64_t>(v))
        checkpoint_error(op_, ": checkpoint '", path_, "': attribute '", name, "' is not an integer");
      return v;
    });
  }
  std::string string_attr(const char* name) { return std::get<std::string>(require_attr(name, true)); }
  int64_t int_attr(const char* name) { return std::get<int64_t>(require_attr(name)); }

  // Every attribute but the checksum, by name (as the writer fed them).
  void sum_attrs() {
    guarded([&] {
      std::vector<std::string> names = file_->attr_names("");
      std::sort(names.begin(), names.end());
      for (const auto& name : names)
        if (name != detail::kChecksumAttr) sum_.add_attr(name, file_->attr("", name));
    });
  }

  // Calls f(group index, name, tensor) for every dataset of every group, in
  // checksum order, adding each to the checksum; tensors are read one at a
  // time so verifying never holds more than one in memory.
  void each_tensor(const std::function<void(size_t, const std::string&, Tensor)>& f) {
    for (size_t g = 0; g < detail::kGroups.size(); ++g) {
      const char* group = detail::kGroups[g];
      for (const auto& name : guarded([&] { return file_->datasets(group); })) {
        Tensor t = guarded([&] { return file_->read_tensor(group, name); });
        sum_.add_tensor(group, name, t);
        f(g, name, std::move(t));
      }
    }
  }

  // Call after each_tensor: the attributes follow the tensors, as written.
  void verify() {
    sum_attrs();
    if (sum_.hex() != checksum_)
      checkpoint_error(op_, ": checkpoint '", path_, "' is corrupted: checksum mismatch (stored ", checksum_,
                       ", computed ", sum_.hex(), ")");
  }

  Hdf5File& file() { return *file_; }
  int64_t format_version() const { return format_version_; }
  const std::string& path() const { return path_; }

 private:
  const char* op_;
  std::string path_;
  std::optional<Hdf5File> file_;
  int64_t format_version_ = 0;
  std::string checksum_;
  detail::Checksum sum_;
};

}  // namespace

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  const char* op = "load_checkpoint";
  Reader r(op, path);
  Checkpoint c;
  c.format_version = r.format_version();
  c.kiln_version = r.string_attr("kiln_version");
  c.step = r.int_attr("step");
  c.epoch = r.int_attr("epoch");
  c.config_yaml = r.string_attr("config_yaml");
  c.metrics_json = r.string_attr("metrics_json");
  c.trainer_json = r.string_attr("trainer_json");

  nn::StateDict rng;
  nn::StateDict* dest[] = {&c.model, &c.optimizer, &c.scheduler, &rng, &c.extra};
  static_assert(std::size(dest) == detail::kGroups.size());
  r.each_tensor([&](size_t g, const std::string& name, Tensor t) { dest[g]->insert(name, std::move(t)); });
  // The checksum first: a damaged file must say so, not that some value in
  // it looks odd.
  r.verify();

  auto rng_value = [&](const char* name) -> int64_t {
    const Tensor* t = rng.find(name);
    if (!t) checkpoint_error(op, ": checkpoint '", r.path(), "' is incomplete: it has no dataset 'rng/", name, "'");
    if (t->dtype() != kInt64 || t->dim() != 0)
      checkpoint_error(op, ": checkpoint '", r.path(), "': 'rng/", name, "' must be a 0-dim int64 tensor");
    return *t->data_ptr<int64_t>();
  };
  c.generator_seed = static_cast<uint64_t>(rng_value("generator_seed"));
  c.generator_offset = static_cast<uint64_t>(rng_value("generator_offset"));
  c.loader_epoch = rng_value("loader_epoch");
  c.loader_batch = rng_value("loader_batch");
  return c;
}

CheckpointSummary inspect_checkpoint(const std::filesystem::path& path, bool verify) {
  Reader r("inspect_checkpoint", path);
  CheckpointSummary s;
  s.format_version = r.format_version();
  s.kiln_version = r.string_attr("kiln_version");
  s.step = r.int_attr("step");
  s.epoch = r.int_attr("epoch");
  s.config_yaml = r.string_attr("config_yaml");
  s.metrics_json = r.string_attr("metrics_json");
  s.trainer_json = r.string_attr("trainer_json");
  if (verify) {
    r.each_tensor([&](size_t g, const std::string& name, const Tensor& t) {
      s.tensors.push_back({std::string(detail::kGroups[g]) + "/" + name,
                           {dtype_name(t.dtype()), std::vector<int64_t>(t.sizes().begin(), t.sizes().end())}});
    });
    r.verify();
    return s;
  }
  for (const char* group : detail::kGroups) {
    for (const auto& name : r.guarded([&] { return r.file().datasets(group); })) {
      auto info = r.guarded([&] { return r.file().dataset_info(std::string(group) + "/" + name); });
      s.tensors.push_back({std::string(group) + "/" + name, {dtype_name(info.dtype), info.shape}});
    }
  }
  return s;
}

}  // namespace kiln::train
