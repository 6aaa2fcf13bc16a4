// Hdf5File: opening and closing files, object paths, groups.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "serialize/hdf5_util.h"

namespace kiln::nn::serialize {
namespace detail {
namespace {

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex m;
  return m;
}
thread_local int lock_depth = 0;

herr_t innermost(unsigned n, const H5E_error2_t* err, void* out) {
  // Walking upward starts at the function that detected the problem.
  if (n == 0 && err->desc) *static_cast<std::string*>(out) = err->desc;
  return 0;
}

}  // namespace

Hdf5Lock::Hdf5Lock() : lock_(hdf5_mutex()) {
  if (lock_depth++ == 0) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    H5Eclear2(H5E_DEFAULT);
  }
}
Hdf5Lock::~Hdf5Lock() { --lock_depth; }

std::string hdf5_error_message() {
  std::string msg;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string join_path(const std::vector<std::string>& parts, size_t count) {
  if (count == 0) return "/";
  std::string out;
  for (size_t i = 0; i < count; ++i) out += "/" + parts[i];
  return out;
}

std::string display(const std::string& path) {
  auto parts = split_path(path);
  if (parts.empty()) return "/";
  return join_path(parts, parts.size()).substr(1);
}

void check_link_name(const std::string& op, const std::string& file, const std::string& name) {
  KILN_CHECK(!name.empty(), op, ": HDF5 file '", file, "': empty object name");
  KILN_CHECK(name != ".", op, ": HDF5 file '", file, "': '.' cannot name an object");
  KILN_CHECK(name.find('/') == std::string::npos, op, ": HDF5 file '", file, "': object name '", name,
             "' contains '/', which HDF5 reserves as the path separator");
}

// Group and dataset creation properties: track creation order (so listing
// returns what was written in the order it was written) and leave out
// modification times (so writing the same content twice gives the same bytes).
Hid creation_plist(hid_t cls) {
  Hid plist(H5Pcreate(cls), H5Pclose);
  if (cls == H5P_GROUP_CREATE || cls == H5P_FILE_CREATE)
    H5Pset_link_creation_order(plist.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  H5Pset_attr_creation_order(plist.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  if (cls != H5P_FILE_CREATE) H5Pset_obj_track_times(plist.get(), false);
  return plist;
}

}  // namespace detail

using detail::Hdf5Lock;
using detail::Hid;

void Hdf5File::Impl::require_open(const char* op) const {
  KILN_CHECK(file.valid(), op, ": HDF5 file '", path, "' is closed");
}

void Hdf5File::Impl::require_writable(const char* op) const {
  require_open(op);
  KILN_CHECK(writable, op, ": HDF5 file '", path, "' is open read-only");
}

Hdf5ObjectKind Hdf5File::Impl::kind(const std::string& p) const {
  auto parts = detail::split_path(p);
  // H5Lexists on "a/b/c" fails outright (rather than saying no) when "a/b"
  // is missing or a dataset, so the path is checked one link at a time.
  for (size_t i = 1; i <= parts.size(); ++i) {
    htri_t e = H5Lexists(file.get(), detail::join_path(parts, i).c_str(), H5P_DEFAULT);
    if (e <= 0) {
      detail::hdf5_error_message();  // a failure here just means "not there"
      return Hdf5ObjectKind::Missing;
    }
  }
  hid_t obj = H5Oopen(file.get(), detail::join_path(parts, parts.size()).c_str(), H5P_DEFAULT);
  if (obj < 0) {  // a dangling soft or external link
    detail::hdf5_error_message();
    return Hdf5ObjectKind::Missing;
  }
  H5I_type_t type = H5Iget_type(obj);
  H5Oclose(obj);
  if (type == H5I_GROUP) return Hdf5ObjectKind::Group;
  if (type == H5I_DATASET) return Hdf5ObjectKind::Dataset;
  return Hdf5ObjectKind::Other;
}

Hid Hdf5File::Impl::open(const char* op, const std::string& p, Hdf5ObjectKind want) const {
  require_open(op);
  Hdf5ObjectKind k = kind(p);
  std::string shown = detail::display(p);
  const char* wanted = want == Hdf5ObjectKind::Group ? "group" : want == Hdf5ObjectKind::Dataset ? "dataset" : "object";
  if (k == Hdf5ObjectKind::Missing) fail(op, "no ", wanted, " '", shown, "'");
  if (want != Hdf5ObjectKind::Other && k != want)
    fail(op, "'", shown, "' is a ", k == Hdf5ObjectKind::Group ? "group" : k == Hdf5ObjectKind::Dataset ? "dataset" : "named type",
         ", not a ", wanted);
  return Hid(check(H5Oopen(file.get(), detail::absolute(p).c_str(), H5P_DEFAULT), op, "cannot open '", shown, "'"),
             H5Oclose);
}

void Hdf5File::Impl::create_group(const char* op, const std::string& p) {
  require_writable(op);
  auto parts = detail::split_path(p);
  Hid gcpl = detail::creation_plist(H5P_GROUP_CREATE);
  for (size_t i = 1; i <= parts.size(); ++i) {
    detail::check_link_name(op, path, parts[i - 1]);
    std::string prefix = detail::join_path(parts, i);
    Hdf5ObjectKind k = kind(prefix);
    if (k == Hdf5ObjectKind::Group) continue;
    if (k != Hdf5ObjectKind::Missing)
      fail(op, "cannot create group '", detail::display(p), "': '", detail::display(prefix), "' is not a group");
    Hid g(check(H5Gcreate2(file.get(), prefix.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), op,
                "cannot create group '", detail::display(prefix), "'"),
          H5Gclose);
  }
}

std::vector<std::string> Hdf5File::Impl::children(const char* op, const std::string& group) const {
  Hid g = open(op, group, Hdf5ObjectKind::Group);
  H5G_info_t info;
  check(H5Gget_info(g.get(), &info), op, "cannot read group '", detail::display(group), "'");
  // Creation order only exists where the group tracks it (files from h5py
  // and most other writers do not); otherwise names are listed sorted.
  H5_index_t index = H5_INDEX_NAME;
  Hid gcpl(H5Gget_create_plist(g.get()), H5Pclose);
  unsigned flags = 0;
  if (gcpl.valid() && H5Pget_link_creation_order(gcpl.get(), &flags) >= 0 && (flags & H5P_CRT_ORDER_TRACKED))
    index = H5_INDEX_CRT_ORDER;
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(g.get(), ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) fail(op, "cannot list group '", detail::display(group), "'");
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(g.get(), ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

Hdf5File::Hdf5File(const std::string& path, Mode mode) : impl_(std::make_unique<Impl>()) {
  Hdf5Lock lock;
  impl_->path = path;
  impl_->writable = mode != Mode::Read;
  const char* op = mode == Mode::Create ? "Hdf5File(create)" : "Hdf5File(open)";
  // Close strong: closing the file closes any object a caller forgot, so the
  // file is really closed (and unlocked) when close() returns.
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  if (mode == Mode::Create) {
    Hid fcpl = detail::creation_plist(H5P_FILE_CREATE);
    impl_->file = Hid(impl_->check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), op,
                                   "cannot create the file"),
                      H5Fclose);
    return;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) impl_->fail(op, "cannot open: ", std::strerror(errno));
  KILN_CHECK(S_ISREG(st.st_mode), op, ": HDF5 file '", path, "': not a regular file");
  hid_t f = H5Fopen(path.c_str(), mode == Mode::Read ? H5F_ACC_RDONLY : H5F_ACC_RDWR, fapl.get());
  if (f < 0) {
    std::string h5 = detail::hdf5_error_message();
    // "file signature not found" is HDF5's way of saying this is some other
    // kind of file; anything else (truncation, permissions) is worth quoting.
    bool foreign = h5.find("signature not found") != std::string::npos;
    KILN_ERROR(op, ": HDF5 file '", path, "': ", foreign ? "not an HDF5 file" : "cannot open", h5.empty() ? "" : ": ",
               h5);
  }
  impl_->file = Hid(f, H5Fclose);
}

Hdf5File::~Hdf5File() {
  if (impl_) {
    Hdf5Lock lock;
    impl_->file.reset();
  }
}
Hdf5File::Hdf5File(Hdf5File&&) noexcept = default;
Hdf5File& Hdf5File::operator=(Hdf5File&& other) noexcept {
  if (this != &other) {
    Hdf5Lock lock;
    impl_ = std::move(other.impl_);
  }
  return *this;
}

const std::string& Hdf5File::path() const { return impl("Hdf5File::path").path; }
bool Hdf5File::is_open() const { return impl_ && impl_->file.valid(); }
bool Hdf5File::writable() const { return is_open() && impl_->writable; }

Hdf5File::Impl& Hdf5File::impl(const char* op) const {
  KILN_CHECK(impl_ != nullptr, op, ": use of a moved-from Hdf5File");
  return *impl_;
}

void Hdf5File::flush() {
  Hdf5Lock lock;
  Impl& f = impl("Hdf5File::flush");
  f.require_open("Hdf5File::flush");
  f.check(H5Fflush(f.file.get(), H5F_SCOPE_LOCAL), "Hdf5File::flush", "flush failed");
}

void Hdf5File::close() {
  Hdf5Lock lock;
  if (!is_open()) return;
  if (!impl_->file.close()) impl_->fail("Hdf5File::close", "closing failed (data may not have been written)");
}

Hdf5ObjectKind Hdf5File::kind(const std::string& path) const {
  Hdf5Lock lock;
  Impl& f = impl("Hdf5File::kind");
  f.require_open("Hdf5File::kind");
  return f.kind(path);
}

void Hdf5File::create_group(const std::string& path) {
  Hdf5Lock lock;
  impl("create_group").create_group("create_group", path);
}

std::vector<std::string> Hdf5File::children(const std::string& group) const {
  Hdf5Lock lock;
  return impl("children").children("children", group);
}

std::vector<std::string> Hdf5File::groups(const std::string& group) const {
  Hdf5Lock lock;
  std::vector<std::string> out;
  Impl& f = impl("groups");
  for (auto& name : f.children("groups", group))
    if (f.kind(group + "/" + name) == Hdf5ObjectKind::Group) out.push_back(name);
  return out;
}

std::vector<std::string> Hdf5File::datasets(const std::string& group) const {
  Hdf5Lock lock;
  std::vector<std::string> out;
  Impl& f = impl("datasets");
  for (auto& name : f.children("datasets", group))
    if (f.kind(group + "/" + name) == Hdf5ObjectKind::Dataset) out.push_back(name);
  return out;
}

}  // namespace kiln::nn::serialize
