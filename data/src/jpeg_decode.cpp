// JPEG decoding with libjpeg(-turbo), converting to RGB as Pillow does.
//
// libjpeg reports errors through error_exit, which must not return: ours
// formats the message and longjmps back to the one setjmp in run(). Nothing
// with a destructor lives in run()'s frame past that setjmp, and the
// decompressor itself is destroyed by JpegContext's destructor, so a corrupt
// file neither leaks nor aborts.
//
// Truncated data: libjpeg's memory source does not fail when it runs out; it
// warns (JWRN_JPEG_EOF), invents an EOI and fills the rest of the image with
// grey. Pillow refuses such files ("image file is truncated"), so that one
// warning is an error here. Other corrupt-data warnings (extraneous bytes
// before a marker, say) are ignored, as Pillow ignores them.
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <cstring>
#include <vector>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "image_codecs.h"
#include "kiln/core/error.h"

namespace kiln::data::detail {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

[[noreturn]] void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  err->pub.format_message(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_emit_message(j_common_ptr cinfo, int level) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (level < 0 && err->pub.msg_code == JWRN_JPEG_EOF) {
    err->truncated = true;
    err->pub.format_message(cinfo, err->message);
    std::longjmp(err->jump, 1);
  }
  // Other warnings and trace messages: silent.
}

struct JpegContext {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  bool created = false;
  std::vector<uint8_t> scratch;  // one row of grey or CMYK samples

  JpegContext() {
    std::memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error_exit;
    err.pub.emit_message = on_emit_message;
    err.message[0] = '\0';
    err.truncated = false;
  }
  ~JpegContext() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
  JpegContext(const JpegContext&) = delete;
  JpegContext& operator=(const JpegContext&) = delete;
};

// Pillow's cmyk2rgb on Adobe-inverted samples: R = (255-K) - (255-K)*C/255,
// the division done as ((t >> 8) + t) >> 8 with t = C*(255-K) + 128.
inline uint8_t cmyk_channel(unsigned c, unsigned nk) {
  unsigned t = c * nk + 128;
  unsigned prod = ((t >> 8) + t) >> 8;
  return static_cast<uint8_t>(nk - prod);  // prod <= nk, no clipping needed
}

// Returns false (message in ctx.err) when libjpeg gave up. Only plain data
// lives in this frame after setjmp; `out` and ctx belong to the caller.
bool run(JpegContext& ctx, const uint8_t* data, size_t size, Image& out, const char*& unsupported) {
  jpeg_decompress_struct& cinfo = ctx.cinfo;
  if (setjmp(ctx.err.jump)) return false;
  jpeg_create_decompress(&cinfo);
  ctx.created = true;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  if (static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height > kMaxImagePixels) {
    unsupported = "image size (more pixels than Pillow's decompression-bomb limit of 178956970)";
    return false;
  }

  // Pillow: 1 component -> L, 3 -> RGB, 4 -> CMYK (inverted); nothing else.
  int components = cinfo.num_components;
  if (components == 1) {
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else if (components == 3) {
    cinfo.out_color_space = JCS_RGB;
  } else if (components == 4) {
    cinfo.out_color_space = JCS_CMYK;  // libjpeg turns YCCK into CMYK itself
  } else {
    unsupported = "JPEG with a number of colour components other than 1, 3 or 4";
    return false;
  }
  jpeg_start_decompress(&cinfo);
  if (static_cast<int>(cinfo.output_components) != (components == 3 ? 3 : components)) {
    unsupported = "JPEG colour conversion";
    return false;
  }
  out.width = cinfo.output_width;
  out.height = cinfo.output_height;
  out.channels = 3;  // always converted to RGB, as Pillow's convert("RGB")
  out.pixels.resize(static_cast<size_t>(out.width) * static_cast<size_t>(out.height) * 3);
  if (components != 3) ctx.scratch.resize(static_cast<size_t>(out.width) * components);

  const int64_t w = out.width;
  while (cinfo.output_scanline < cinfo.output_height) {
    uint8_t* dst = out.row(cinfo.output_scanline);
    JSAMPROW row = components == 3 ? dst : ctx.scratch.data();
    jpeg_read_scanlines(&cinfo, &row, 1);
    if (components == 1) {
      const uint8_t* g = ctx.scratch.data();
      for (int64_t x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = g[x];
    } else if (components == 4) {
      const uint8_t* s = ctx.scratch.data();
      for (int64_t x = 0; x < w; ++x, s += 4) {
        // Adobe CMYK JPEGs store inverted samples; Pillow ("CMYK;I") undoes that.
        unsigned nk = s[3];  // 255 - (255 - stored K)
        dst[3 * x + 0] = cmyk_channel(255u - s[0], nk);
        dst[3 * x + 1] = cmyk_channel(255u - s[1], nk);
        dst[3 * x + 2] = cmyk_channel(255u - s[2], nk);
      }
    }
  }
  // No jpeg_finish_decompress: whatever follows the last scan's data is not
  // needed (libjpeg has usually met the EOI marker by now anyway; a file cut
  // just before it is reported truncated, as Pillow does).
  return true;
}

}  // namespace

Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& name) {
  JpegContext ctx;
  Image out;
  const char* unsupported = nullptr;
  if (!run(ctx, bytes.data(), bytes.size(), out, unsupported)) {
    if (unsupported) KILN_ERROR("decode_image: '", name, "': unsupported ", unsupported);
    if (ctx.err.truncated)
      KILN_ERROR("decode_image: '", name,
                 "': truncated JPEG file (the data ends before the image does: ", ctx.err.message, ")");
    KILN_ERROR("decode_image: '", name, "': corrupt or unsupported JPEG: ", ctx.err.message);
  }
  return out;
}

}  // namespace kiln::data::detail
