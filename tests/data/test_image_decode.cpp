// JPEG/PNG decoding against Pillow's Image.open(f).convert("RGB")
// (tools/fixtures/image_processors.py), and the errors for bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "image_fixtures.h"
#include "kiln/data/image.h"

using namespace kiln;
using namespace kiln::data;
using namespace kiln::testing;

namespace {

const GoldenFile& golden() {
  static GoldenFile file("image_processors/decode.safetensors");
  return file;
}

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("kiln_test_image_decode_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// Removes the temporary folder when the suite ends.
class TempDirCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir(), ec);
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new TempDirCleanup);

std::filesystem::path write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  auto path = temp_dir() / name;
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<uint8_t> fixture_bytes(const std::string& file) { return read_file_bytes(image_fixture("images/" + file)); }

// decode_image must throw kiln::Error whose message names `name` and contains `fragment`.
void expect_decode_error(std::span<const uint8_t> bytes, const std::string& name, const std::string& fragment) {
  try {
    decode_image(bytes, name);
    ADD_FAILURE() << name << ": expected kiln::Error containing '" << fragment << "'";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

}  // namespace

TEST(ImageDecode, SyntheticFilesMatchPillow) {
  const auto& g = golden();
  int compared = 0;
  for (const auto& [name, c] : g.cases.items()) {
    if (!c.contains("file")) continue;
    SCOPED_TRACE(name + " (" + c["pil_mode"].get<std::string>() + ", drawn as " + c["drawn_as"].get<std::string>() +
                 ")");
    Image im = decode_image(image_fixture(c["file"]));
    Tensor expected = g.get(name);  // [H, W, 3] uint8
    ASSERT_EQ(im.height, expected.size(0));
    ASSERT_EQ(im.width, expected.size(1));
    std::vector<uint8_t> want = bytes_of(expected);
    EXPECT_EQ(max_byte_diff(im.pixels, want), 0);
    EXPECT_TRUE(im.pixels == want);
    ++compared;
  }
  EXPECT_EQ(compared, 20);  // every file the script draws
}

TEST(ImageDecode, PhotosMatchPillow) {
  KILN_SKIP_WITHOUT_PHOTOS();
  const auto& g = golden();
  for (const auto& [name, c] : g.cases.items()) {
    if (!c.contains("photo")) continue;
    SCOPED_TRACE(name);
    Image im = decode_image(photo_dir() / c["photo"].get<std::string>());
    ASSERT_EQ(im.height, c["height"].get<int64_t>());
    ASSERT_EQ(im.width, c["width"].get<int64_t>());
    const int64_t s = c["sample_stride"];
    EXPECT_EQ(max_byte_diff(sample_hwc(im.pixels, im.width, im.height, 3, s), bytes_of(g.get(name + ".sample"))), 0);
    EXPECT_EQ(checksum_u8(im.pixels.data(), im.pixels.size()), c["checksum"].get<std::string>());
  }
}

TEST(ImageDecode, FormatComesFromMagicBytesNotExtension) {
  // A PNG named .jpg and a JPEG named .png decode as what they are.
  auto png_as_jpg = write_temp("really_a_png.jpg", fixture_bytes("rgb_landscape.png"));
  auto jpg_as_png = write_temp("really_a_jpeg.png", fixture_bytes("grey.jpg"));
  EXPECT_EQ(decode_image(png_as_jpg).pixels, decode_image(image_fixture("images/rgb_landscape.png")).pixels);
  EXPECT_EQ(decode_image(jpg_as_png).pixels, decode_image(image_fixture("images/grey.jpg")).pixels);
  EXPECT_EQ(sniff_image_format(fixture_bytes("cmyk.jpg")), ImageFormat::Jpeg);
  EXPECT_EQ(sniff_image_format(fixture_bytes("la16.png")), ImageFormat::Png);
  std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0};
  EXPECT_EQ(sniff_image_format(gif), ImageFormat::Unknown);
}

TEST(ImageDecode, PngRoundTrip) {
  Image im = pattern_image("noise", 23, 11);
  std::vector<uint8_t> png = encode_png(im);
  EXPECT_EQ(sniff_image_format(png), ImageFormat::Png);
  Image back = decode_image(png, "roundtrip");
  EXPECT_EQ(back.width, 23);
  EXPECT_EQ(back.height, 11);
  EXPECT_EQ(back.pixels, im.pixels);
  auto path = temp_dir() / "written.png";
  write_png(path, im);
  EXPECT_EQ(decode_image(path).pixels, im.pixels);
  EXPECT_KILN_ERROR(encode_png(Image()), "bad image size");
}

TEST(ImageDecode, TruncatedJpeg) {
  for (const char* file : {"rgb_portrait_420.jpg", "rgb_444_progressive.jpg", "cmyk.jpg"}) {
    std::vector<uint8_t> bytes = fixture_bytes(file);
    for (double keep : {0.2, 0.5, 0.9}) {
      std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(bytes.size() * keep));
      expect_decode_error(cut, std::string("cut_") + file, "truncated JPEG");
    }
    // Only the SOI marker and nothing else.
    expect_decode_error(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 4), std::string("soi_") + file, "JPEG");
  }
  auto path = write_temp("half.jpg", [] {
    auto b = fixture_bytes("grey.jpg");
    b.resize(b.size() / 2);
    return b;
  }());
  EXPECT_KILN_ERROR(decode_image(path), path.string());
}

TEST(ImageDecode, JpegWithoutEndMarkerIsTruncated) {
  // Pillow refuses a JPEG cut just before its EOI marker ("image file is
  // truncated"): libjpeg reads past the last scan's data to find it.
  std::vector<uint8_t> bytes = fixture_bytes("rgb_portrait_420.jpg");
  ASSERT_EQ(bytes[bytes.size() - 2], 0xFF);
  ASSERT_EQ(bytes[bytes.size() - 1], 0xD9);
  std::vector<uint8_t> no_eoi(bytes.begin(), bytes.end() - 2);
  expect_decode_error(no_eoi, "no_eoi.jpg", "truncated JPEG");
}

TEST(ImageDecode, CorruptJpegHeader) {
  std::vector<uint8_t> bytes = fixture_bytes("rgb_portrait_420.jpg");
  // Overwrite everything after SOI with garbage that is not a marker.
  std::vector<uint8_t> bad(bytes.begin(), bytes.begin() + 3);
  bad.insert(bad.end(), 200, 0x42);
  expect_decode_error(bad, "garbage.jpg", "JPEG");
}

TEST(ImageDecode, TruncatedPng) {
  for (const char* file : {"rgb_landscape.png", "rgb_adam7.png", "palette_trns.png", "grey16.png"}) {
    std::vector<uint8_t> bytes = fixture_bytes(file);
    for (double keep : {0.1, 0.5, 0.8}) {
      std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(bytes.size() * keep));
      expect_decode_error(cut, std::string("cut_") + file, "PNG");
    }
  }
  // The signature and half an IHDR: truncated.
  std::vector<uint8_t> bytes = fixture_bytes("rgb_small.png");
  expect_decode_error(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 20), "ihdr.png", "truncated PNG");
}

TEST(ImageDecode, CorruptPngCrc) {
  std::vector<uint8_t> bytes = fixture_bytes("rgb_landscape.png");
  bytes[20] ^= 0x55;  // inside IHDR: its CRC no longer matches
  expect_decode_error(bytes, "bad_crc.png", "PNG");
}

TEST(ImageDecode, RandomBytesAndOtherFormats) {
  std::mt19937 rng(7);
  std::vector<uint8_t> noise(1000);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  noise[0] = 0x12;  // not FF or 89
  expect_decode_error(noise, "noise.bin", "not a JPEG or PNG file");
  // Random bytes after a valid signature: the decoders reject them cleanly.
  for (auto magic :
       {std::vector<uint8_t>{0xFF, 0xD8, 0xFF}, std::vector<uint8_t>{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}}) {
    std::vector<uint8_t> bytes = magic;
    bytes.insert(bytes.end(), noise.begin(), noise.end());
    expect_decode_error(bytes, "magic_then_noise", "corrupt");
  }
  std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0};
  expect_decode_error(gif, "anim.gif", "GIF images are not supported");
  std::vector<uint8_t> webp = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'};
  expect_decode_error(webp, "x.webp", "WebP images are not supported");
}

static uint32_t png_crc(const uint8_t* p, size_t n) {  // PNG's CRC (ISO-HDLC), bit by bit
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

TEST(ImageDecode, DecompressionBombsAreRefused) {
  // 20000 x 20000 = 4e8 pixels, over Pillow's 178956970 limit: refused
  // from the header, before any allocation.
  auto put32 = [](uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
  };
  std::vector<uint8_t> png = fixture_bytes("rgb_small.png");
  put32(&png[16], 20000);  // IHDR width, height, then its CRC over type + data
  put32(&png[20], 20000);
  put32(&png[29], png_crc(&png[12], 17));
  expect_decode_error(png, "bomb.png", "decompression-bomb limit");

  std::vector<uint8_t> jpg = fixture_bytes("rgb_portrait_420.jpg");
  size_t sof = 2;
  while (sof + 9 < jpg.size() && !(jpg[sof] == 0xFF && jpg[sof + 1] == 0xC0)) ++sof;
  ASSERT_LT(sof + 9, jpg.size());
  jpg[sof + 5] = 20000 >> 8, jpg[sof + 6] = 20000 & 0xFF;  // height
  jpg[sof + 7] = 20000 >> 8, jpg[sof + 8] = 20000 & 0xFF;  // width
  expect_decode_error(jpg, "bomb.jpg", "decompression-bomb limit");
}

TEST(ImageDecode, MissingAndEmptyFiles) {
  auto missing = temp_dir() / "does_not_exist.jpg";
  EXPECT_KILN_ERROR(decode_image(missing), missing.string());
  EXPECT_KILN_ERROR(decode_image(missing), "No such file");
  auto empty = write_temp("empty.png", {});
  EXPECT_KILN_ERROR(decode_image(empty), empty.string());
  EXPECT_KILN_ERROR(decode_image(empty), "empty file");
  EXPECT_KILN_ERROR(decode_image(temp_dir()), "directory");
  expect_decode_error({}, "nothing", "empty file");
}
