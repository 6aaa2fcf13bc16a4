// Hdf5File attributes: scalar strings, int64 and double on any object.
#include <cstdint>

#include "serialize/hdf5_util.h"

namespace kiln::nn::serialize {

using detail::display;
using detail::Hdf5Lock;
using detail::Hid;

namespace {

// Variable-length UTF-8, which is what h5py writes for a Python str (and
// reads back as str rather than bytes).
Hid vlen_string_type(H5T_cset_t cset = H5T_CSET_UTF8) {
  Hid t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), cset);
  return t;
}

herr_t collect_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

struct AttrReader {
  const Hdf5File::Impl& f;
  const char* op;
  std::string where;  // "attribute 'x' on 'a/b'"

  Hid open(const std::string& path, const std::string& name) {
    Hid obj = f.open(op, path, Hdf5ObjectKind::Other);
    htri_t exists = H5Aexists(obj.get(), name.c_str());
    if (exists <= 0) f.fail(op, "no attribute '", name, "' on '", display(path), "'");
    return Hid(f.check(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), op, "cannot open ", where), H5Aclose);
  }

  std::string read_string(hid_t attr, hid_t type) {
    H5T_cset_t cset = H5Tget_cset(type);
    if (H5Tis_variable_str(type) > 0) {
      Hid mem = vlen_string_type(cset);
      char* value = nullptr;
      f.check(H5Aread(attr, mem.get(), &value), op, "cannot read ", where);
      std::string out = value ? value : "";
      H5free_memory(value);
      return out;
    }
    size_t size = H5Tget_size(type);
    Hid mem(H5Tcopy(type), H5Tclose);
    std::string out(size, '\0');
    if (size > 0) f.check(H5Aread(attr, mem.get(), out.data()), op, "cannot read ", where);
    // Fixed-length strings are padded to their size with NULs or spaces.
    if (H5Tget_strpad(type) == H5T_STR_SPACEPAD) {
      out.erase(out.find_last_not_of(' ') + 1);
    } else {
      out.resize(std::min(out.size(), out.find('\0')));
    }
    return out;
  }

  Hdf5Attr read(const std::string& path, const std::string& name) {
    Hid attr = open(path, name);
    Hid space(f.check(H5Aget_space(attr.get()), op, "cannot read ", where), H5Sclose);
    hssize_t count = H5Sget_simple_extent_npoints(space.get());
    if (count != 1) f.fail(op, where, " holds ", count, " values; only scalar attributes are supported");
    Hid type(f.check(H5Aget_type(attr.get()), op, "cannot read ", where), H5Tclose);
    switch (H5Tget_class(type.get())) {
      case H5T_INTEGER: {
        // Read through HDF5's conversion so any integer width works.
        int64_t v = 0;
        f.check(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), op, "cannot read ", where);
        return v;
      }
      case H5T_FLOAT: {
        double v = 0;
        f.check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v), op, "cannot read ", where);
        return v;
      }
      case H5T_STRING:
        return read_string(attr.get(), type.get());
      default:
        break;
    }
    f.fail(op, where, " has a type other than string, integer or float");
  }
};

}  // namespace

void Hdf5File::set_attr(const std::string& path, const std::string& name, const Hdf5Attr& value) {
  Hdf5Lock lock;
  const char* op = "set_attr";
  Impl& f = impl(op);
  f.require_writable(op);
  KILN_CHECK(!name.empty(), op, ": HDF5 file '", f.path, "': empty attribute name on '", display(path), "'");
  std::string where = "attribute '" + name + "' on '" + display(path) + "'";
  Hid obj = f.open(op, path, Hdf5ObjectKind::Other);
  if (H5Aexists(obj.get(), name.c_str()) > 0)
    f.check(H5Adelete(obj.get(), name.c_str()), op, "cannot replace ", where);

  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  auto write = [&](hid_t file_type, hid_t mem_type, const void* data) {
    Hid attr(f.check(H5Acreate2(obj.get(), name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), op,
                     "cannot create ", where),
             H5Aclose);
    f.check(H5Awrite(attr.get(), mem_type, data), op, "cannot write ", where);
  };
  if (const auto* s = std::get_if<std::string>(&value)) {
    // A C string stops at the first NUL, so such a value would come back cut short.
    KILN_CHECK(s->find('\0') == std::string::npos, op, ": HDF5 file '", f.path, "': ", where,
               ": string contains a NUL byte");
    Hid type = vlen_string_type();
    const char* data = s->c_str();
    write(type.get(), type.get(), &data);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    write(H5T_STD_I64LE, H5T_NATIVE_INT64, i);
  } else {
    write(H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &std::get<double>(value));
  }
}

bool Hdf5File::has_attr(const std::string& path, const std::string& name) const {
  Hdf5Lock lock;
  Impl& f = impl("has_attr");
  Hid obj = f.open("has_attr", path, Hdf5ObjectKind::Other);
  htri_t e = H5Aexists(obj.get(), name.c_str());
  if (e < 0) f.fail("has_attr", "cannot look up attribute '", name, "' on '", display(path), "'");
  return e > 0;
}

std::vector<std::string> Hdf5File::attr_names(const std::string& path) const {
  Hdf5Lock lock;
  Impl& f = impl("attr_names");
  Hid obj = f.open("attr_names", path, Hdf5ObjectKind::Other);
  std::vector<std::string> names;
  hsize_t idx = 0;
  // Creation order where the object tracks it; objects written elsewhere
  // usually do not, and then the names come sorted.
  if (H5Aiterate2(obj.get(), H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_name, &names) < 0) {
    detail::hdf5_error_message();
    names.clear();
    idx = 0;
    f.check(H5Aiterate2(obj.get(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &names), "attr_names",
            "cannot list the attributes of '", display(path), "'");
  }
  return names;
}

Hdf5Attr Hdf5File::attr(const std::string& path, const std::string& name) const {
  Hdf5Lock lock;
  AttrReader r{impl("attr"), "attr", "attribute '" + name + "' on '" + display(path) + "'"};
  return r.read(path, name);
}

std::string Hdf5File::string_attr(const std::string& path, const std::string& name) const {
  Hdf5Attr v = attr(path, name);
  KILN_CHECK(std::holds_alternative<std::string>(v), "string_attr: HDF5 file '", impl_->path, "': attribute '", name,
             "' on '", display(path), "' is not a string");
  return std::get<std::string>(v);
}

int64_t Hdf5File::int_attr(const std::string& path, const std::string& name) const {
  Hdf5Attr v = attr(path, name);
  KILN_CHECK(std::holds_alternative<int64_t>(v), "int_attr: HDF5 file '", impl_->path, "': attribute '", name,
             "' on '", display(path), "' is not an integer");
  return std::get<int64_t>(v);
}

double Hdf5File::double_attr(const std::string& path, const std::string& name) const {
  Hdf5Attr v = attr(path, name);
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  KILN_CHECK(std::holds_alternative<double>(v), "double_attr: HDF5 file '", impl_->path, "': attribute '", name,
             "' on '", display(path), "' is not a number");
  return std::get<double>(v);
}

}  // namespace kiln::nn::serialize
