// Hdf5File tensors: datasets whose element type names the Kiln dtype (see
// hdf5.h for the mapping), and state dicts as one dataset per entry.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "kiln/core/native.h"
#include "serialize/hdf5_util.h"

static_assert(std::endian::native == std::endian::little, "the HDF5 memory types below assume a little-endian host");

namespace kiln::nn::serialize {

using detail::display;
using detail::Hdf5Lock;
using detail::Hid;

namespace {

// A 2-byte float type with the given exponent/mantissa split. Starting from
// IEEE single keeps the sign at the top bit and the implied-one mantissa
// normalisation; only the field positions, size and bias change.
Hid half_type(size_t exponent_bits, size_t mantissa_bits, size_t bias) {
  Hid t(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
  H5Tset_fields(t.get(), 15, mantissa_bits, exponent_bits, 0, mantissa_bits);
  H5Tset_size(t.get(), 2);
  H5Tset_ebias(t.get(), bias);
  return t;
}

// The element type Kiln writes for a dtype, which is also the memory type it
// reads that dtype with (HDF5 converts from other byte orders).
Hid hdf5_type(DType t) {
  switch (t) {
    case kFloat64: return Hid(H5Tcopy(H5T_IEEE_F64LE), H5Tclose);
    case kFloat32: return Hid(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
    case kFloat16: return half_type(5, 10, 15);
    case kBFloat16: return half_type(8, 7, 127);
    case kInt64: return Hid(H5Tcopy(H5T_STD_I64LE), H5Tclose);
    case kInt32: return Hid(H5Tcopy(H5T_STD_I32LE), H5Tclose);
    case kUInt8: return Hid(H5Tcopy(H5T_STD_U8LE), H5Tclose);
    case kBool: {
      // h5py's boolean type, so numpy sees dtype bool.
      Hid e(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose);
      int8_t no = 0, yes = 1;
      H5Tenum_insert(e.get(), "FALSE", &no);
      H5Tenum_insert(e.get(), "TRUE", &yes);
      return e;
    }
  }
  KILN_ERROR("HDF5: unsupported dtype ", dtype_name(t));
}

bool is_h5py_bool(hid_t type) {
  if (H5Tget_size(type) != 1 || H5Tget_nmembers(type) != 2) return false;
  for (unsigned i = 0; i < 2; ++i) {
    char* name = H5Tget_member_name(type, i);
    int8_t value = -1;
    bool ok = name && H5Tget_member_value(type, i, &value) >= 0 &&
              ((std::strcmp(name, "FALSE") == 0 && value == 0) || (std::strcmp(name, "TRUE") == 0 && value == 1));
    H5free_memory(name);
    if (!ok) return false;
  }
  return true;
}

// The Kiln dtype a stored element type holds, or an error describing it.
DType kiln_dtype(const Hdf5File::Impl& f, const char* op, const std::string& where, hid_t type) {
  size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT: {
      if (size == 8) return kFloat64;
      if (size == 4) return kFloat32;
      size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
      H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize);
      size_t bias = H5Tget_ebias(type);
      if (size == 2 && spos == 15 && mpos == 0) {
        if (epos == 10 && esize == 5 && msize == 10 && bias == 15) return kFloat16;
        if (epos == 7 && esize == 8 && msize == 7 && bias == 127) return kBFloat16;
      }
      f.fail(op, where, " holds ", size, "-byte floats with ", esize, " exponent and ", msize,
             " mantissa bits, which no Kiln dtype matches");
    }
    case H5T_INTEGER: {
      bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
      if (is_signed && size == 8) return kInt64;
      if (is_signed && size == 4) return kInt32;
      if (!is_signed && size == 1) return kUInt8;
      f.fail(op, where, " holds ", is_signed ? "signed " : "unsigned ", 8 * size,
             "-bit integers, which no Kiln dtype matches");
    }
    case H5T_ENUM:
      if (is_h5py_bool(type)) return kBool;
      f.fail(op, where, " holds an enum other than h5py's boolean {FALSE = 0, TRUE = 1}");
    default:
      break;
  }
  f.fail(op, where, " holds elements of a type (compound, string, ...) that is not a tensor dtype");
}

struct DatasetReader {
  const Hdf5File::Impl& f;
  const char* op;
  std::string path, where;
  Hid dataset, type;
  DType dtype = kFloat32;
  std::vector<int64_t> shape;

  DatasetReader(const Hdf5File::Impl& file, const char* op_, const std::string& p)
      : f(file), op(op_), path(p), where("dataset '" + display(p) + "'") {
    Hid obj = f.open(op, path, Hdf5ObjectKind::Dataset);
    dataset = Hid(f.check(H5Dopen2(f.file.get(), detail::absolute(path).c_str(), H5P_DEFAULT), op, "cannot open ",
                          where),
                  H5Dclose);
    type = Hid(f.check(H5Dget_type(dataset.get()), op, "cannot read the type of ", where), H5Tclose);
    dtype = kiln_dtype(f, op, where, type.get());
    Hid space(f.check(H5Dget_space(dataset.get()), op, "cannot read the shape of ", where), H5Sclose);
    H5S_class_t cls = H5Sget_simple_extent_type(space.get());
    if (cls == H5S_NULL) f.fail(op, where, " has a null dataspace (no shape), which no tensor matches");
    if (cls != H5S_SCALAR) {
      int rank = H5Sget_simple_extent_ndims(space.get());
      if (rank < 0) f.fail(op, "cannot read the shape of ", where);
      std::vector<hsize_t> dims(static_cast<size_t>(rank));
      H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
      // A corrupt header can claim any extent; refuse ones whose byte count
      // does not even fit in int64 before allocating.
      uint64_t bytes = element_size(dtype);
      for (hsize_t d : dims) {
        if (d > static_cast<hsize_t>(std::numeric_limits<int64_t>::max()) ||
            __builtin_mul_overflow(bytes, std::max<uint64_t>(d, 1), &bytes) ||
            bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          f.fail(op, where, " has an impossibly large shape");
        shape.push_back(static_cast<int64_t>(d));
      }
    }
  }

  Tensor read() const {
    Tensor t = native::empty(shape, TensorOptions().dtype(dtype));
    if (t.numel() == 0) return t;
    Hid mem = hdf5_type(dtype);
    f.check(H5Dread(dataset.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()), op, "cannot read ",
            where);
    // An enum value outside {FALSE, TRUE} would become a non-0/1 byte, which
    // is undefined behaviour for bool.
    if (dtype == kBool) {
      auto* p = static_cast<unsigned char*>(t.data_ptr());
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] != 0;
    }
    return t;
  }
};

}  // namespace

void Hdf5File::write_tensor(const std::string& group, const std::string& name, const Tensor& tensor) {
  Hdf5Lock lock;
  const char* op = "write_tensor";
  Impl& f = impl(op);
  f.require_writable(op);
  detail::check_link_name(op, f.path, name);
  std::string path = detail::absolute(group) + (detail::split_path(group).empty() ? "" : "/") + name;
  std::string where = "dataset '" + display(path) + "'";
  KILN_CHECK(tensor.defined(), op, ": HDF5 file '", f.path, "': ", where, ": undefined tensor");
  KILN_CHECK(tensor.dim() <= H5S_MAX_RANK, op, ": HDF5 file '", f.path, "': ", where, ": ", tensor.dim(),
             " dimensions; HDF5 allows at most ", H5S_MAX_RANK);
  f.create_group(op, group);
  if (f.kind(path) != Hdf5ObjectKind::Missing) f.fail(op, "'", display(path), "' already exists");

  Tensor host = native::contiguous(tensor.is_cpu() ? tensor : native::to(tensor, Device(kCPU)));
  Hid space;
  if (host.dim() == 0) {
    space = Hid(H5Screate(H5S_SCALAR), H5Sclose);
  } else {
    std::vector<hsize_t> dims(host.sizes().begin(), host.sizes().end());
    space = Hid(H5Screate_simple(host.dim(), dims.data(), nullptr), H5Sclose);
  }
  f.check(space.get(), op, "cannot make the dataspace of ", where);
  Hid type = hdf5_type(host.dtype());
  Hid dcpl = detail::creation_plist(H5P_DATASET_CREATE);
  Hid dataset(f.check(H5Dcreate2(f.file.get(), path.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(),
                                 H5P_DEFAULT),
                      op, "cannot create ", where),
              H5Dclose);
  // Memory type == file type: HDF5 copies the bytes without conversion, which
  // is what keeps every f16/bf16 bit pattern intact.
  if (host.numel() > 0)
    f.check(H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, host.data_ptr()), op,
            "cannot write ", where);
}

Tensor Hdf5File::read_tensor(const std::string& dataset_path) const {
  Hdf5Lock lock;
  return DatasetReader(impl("read_tensor"), "read_tensor", dataset_path).read();
}

Tensor Hdf5File::read_tensor(const std::string& group, const std::string& name) const {
  {
    Hdf5Lock lock;
    detail::check_link_name("read_tensor", impl("read_tensor").path, name);
  }
  return read_tensor(group + "/" + name);
}

Hdf5DatasetInfo Hdf5File::dataset_info(const std::string& dataset_path) const {
  Hdf5Lock lock;
  DatasetReader r(impl("dataset_info"), "dataset_info", dataset_path);
  return {r.dtype, r.shape};
}

void Hdf5File::write_state_dict(const std::string& group, const StateDict& tensors) {
  Hdf5Lock lock;
  const char* op = "write_state_dict";
  Impl& f = impl(op);
  f.require_writable(op);
  // All names are checked before anything is written, so a bad name does not
  // leave half a state dict behind.
  for (const auto& item : tensors) {
    detail::check_link_name(op, f.path, item.key);
    KILN_CHECK(item.value.defined(), op, ": HDF5 file '", f.path, "': entry '", item.key, "' is undefined");
  }
  f.create_group(op, group);
  for (const auto& item : tensors) write_tensor(group, item.key, item.value);
}

StateDict Hdf5File::read_state_dict(const std::string& group) const {
  Hdf5Lock lock;
  const char* op = "read_state_dict";
  Impl& f = impl(op);
  StateDict out;
  for (const auto& name : f.children(op, group)) {
    std::string path = group + "/" + name;
    if (f.kind(path) == Hdf5ObjectKind::Dataset) out.insert(name, DatasetReader(f, op, path).read());
  }
  return out;
}

}  // namespace kiln::nn::serialize
