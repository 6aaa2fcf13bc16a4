#pragma once
// Pieces shared by the Hdf5File sources: the lock every call holds, owned
// HDF5 handles, error messages built from HDF5's error stack, and object
// paths.
#include <hdf5.h>

#include <mutex>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/nn/serialize/hdf5.h"

namespace kiln::nn::serialize::detail {

// Held for the duration of every call into the library. The outermost lock
// on a thread also silences HDF5's automatic error printing (a per-thread
// setting in thread-safe builds, so it is redone each time: a table write)
// and clears its error stack, so a message names this call's failure.
class Hdf5Lock {
 public:
  Hdf5Lock();
  ~Hdf5Lock();
  Hdf5Lock(const Hdf5Lock&) = delete;
  Hdf5Lock& operator=(const Hdf5Lock&) = delete;

 private:
  std::unique_lock<std::recursive_mutex> lock_;
};

// The innermost message on this thread's HDF5 error stack ("file signature
// not found"), which is the one that says what actually went wrong; clears
// the stack. Empty when HDF5 recorded nothing.
std::string hdf5_error_message();

// An owned identifier, closed with the function that matches its kind.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now and reports whether closing succeeded (for H5Fclose, which
  // is where buffered writes can fail).
  bool close() {
    if (id_ < 0) return true;
    Hdf5Lock lock;
    herr_t r = close_(id_);
    id_ = -1;
    return r >= 0;
  }
  void reset() { (void)close(); }

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// Creation properties for files, groups and datasets made here (cls is
// H5P_FILE_CREATE, H5P_GROUP_CREATE or H5P_DATASET_CREATE): creation order
// tracked, no modification times.
Hid creation_plist(hid_t cls);

// '/'-separated components of an object path, empty ones dropped ("" and
// "/" are the root, "a//b/" is "a/b").
std::vector<std::string> split_path(const std::string& path);
// The absolute path HDF5 calls take: "/a/b", or "/" for the root.
std::string join_path(const std::vector<std::string>& parts, size_t count);
inline std::string absolute(const std::string& path) {
  auto parts = split_path(path);
  return join_path(parts, parts.size());
}
// How error messages show a path: "a/b", or "/" for the root.
std::string display(const std::string& path);
// Checks that `name` can be a single link name: not empty, not ".", no '/'.
void check_link_name(const std::string& op, const std::string& file, const std::string& name);

}  // namespace kiln::nn::serialize::detail

namespace kiln::nn::serialize {

struct Hdf5File::Impl {
  std::string path;
  detail::Hid file;
  bool writable = false;

  // "read_tensor: HDF5 file 'x.h5': <problem>[: <HDF5's message>]"
  template <typename... Args>
  [[noreturn]] void fail(const char* op, const Args&... args) const {
    std::string h5 = detail::hdf5_error_message();
    KILN_ERROR(op, ": HDF5 file '", path, "': ", args..., h5.empty() ? "" : ": ", h5);
  }
  template <typename... Args>
  hid_t check(hid_t id, const char* op, const Args&... args) const {
    if (id < 0) fail(op, args...);
    return id;
  }
  void require_open(const char* op) const;
  void require_writable(const char* op) const;

  Hdf5ObjectKind kind(const std::string& path) const;
  // Opens the object at `path`, an error naming `op` when there is none or it
  // is not of the wanted kind (Other = any kind).
  detail::Hid open(const char* op, const std::string& path, Hdf5ObjectKind want) const;
  void create_group(const char* op, const std::string& path);
  // Link names of a group, in creation order when the group tracks it.
  std::vector<std::string> children(const char* op, const std::string& group) const;
};

}  // namespace kiln::nn::serialize
