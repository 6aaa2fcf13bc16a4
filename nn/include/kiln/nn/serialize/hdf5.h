#pragma once
// HDF5 files through the C library, wrapped so that every failure is a
// kiln::Error naming the file and the object (HDF5's own error stack is never
// printed; its innermost message is appended to ours). Checkpoints, and
// datasets stored as HDF5, are built on this.
//
// Objects are named by '/'-separated paths from the root group: "" and "/"
// are the root, "model/encoder" a nested group. Tensors are datasets; the
// element type says which Kiln dtype a dataset holds:
//   float64/float32, int64/int32 (little-endian IEEE / two's complement),
//   uint8 unsigned 8-bit,
//   bool    h5py's boolean: an 8-bit enum {FALSE = 0, TRUE = 1},
//   float16 a 2-byte IEEE half float type (sign 15, exponent 10..14, mantissa
//           0..9, bias 15), which h5py and numpy read as float16,
//   bfloat16 a 2-byte float type with bfloat16's fields (sign 15, exponent
//           7..14, mantissa 0..6, bias 127). It needs no side attribute,
//           h5dump prints it as a float, and h5py reads it as float32
//           values (checked with h5py 3.16). Kiln reads and writes it with
//           the identical memory type, so HDF5 copies the bits unconverted:
//           NaN payloads, infinities and subnormals round-trip exactly.
// Other stored types (int16, uint32, strings, compounds...) are an error
// naming the dataset and the type; big-endian data is converted on read.
// 0-dim tensors are scalar dataspaces, empty tensors simple dataspaces with a
// zero dimension (both as h5py writes them).
//
// Groups, datasets and attributes created here track creation order, so
// children(), attr_names() and read_state_dict() return things in the order
// they were written; for files from elsewhere that do not track it, the
// order is by name.
//
// Thread safety: every call holds one process-wide lock, so a Hdf5File may be
// used from several threads and files from different threads never race in
// the library (Debian's libhdf5 is built thread-safe, others need not be).
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/nn/ordered_dict.h"

namespace kiln::nn::serialize {

// A scalar attribute value: UTF-8 string (variable-length, as h5py writes
// str), 64-bit integer or double.
using Hdf5Attr = std::variant<std::string, int64_t, double>;

enum class Hdf5ObjectKind { Missing, Group, Dataset, Other };

struct Hdf5DatasetInfo {
  DType dtype;
  std::vector<int64_t> shape;
};

class Hdf5File {
 public:
  enum class Mode {
    Read,    // an existing file, read only
    Create,  // a new file; an existing one is truncated
    Append,  // an existing file, read and write
  };

  explicit Hdf5File(const std::string& path, Mode mode = Mode::Read);
  ~Hdf5File();  // closes, ignoring errors: call close() to see them
  Hdf5File(Hdf5File&&) noexcept;
  Hdf5File& operator=(Hdf5File&&) noexcept;
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;

  const std::string& path() const;
  bool is_open() const;
  bool writable() const;
  void flush();
  void close();

  // ---- groups ----
  Hdf5ObjectKind kind(const std::string& path) const;
  bool exists(const std::string& path) const { return kind(path) != Hdf5ObjectKind::Missing; }
  bool is_group(const std::string& path) const { return kind(path) == Hdf5ObjectKind::Group; }
  bool is_dataset(const std::string& path) const { return kind(path) == Hdf5ObjectKind::Dataset; }
  // Creates the group and any missing parents; an existing group is fine, a
  // dataset in the way is an error.
  void create_group(const std::string& path);
  // Names of the links in a group (creation order where tracked).
  std::vector<std::string> children(const std::string& group) const;
  std::vector<std::string> groups(const std::string& group) const;
  std::vector<std::string> datasets(const std::string& group) const;

  // ---- tensors ----
  // `name` is one link name: anything but empty, ".", or containing '/'
  // (dots are fine: "encoder.layer.0.weight"). The group is created if
  // missing; an existing object of that name is an error.
  void write_tensor(const std::string& group, const std::string& name, const Tensor& tensor);
  // A contiguous CPU tensor with the stored dtype and shape.
  Tensor read_tensor(const std::string& group, const std::string& name) const;
  Tensor read_tensor(const std::string& dataset_path) const;
  Hdf5DatasetInfo dataset_info(const std::string& dataset_path) const;

  // Each entry as a dataset directly in `group`, named as in the dict.
  void write_state_dict(const std::string& group, const StateDict& tensors);
  // Every dataset directly in `group` (subgroups are skipped), in creation
  // order where tracked.
  StateDict read_state_dict(const std::string& group) const;

  // ---- attributes, on the object at `path` ("" = the file's root group) ----
  // Replaces an attribute of the same name.
  void set_attr(const std::string& path, const std::string& name, const Hdf5Attr& value);
  void set_attr(const std::string& path, const std::string& name, const char* value) {
    set_attr(path, name, Hdf5Attr(std::string(value)));
  }
  bool has_attr(const std::string& path, const std::string& name) const;
  std::vector<std::string> attr_names(const std::string& path) const;
  // Integer attributes of any width read as int64, floats of any width as
  // double, fixed- and variable-length strings as std::string.
  Hdf5Attr attr(const std::string& path, const std::string& name) const;
  std::string string_attr(const std::string& path, const std::string& name) const;
  int64_t int_attr(const std::string& path, const std::string& name) const;
  // Integer attributes are accepted too (as h5py users often store 1 for 1.0).
  double double_attr(const std::string& path, const std::string& name) const;

 public:
  struct Impl;  // opaque; named here so the implementation files can share it

 private:
  Impl& impl(const char* op) const;  // errors on a moved-from file instead of crashing
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::nn::serialize
