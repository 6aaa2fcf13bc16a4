// Opening a safetensors file: map it, check the header completely before any
// tensor is touched, then copy tensors out on request.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/native.h"
#include "kiln/nn/serialize/safetensors.h"
#include "serialize/safetensors_dtype.h"

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

namespace kiln::nn::serialize {
namespace {

using Json = nlohmann::ordered_json;  // keeps header order, which becomes the StateDict order

// The Python library refuses larger headers; a bigger one is almost surely a
// garbage length rather than a real file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

template <typename... Args>
[[noreturn]] void fail(const std::string& path, const Args&... args) {
  KILN_ERROR("safetensors file '", path, "': ", args...);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// nlohmann keeps the last of repeated keys silently; a repeated tensor name
// (or field) means the header is ambiguous, so the parse callback records
// the first repeat, with one key set per open object.
struct DuplicateKeyFinder {
  std::vector<std::unordered_set<std::string>> open_objects;
  std::string duplicate;
  bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, Json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      open_objects.emplace_back();
    } else if (event == E::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == E::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  }
};

uint64_t get_count(const std::string& path, const std::string& name, const Json& v, const char* what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) fail(path, "tensor '", name, "': negative ", what, " ", v.get<int64_t>());
  fail(path, "tensor '", name, "': ", what, " ", v.dump(), " is not a non-negative integer");
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const Json& v, uint64_t buffer_size) {
  if (!v.is_object()) fail(path, "tensor '", name, "': entry is not a JSON object");
  SafetensorsEntry e;
  e.name = name;

  auto dtype_it = v.find("dtype");
  if (dtype_it == v.end()) fail(path, "tensor '", name, "': missing field 'dtype'");
  if (!dtype_it->is_string()) fail(path, "tensor '", name, "': 'dtype' is not a string");
  e.dtype_name = dtype_it->get<std::string>();
  const auto* dt = detail::find_safetensors_dtype(e.dtype_name);
  if (!dt) fail(path, "tensor '", name, "': unknown dtype '", e.dtype_name, "'");
  if (dt->size == 0) fail(path, "tensor '", name, "': sub-byte dtype ", e.dtype_name, " is not supported");
  e.dtype = dt->kiln;

  auto shape_it = v.find("shape");
  if (shape_it == v.end()) fail(path, "tensor '", name, "': missing field 'shape'");
  if (!shape_it->is_array()) fail(path, "tensor '", name, "': 'shape' is not an array");
  // Every dim (zeros counted as 1) must multiply within int64 so strides
  // cannot overflow even for an empty tensor; numel itself is checked
  // against the buffer below, which bounds it far more tightly.
  uint64_t numel = 1, extent = 1;
  for (const auto& d : *shape_it) {
    uint64_t n = get_count(path, name, d, "dimension");
    if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(extent, std::max<uint64_t>(n, 1), &extent) ||
        extent > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(path, "tensor '", name, "': shape ", shape_it->dump(), " is too large");
    }
    numel *= n;  // cannot overflow: bounded by extent
    e.shape.push_back(static_cast<int64_t>(n));
  }

  auto off_it = v.find("data_offsets");
  if (off_it == v.end()) fail(path, "tensor '", name, "': missing field 'data_offsets'");
  if (!off_it->is_array() || off_it->size() != 2)
    fail(path, "tensor '", name, "': 'data_offsets' is not a [begin, end] pair");
  e.begin = get_count(path, name, (*off_it)[0], "offset");
  e.end = get_count(path, name, (*off_it)[1], "offset");
  if (e.begin > e.end) fail(path, "tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] end before they begin");
  if (e.end > buffer_size)
    fail(path, "tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] out of range: the data buffer holds ",
         buffer_size, " bytes");
  uint64_t nbytes;
  if (__builtin_mul_overflow(numel, dt->size, &nbytes) || nbytes != e.end - e.begin)
    fail(path, "tensor '", name, "': size mismatch: shape ", shape_str(e.shape), " of ", e.dtype_name, " needs ",
         numel, " x ", dt->size, " bytes but data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin);
  return e;
}

// The tensors must tile the buffer exactly: the Python library rejects gaps
// and overlaps, and accepting them here would let a file load in Kiln that
// fails everywhere else (or alias two tensors onto the same bytes).
void check_coverage(const std::string& path, const std::vector<SafetensorsEntry>& entries, uint64_t buffer_size) {
  std::vector<const SafetensorsEntry*> sorted;
  sorted.reserve(entries.size());
  for (const auto& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t covered = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const auto* e : sorted) {
    if (e->begin < covered)
      fail(path, "tensors '", prev->name, "' [", prev->begin, ", ", prev->end, ") and '", e->name, "' [", e->begin,
           ", ", e->end, ") overlap");
    if (e->begin > covered)
      fail(path, "hole in the data buffer: bytes [", covered, ", ", e->begin, ") belong to no tensor");
    covered = e->end;
    prev = e;
  }
  if (covered != buffer_size)
    fail(path, "hole in the data buffer: bytes [", covered, ", ", buffer_size, ") at its end belong to no tensor");
}

}  // namespace

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

struct SafetensorsFile::Impl {
  std::string path;
  const unsigned char* map = nullptr;
  size_t map_size = 0;
  uint64_t data_start = 0;
  SafetensorsMetadata metadata;
  std::vector<SafetensorsEntry> entries;
  std::unordered_map<std::string, size_t> index;

  ~Impl() {
    if (map) ::munmap(const_cast<unsigned char*>(map), map_size);
  }

  void open_and_map() {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, "cannot open: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      fail(path, "cannot stat: ", std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(path, "not a regular file");
    }
    map_size = static_cast<size_t>(st.st_size);
    if (map_size < 8) {
      ::close(fd);
      fail(path, "file is ", map_size, " bytes, too short for the 8-byte header length");
    }
    // MAP_PRIVATE + PROT_READ: we never write through the mapping, and the
    // mapping stays valid after the descriptor is closed.
    void* p = ::mmap(nullptr, map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) fail(path, "mmap failed: ", std::strerror(err));
    map = static_cast<const unsigned char*>(p);
  }

  void parse_header() {
    uint64_t header_len = 0;
    std::memcpy(&header_len, map, 8);
    uint64_t after_prefix = map_size - 8;
    if (header_len > after_prefix)
      fail(path, "header length ", header_len, " exceeds the ", after_prefix, " bytes after the length prefix");
    if (header_len > kMaxHeaderBytes) fail(path, "header length ", header_len, " is over the 100 MB limit");
    data_start = 8 + header_len;
    uint64_t buffer_size = map_size - data_start;

    const char* text = reinterpret_cast<const char*>(map + 8);
    // nlohmann stops at a NUL as if the input ended there, which would
    // accept "{}\0garbage"; valid JSON never contains a raw NUL byte.
    if (const void* nul = std::memchr(text, 0, header_len))
      fail(path, "invalid JSON header: NUL byte at header offset ", static_cast<const char*>(nul) - text);
    DuplicateKeyFinder dups;
    Json header;
    try {
      header = Json::parse(text, text + header_len, std::ref(dups));
    } catch (const nlohmann::json::exception& e) {
      fail(path, "invalid JSON header: ", e.what());
    }
    if (!dups.duplicate.empty()) fail(path, "duplicate key '", dups.duplicate, "' in the header");
    if (!header.is_object()) fail(path, "header is not a JSON object");

    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (!it->is_object()) fail(path, "'__metadata__' is not a JSON object");
        for (auto m = it->begin(); m != it->end(); ++m) {
          if (!m->is_string()) fail(path, "metadata value for '", m.key(), "' is not a string");
          metadata.emplace(m.key(), m->get<std::string>());
        }
        continue;
      }
      index.emplace(it.key(), entries.size());
      entries.push_back(parse_entry(path, it.key(), *it, buffer_size));
    }
    check_coverage(path, entries, buffer_size);
  }
};

SafetensorsFile::SafetensorsFile(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->open_and_map();
  impl_->parse_header();
}

SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;

const std::string& SafetensorsFile::path() const { return impl_->path; }
const SafetensorsMetadata& SafetensorsFile::metadata() const { return impl_->metadata; }
const std::vector<SafetensorsEntry>& SafetensorsFile::entries() const { return impl_->entries; }

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(impl_->entries.size());
  for (const auto& e : impl_->entries) out.push_back(e.name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return impl_->index.count(name) != 0; }

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = impl_->index.find(name);
  if (it == impl_->index.end()) fail(impl_->path, "no tensor named '", name, "'");
  return impl_->entries[it->second];
}

Tensor SafetensorsFile::load(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  if (!e.dtype) fail(impl_->path, "tensor '", name, "' has dtype ", e.dtype_name, ", which Kiln has no type for");
  Tensor t = native::empty(e.shape, TensorOptions().dtype(*e.dtype));
  size_t nbytes = e.end - e.begin;
  if (nbytes == 0) return t;
  const unsigned char* src = impl_->map + impl_->data_start + e.begin;
  // Ask the kernel to start reading the whole range now rather than fault
  // it in page by page; it matters for cold multi-GB checkpoints.
  if (nbytes >= (1u << 20)) {
    auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    auto start = reinterpret_cast<uintptr_t>(src) & ~(page - 1);
    ::madvise(reinterpret_cast<void*>(start), reinterpret_cast<uintptr_t>(src) + nbytes - start, MADV_WILLNEED);
  }
  auto* dst = static_cast<unsigned char*>(t.data_ptr());
  std::memcpy(dst, src, nbytes);
  // Any byte other than 0 or 1 in a C++ bool is undefined behaviour in every
  // kernel that reads it, so foreign bool data is normalised on the way in.
  if (*e.dtype == kBool)
    for (size_t i = 0; i < nbytes; ++i) dst[i] = dst[i] != 0;
  return t;
}

StateDict SafetensorsFile::load_all() const {
  StateDict out;
  for (const auto& e : impl_->entries) out.insert(e.name, load(e.name));
  return out;
}

StateDict load_safetensors(const std::string& path, SafetensorsMetadata* metadata) {
  SafetensorsFile file(path);
  if (metadata) *metadata = file.metadata();
  return file.load_all();
}

}  // namespace kiln::nn::serialize
