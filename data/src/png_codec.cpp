// PNG decoding and encoding with libpng, converting to RGB as Pillow does.
//
// libpng reports errors by calling our error function, which records the
// message and longjmps to the setjmp in run()/run_write(). The png structs
// are owned by context objects created before that setjmp, whose destructors
// free them on every path.
//
// Conversions follow Pillow rather than libpng's own defaults: libpng only
// unpacks (sub-byte greyscale to 8 bits, palette to RGB); dropping alpha and
// turning 16-bit samples into 8-bit ones is done here, because Pillow clips
// 16-bit greyscale (mode I;16) at 255 instead of keeping its high byte.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "image_codecs.h"
#include "kiln/core/error.h"

namespace kiln::data::detail {
namespace {

struct PngIo {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  char message[256] = {0};
  bool truncated = false;
};

[[noreturn]] void on_error(png_structp png, png_const_charp msg) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->message, sizeof(io->message), "%s", msg);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // e.g. "iCCP: known incorrect sRGB profile"

void on_read(png_structp png, png_bytep out, png_size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (n > io->size - io->pos) {
    io->truncated = true;
    png_error(png, "unexpected end of data");
  }
  std::memcpy(out, io->data + io->pos, n);
  io->pos += n;
}

struct ReadContext {
  PngIo io;
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::vector<uint8_t> raw;  // decoded samples before conversion to RGB
  std::vector<png_bytep> rows;
  ReadContext() = default;
  ~ReadContext() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
  ReadContext(const ReadContext&) = delete;
  ReadContext& operator=(const ReadContext&) = delete;
};

struct Layout {
  int channels = 0;   // after libpng's unpacking: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
  int bit_depth = 0;  // 8 or 16
};

bool run(ReadContext& ctx, Layout& layout, Image& out) {
  if (setjmp(png_jmpbuf(ctx.png))) return false;
  png_set_read_fn(ctx.png, &ctx.io, on_read);
  png_read_info(ctx.png, ctx.info);
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(ctx.png, ctx.info, &width, &height, &bit_depth, &color_type, &interlace, nullptr, nullptr);
  if (static_cast<uint64_t>(width) * height > kMaxImagePixels)
    png_error(ctx.png, "image has more pixels than Pillow's decompression-bomb limit of 178956970");
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(ctx.png);  // may add alpha from tRNS
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(ctx.png);
  png_set_interlace_handling(ctx.png);
  png_read_update_info(ctx.png, ctx.info);
  layout.channels = png_get_channels(ctx.png, ctx.info);
  layout.bit_depth = png_get_bit_depth(ctx.png, ctx.info);
  if ((layout.bit_depth != 8 && layout.bit_depth != 16) || layout.channels < 1 || layout.channels > 4)
    png_error(ctx.png, "unexpected sample layout after unpacking");
  size_t rowbytes = png_get_rowbytes(ctx.png, ctx.info);
  out.width = width;
  out.height = height;
  out.channels = 3;  // always converted to RGB, as Pillow's convert("RGB")
  out.pixels.resize(static_cast<size_t>(width) * height * 3);
  const bool direct = layout.channels == 3 && layout.bit_depth == 8;  // already RGB8: decode in place
  if (!direct) ctx.raw.resize(rowbytes * height);
  ctx.rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) ctx.rows[y] = direct ? out.row(y) : ctx.raw.data() + rowbytes * y;
  png_read_image(ctx.png, ctx.rows.data());
  // No png_read_end: trailing chunks (and a missing IEND) do not matter, as in Pillow.
  return true;
}

void to_rgb(const ReadContext& ctx, const Layout& layout, Image& out) {
  const int ch = layout.channels;
  const size_t n = static_cast<size_t>(out.width) * static_cast<size_t>(out.height);
  const uint8_t* src = ctx.raw.data();
  uint8_t* dst = out.pixels.data();
  if (layout.bit_depth == 8) {
    for (size_t i = 0; i < n; ++i, src += ch, dst += 3) {
      if (ch <= 2) {
        dst[0] = dst[1] = dst[2] = src[0];
      } else {
        dst[0] = src[0], dst[1] = src[1], dst[2] = src[2];
      }
    }
    return;
  }
  // 16-bit big-endian samples.
  for (size_t i = 0; i < n; ++i, src += 2 * ch, dst += 3) {
    if (ch == 1) {
      // Pillow opens this as I;16 and clips to 255 when converting.
      unsigned v = (unsigned(src[0]) << 8) | src[1];
      dst[0] = dst[1] = dst[2] = static_cast<uint8_t>(v > 255 ? 255 : v);
    } else if (ch == 2) {
      dst[0] = dst[1] = dst[2] = src[0];  // Pillow opens it as RGBA from the high bytes
    } else {
      dst[0] = src[0], dst[1] = src[2], dst[2] = src[4];
    }
  }
}

struct WriteContext {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::vector<uint8_t>* sink = nullptr;
  char message[256] = {0};
  ~WriteContext() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
  }
};

[[noreturn]] void on_write_error(png_structp png, png_const_charp msg) {
  auto* ctx = static_cast<WriteContext*>(png_get_error_ptr(png));
  std::snprintf(ctx->message, sizeof(ctx->message), "%s", msg);
  png_longjmp(png, 1);
}

void on_write(png_structp png, png_bytep data, png_size_t n) {
  auto* sink = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  sink->insert(sink->end(), data, data + n);
}

void on_flush(png_structp) {}

bool run_write(WriteContext& ctx, const Image& image, std::vector<png_bytep>& rows) {
  if (setjmp(png_jmpbuf(ctx.png))) return false;
  png_set_write_fn(ctx.png, ctx.sink, on_write, on_flush);
  png_set_IHDR(ctx.png, ctx.info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8,
               image.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(ctx.png, ctx.info);
  png_write_image(ctx.png, rows.data());
  png_write_end(ctx.png, nullptr);
  return true;
}

}  // namespace

Image decode_png(std::span<const uint8_t> bytes, const std::string& name) {
  ReadContext ctx;
  ctx.io.data = bytes.data();
  ctx.io.size = bytes.size();
  ctx.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx.io, on_error, on_warning);
  KILN_CHECK(ctx.png, "decode_image: '", name, "': libpng could not start (out of memory?)");
  ctx.info = png_create_info_struct(ctx.png);
  KILN_CHECK(ctx.info, "decode_image: '", name, "': libpng could not start (out of memory?)");
  Image out;
  Layout layout;
  if (!run(ctx, layout, out)) {
    if (ctx.io.truncated)
      KILN_ERROR("decode_image: '", name, "': truncated PNG file (the data ends before the image does)");
    KILN_ERROR("decode_image: '", name, "': corrupt or unsupported PNG: ", ctx.io.message);
  }
  if (!ctx.raw.empty()) to_rgb(ctx, layout, out);
  return out;
}

}  // namespace kiln::data::detail

namespace kiln::data {

using detail::WriteContext;

std::vector<uint8_t> encode_png(const Image& image) {
  KILN_CHECK(image.width > 0 && image.height > 0 && image.width <= 0x7fffffff && image.height <= 0x7fffffff,
             "encode_png: bad image size ", image.width, "x", image.height);
  KILN_CHECK(image.channels == 1 || image.channels == 3, "encode_png: only greyscale (1 channel) or RGB (3 channels) ",
             "images, got ", image.channels, " channels");
  KILN_CHECK(image.consistent(), "encode_png: a ", image.width, "x", image.height, "x", image.channels,
             " image needs ", image.width * image.height * image.channels, " bytes, got ", image.pixels.size());
  std::vector<uint8_t> sink;
  WriteContext ctx;
  ctx.sink = &sink;
  ctx.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, detail::on_write_error, detail::on_warning);
  KILN_CHECK(ctx.png, "encode_png: libpng could not start");
  ctx.info = png_create_info_struct(ctx.png);
  KILN_CHECK(ctx.info, "encode_png: libpng could not start");
  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  for (int64_t y = 0; y < image.height; ++y) rows[y] = const_cast<uint8_t*>(image.row(y));
  if (!detail::run_write(ctx, image, rows)) KILN_ERROR("encode_png: ", ctx.message);
  return sink;
}

void write_png(const std::filesystem::path& path, const Image& image) {
  std::vector<uint8_t> bytes = encode_png(image);
  std::ofstream f(path, std::ios::binary);
  KILN_CHECK(f, "write_png: cannot open '", path.string(), "' for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  KILN_CHECK(f, "write_png: error writing '", path.string(), "'");
}

}  // namespace kiln::data
