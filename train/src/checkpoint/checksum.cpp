// The checkpoint checksum: zlib's CRC-32 over a length-prefixed encoding of
// the tensors and attributes (see checkpoint_format.h).
#include <zlib.h>

#include <bit>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "checkpoint_format.h"

namespace kiln::train::detail {

Checksum::Checksum() : crc_(static_cast<uint32_t>(::crc32(0L, Z_NULL, 0))) {}

void Checksum::bytes(const void* data, size_t n) {
  // zlib's length is a uInt: feed tensors over 4 GiB in pieces.
  constexpr size_t kChunk = size_t{1} << 30;
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    size_t m = n < kChunk ? n : kChunk;
    crc_ = static_cast<uint32_t>(::crc32(crc_, p, static_cast<uInt>(m)));
    p += m;
    n -= m;
  }
}

void Checksum::u64(uint64_t v) {
  // Little-endian whatever the host, so the checksum is a property of the file.
  unsigned char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
  bytes(b, 8);
}

void Checksum::str(const std::string& s) {
  u64(s.size());
  bytes(s.data(), s.size());
}

void Checksum::add_tensor(const std::string& group, const std::string& name, const Tensor& host) {
  KILN_CHECK(host.is_cpu() && host.is_contiguous(), "checkpoint checksum: '", group, "/", name,
             "' must be a contiguous CPU tensor");
  bytes("T", 1);
  str(group + "/" + name);
  str(dtype_name(host.dtype()));
  u64(static_cast<uint64_t>(host.dim()));
  for (int64_t d : host.sizes()) u64(static_cast<uint64_t>(d));
  // HDF5 stores little-endian, and tensors are read back in host order,
  // which hdf5_tensor.cpp requires to be little-endian too.
  u64(host.nbytes());
  if (host.nbytes() > 0) bytes(host.data_ptr(), host.nbytes());
}

void Checksum::add_attr(const std::string& name, const nn::serialize::Hdf5Attr& value) {
  bytes("A", 1);
  str(name);
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::string>) {
          bytes("s", 1);
          str(v);
        } else if constexpr (std::is_same_v<V, int64_t>) {
          bytes("i", 1);
          u64(static_cast<uint64_t>(v));
        } else {
          bytes("d", 1);
          u64(std::bit_cast<uint64_t>(v));
        }
      },
      value);
}

std::string Checksum::hex() const {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(crc_));
  return buf;
}

}  // namespace kiln::train::detail
