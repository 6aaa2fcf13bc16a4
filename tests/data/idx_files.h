#pragma once
// IDX and gzip files for the data tests, written by hand: a gzip member of
// stored (uncompressed) deflate blocks with its CRC-32, so the tests do not
// share zlib with the reader they check.
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace kiln::testing {

using Bytes = std::vector<unsigned char>;

inline uint32_t crc32_of(const Bytes& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : data) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// RFC 1952 member holding RFC 1951 stored blocks (at most 65535 bytes each).
inline Bytes gzip_stored(const Bytes& data) {
  Bytes out = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(data.size() - pos, 65535);
    const bool last = pos + n == data.size();
    out.push_back(last ? 1 : 0);  // BFINAL, BTYPE = 00 (stored)
    out.push_back(static_cast<unsigned char>(n));
    out.push_back(static_cast<unsigned char>(n >> 8));
    out.push_back(static_cast<unsigned char>(~n));
    out.push_back(static_cast<unsigned char>(~n >> 8));
    out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(pos),
               data.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
  } while (pos < data.size());
  const uint32_t crc = crc32_of(data), size = static_cast<uint32_t>(data.size());
  for (int s = 0; s < 32; s += 8) out.push_back(static_cast<unsigned char>(crc >> s));
  for (int s = 0; s < 32; s += 8) out.push_back(static_cast<unsigned char>(size >> s));
  return out;
}

// Header for data of the given shape and element type, then `data`.
inline Bytes idx_bytes(const std::vector<uint32_t>& shape, const Bytes& data, unsigned char type = 0x08) {
  Bytes out = {0, 0, type, static_cast<unsigned char>(shape.size())};
  for (uint32_t s : shape)
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<unsigned char>(s >> shift));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

inline void write_bytes_to(const std::string& path, const Bytes& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline Bytes read_bytes_from(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

}  // namespace kiln::testing
