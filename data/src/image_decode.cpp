// decode_image: reads the bytes, tells the format from its signature and
// hands over to the JPEG or PNG decoder.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "image_codecs.h"
#include "kiln/core/error.h"
#include "kiln/data/image.h"

namespace kiln::data {
namespace {

bool starts_with(std::span<const uint8_t> bytes, std::initializer_list<uint8_t> magic) {
  if (bytes.size() < magic.size()) return false;
  return std::equal(magic.begin(), magic.end(), bytes.begin());
}

// Formats Pillow would open but Kiln does not: named in the error so the user
// knows to convert them, rather than being told the file is corrupt.
const char* known_unsupported(std::span<const uint8_t> b) {
  auto text = [&](const char* s, size_t at = 0) {
    size_t n = std::strlen(s);
    return b.size() >= at + n && std::memcmp(b.data() + at, s, n) == 0;
  };
  if (text("GIF87a") || text("GIF89a")) return "GIF";
  if (text("BM")) return "BMP";
  if (text("RIFF") && text("WEBP", 8)) return "WebP";
  if (starts_with(b, {'I', 'I', 0x2A, 0x00}) || starts_with(b, {'M', 'M', 0x00, 0x2A})) return "TIFF";
  if (text("ftyp", 4)) return "HEIF/AVIF";
  if (starts_with(b, {0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20})) return "JPEG 2000";
  return nullptr;
}

}  // namespace

ImageFormat sniff_image_format(std::span<const uint8_t> bytes) {
  if (starts_with(bytes, {0xFF, 0xD8, 0xFF})) return ImageFormat::Jpeg;
  if (starts_with(bytes, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'})) return ImageFormat::Png;
  return ImageFormat::Unknown;
}

std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  // A directory opens as a stream on Linux; say what it is instead.
  if (std::filesystem::is_directory(path, ec)) KILN_ERROR("cannot read '", path.string(), "': it is a directory");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) {
    int e = errno;
    KILN_ERROR("cannot open '", path.string(), "': ", e ? std::strerror(e) : "unknown error");
  }
  std::streamoff size = f.tellg();
  KILN_CHECK(size >= 0, "cannot read '", path.string(), "': cannot tell its size");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(bytes.data()), size);
  KILN_CHECK(f || size == 0, "cannot read '", path.string(), "': read error");
  return bytes;
}

Image decode_image(const std::filesystem::path& path) {
  std::vector<uint8_t> bytes;
  try {
    bytes = read_file_bytes(path);
  } catch (const Error& e) {
    KILN_ERROR("decode_image: ", e.what());
  }
  return decode_image(bytes, path.string());
}

Image decode_image(std::span<const uint8_t> bytes, const std::string& name) {
  KILN_CHECK(!bytes.empty(), "decode_image: '", name, "': empty file");
  switch (sniff_image_format(bytes)) {
    case ImageFormat::Jpeg:
      return detail::decode_jpeg(bytes, name);
    case ImageFormat::Png:
      return detail::decode_png(bytes, name);
    case ImageFormat::Unknown:
      break;
  }
  if (const char* format = known_unsupported(bytes))
    KILN_ERROR("decode_image: '", name, "': ", format, " images are not supported (only JPEG and PNG)");
  KILN_ERROR("decode_image: '", name, "': not a JPEG or PNG file (unrecognised signature; ", bytes.size(), " bytes)");
}

}  // namespace kiln::data
