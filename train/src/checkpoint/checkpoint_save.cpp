// save_checkpoint: the HDF5 layout of checkpoint.h, written beside the target
// and renamed over it only once it is complete and on disk.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "checkpoint_format.h"
#include "kiln/core/native.h"
#include "kiln/train/checkpoint.h"
#include "version.h"

namespace kiln::train {

using nn::serialize::Hdf5Attr;
using nn::serialize::Hdf5File;

namespace {

// Contiguous CPU copies (the tensors themselves when they already are): the
// bytes the checksum covers are exactly the bytes written.
nn::StateDict host_copy(const nn::StateDict& dict, const std::string& group, const std::string& file) {
  nn::StateDict out;
  for (const auto& item : dict) {
    KILN_CHECK(item.value.defined(), "save_checkpoint: '", file, "': ", group, " entry '", item.key,
               "' is an undefined tensor");
    const Tensor& t = item.value;
    out.insert(item.key, native::contiguous(t.is_cpu() ? t : native::to(t, Device(kCPU))));
  }
  return out;
}

Tensor int64_scalar(int64_t v) {
  Tensor t = native::empty({}, TensorOptions().dtype(kInt64));
  *t.data_ptr<int64_t>() = v;
  return t;
}

void fsync_path(const std::string& path, bool directory, const std::string& target) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0 && directory) return;  // see below
  if (fd < 0) KILN_ERROR("save_checkpoint: '", target, "': cannot open '", path, "' to sync it: ", std::strerror(errno));
  int r = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // A directory fsync some filesystems refuse (EINVAL) costs durability of
  // the name only, never a torn file, so only the file's own sync is fatal.
  if (r != 0 && !directory)
    KILN_ERROR("save_checkpoint: '", target, "': fsync of '", path, "' failed: ", std::strerror(err));
}

void write_file(const std::string& tmp, const std::string& target, const Checkpoint& c) {
  std::array<nn::StateDict, detail::kGroups.size()> groups;
  groups[0] = host_copy(c.model, "model", target);
  groups[1] = host_copy(c.optimizer, "optimizer", target);
  groups[2] = host_copy(c.scheduler, "scheduler", target);
  // The seed and offset are uint64 stored bit for bit in int64 datasets.
  groups[3].insert("generator_seed", int64_scalar(static_cast<int64_t>(c.generator_seed)));
  groups[3].insert("generator_offset", int64_scalar(static_cast<int64_t>(c.generator_offset)));
  groups[3].insert("loader_epoch", int64_scalar(c.loader_epoch));
  groups[3].insert("loader_batch", int64_scalar(c.loader_batch));
  groups[4] = host_copy(c.extra, "extra", target);

  // Attributes enter the checksum sorted by name, which is also how the
  // reader walks whatever attributes it finds.
  std::map<std::string, Hdf5Attr> attrs{
      {"format", std::string(detail::kFormat)},
      {"format_version", detail::kFormatVersion},
      {"kiln_version", std::string(detail::kKilnVersion)},
      {"step", c.step},
      {"epoch", c.epoch},
      {"config_yaml", c.config_yaml},
      {"metrics_json", c.metrics_json},
      {"trainer_json", c.trainer_json},
  };

  detail::Checksum sum;
  for (size_t g = 0; g < groups.size(); ++g)
    for (const auto& item : groups[g]) sum.add_tensor(detail::kGroups[g], item.key, item.value);
  for (const auto& [name, value] : attrs) sum.add_attr(name, value);

  Hdf5File file(tmp, Hdf5File::Mode::Create);
  for (const auto& [name, value] : attrs) file.set_attr("", name, value);
  for (size_t g = 0; g < groups.size(); ++g) file.write_state_dict(detail::kGroups[g], groups[g]);
  file.set_attr("", detail::kChecksumAttr, sum.hex());
  file.close();
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint) {
  const std::string target = path.string();
  KILN_CHECK(path.has_filename(), "save_checkpoint: '", target, "' does not name a file");
  std::filesystem::path dir = path.parent_path();
  std::error_code ec;
  KILN_CHECK(dir.empty() || std::filesystem::is_directory(dir, ec), "save_checkpoint: '", target,
             "': the directory '", dir.string(), "' does not exist");

  // Same directory, so the rename below stays on one filesystem and is atomic.
  const std::string tmp = target + ".tmp." + std::to_string(::getpid());
  try {
    write_file(tmp, target, checkpoint);
    fsync_path(tmp, false, target);
    if (::rename(tmp.c_str(), target.c_str()) != 0)
      KILN_ERROR("save_checkpoint: '", target, "': cannot rename '", tmp, "' into place: ", std::strerror(errno));
  } catch (const Error& e) {
    ::unlink(tmp.c_str());
    std::string what = e.what();
    if (what.rfind("save_checkpoint:", 0) == 0) throw;
    KILN_ERROR("save_checkpoint: cannot write checkpoint '", target, "': ", what);
  }
  // The rename is durable once the directory entry is.
  fsync_path(dir.empty() ? "." : dir.string(), true, target);
}

}  // namespace kiln::train
