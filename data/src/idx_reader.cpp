// IDX files, the format MNIST and Fashion-MNIST ship in, gzip'd or plain.
//
// Layout: two zero bytes, an element-type byte (0x08 = unsigned byte), a
// rank byte, one big-endian uint32 per dimension, then the elements
// row-major. zlib's gzread reads plain files through unchanged, so one path
// serves both.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

#include "kiln/core/error.h"
#include "kiln/core/native/factory.h"
#include "kiln/data/dataset.h"

namespace kiln::data {
namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to n bytes; fewer only at the end of the stream. zlib reports a
// damaged gzip stream (a bad CRC, a broken deflate block) as an error rather
// than as a short read.
size_t read_some(gzFile f, void* dst, size_t n, const std::string& path) {
  size_t done = 0;
  auto* out = static_cast<unsigned char*>(dst);
  while (done < n) {
    // gzread takes an unsigned count and returns int: read in bounded chunks.
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, size_t{1} << 30));
    const int got = gzread(f, out + done, chunk);
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      KILN_ERROR("read_idx: '", path, "' is corrupted (", msg ? msg : "zlib error", ")");
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

}  // namespace

Tensor read_idx(const std::filesystem::path& file) {
  const std::string path = file.string();
  errno = 0;
  GzFile handle(gzopen(path.c_str(), "rb"));
  KILN_CHECK(handle != nullptr, "read_idx: cannot open '", path, "': ", errno ? std::strerror(errno) : "zlib error");
  gzFile f = handle.get();

  std::array<unsigned char, 4> magic{};
  KILN_CHECK(read_some(f, magic.data(), 4, path) == 4, "read_idx: '", path, "' is too short to be an IDX file");
  KILN_CHECK(magic[0] == 0 && magic[1] == 0, "read_idx: '", path,
             "' is not an IDX file (bad magic bytes; expected a gzip'd or plain IDX file)");
  KILN_CHECK(magic[2] == 0x08, "read_idx: '", path, "' holds element type 0x", std::hex, int{magic[2]},
             "; only unsigned bytes (0x08) are supported");
  const int rank = magic[3];
  KILN_CHECK(rank >= 1, "read_idx: '", path, "' declares rank 0");

  std::vector<int64_t> sizes(static_cast<size_t>(rank));
  int64_t numel = 1;
  for (int d = 0; d < rank; ++d) {
    std::array<unsigned char, 4> b{};
    KILN_CHECK(read_some(f, b.data(), 4, path) == 4, "read_idx: '", path, "' is truncated inside its header");
    sizes[d] = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | int64_t{b[3]};
    // A garbage header must not turn into a huge allocation.
    KILN_CHECK(sizes[d] == 0 || numel <= (int64_t{1} << 34) / sizes[d], "read_idx: '", path,
               "' declares an implausibly large shape");
    numel *= sizes[d];
  }

  Tensor out = native::empty(sizes, kUInt8);
  const size_t got = read_some(f, out.data_ptr(), static_cast<size_t>(numel), path);
  KILN_CHECK(got == static_cast<size_t>(numel), "read_idx: '", path, "' is truncated: its header declares ", numel,
             " bytes of data but only ", got, " follow");
  unsigned char extra = 0;
  KILN_CHECK(read_some(f, &extra, 1, path) == 0, "read_idx: '", path,
             "' has bytes after the data its header declares (corrupted or not IDX)");
  return out;
}

}  // namespace kiln::data
