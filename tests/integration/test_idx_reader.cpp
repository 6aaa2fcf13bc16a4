// examples/idx_reader: files written here with zlib (gzip'd and plain), the
// installed Fashion-MNIST test labels against their known class counts, and
// every kind of bad file, each of which must name the path in its error.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "idx_reader.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

class IdxReader : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kiln_idx_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_gz(const std::string& name, const Bytes& bytes) {
    std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    if (!bytes.empty()) {
      EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), int(bytes.size()));
    }
    gzclose(f);
    return path;
  }
  std::string write_plain(const std::string& name, const Bytes& bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return path;
  }

  fs::path dir_;
};

// Header for unsigned-byte data of the given shape, then `data`.
Bytes idx(const std::vector<uint32_t>& shape, const Bytes& data, unsigned char type = 0x08) {
  Bytes out = {0, 0, type, static_cast<unsigned char>(shape.size())};
  for (uint32_t s : shape)
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<unsigned char>(s >> shift));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes iota_bytes(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>((i * 7 + 3) % 256);
  return b;
}

void expect_contents(const kiln::Tensor& t, const std::vector<int64_t>& shape, const Bytes& data) {
  ASSERT_EQ(t.dtype(), kiln::kUInt8);
  ASSERT_EQ(std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), shape);
  ASSERT_TRUE(t.is_contiguous());
  const uint8_t* p = t.data_ptr<uint8_t>();
  for (size_t i = 0; i < data.size(); ++i) ASSERT_EQ(p[i], data[i]) << "element " << i;
}

TEST_F(IdxReader, ReadsGzippedRank3) {
  Bytes data = iota_bytes(2 * 3 * 300);
  expect_contents(kiln::examples::read_idx(write_gz("a.gz", idx({2, 3, 300}, data))), {2, 3, 300}, data);
}

TEST_F(IdxReader, ReadsPlainRank1) {
  Bytes data = iota_bytes(17);
  expect_contents(kiln::examples::read_idx(write_plain("a.idx", idx({17}, data))), {17}, data);
}

TEST_F(IdxReader, ReadsEmpty) {
  expect_contents(kiln::examples::read_idx(write_gz("e.gz", idx({0, 28}, {}))), {0, 28}, {});
}

TEST_F(IdxReader, MissingFileNamesPath) {
  std::string path = (dir_ / "missing.gz").string();
  EXPECT_KILN_ERROR(kiln::examples::read_idx(path), "cannot open '" + path + "'");
}

TEST_F(IdxReader, BadMagic) {
  std::string path = write_gz("m.gz", {0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 5});
  EXPECT_KILN_ERROR(kiln::examples::read_idx(path), "'" + path + "' is not an IDX file");
}

TEST_F(IdxReader, UnsupportedElementType) {
  std::string path = write_gz("f.gz", idx({1}, {0, 0, 0, 0}, 0x0D));
  EXPECT_KILN_ERROR(kiln::examples::read_idx(path), "element type 0xd");
}

TEST_F(IdxReader, TooShort) {
  std::string path = write_gz("s.gz", {0, 0});
  EXPECT_KILN_ERROR(kiln::examples::read_idx(path), "'" + path + "' is too short");
}

TEST_F(IdxReader, TruncatedHeader) {
  std::string path = write_gz("h.gz", {0, 0, 0x08, 2, 0, 0, 0, 4, 0, 0});
  EXPECT_KILN_ERROR(kiln::examples::read_idx(path), "truncated inside its header");
}

TEST_F(IdxReader, TruncatedData) {
  Bytes bytes = idx({10, 10}, iota_bytes(100));
  bytes.resize(bytes.size() - 1);
  std::string path = write_gz("t.gz", bytes);
  EXPECT_KILN_ERROR(kiln::examples::read_idx(path), "declares 100 bytes of data but only 99 follow");
}

TEST_F(IdxReader, TrailingBytes) {
  Bytes bytes = idx({4}, iota_bytes(4));
  bytes.push_back(9);
  EXPECT_KILN_ERROR(kiln::examples::read_idx(write_gz("x.gz", bytes)), "has bytes after the data");
}

TEST_F(IdxReader, ImplausibleShape) {
  std::string path = write_gz("big.gz", idx({0xFFFFFFFF, 0xFFFFFFFF}, {}));
  EXPECT_KILN_ERROR(kiln::examples::read_idx(path), "implausibly large shape");
}

TEST_F(IdxReader, CorruptedGzipStream) {
  // A gzip member whose stored CRC-32 no longer matches its contents (as after
  // a bit flip on disk): zlib reports it at the end of the stream, and the
  // reader turns that into an error naming the file.
  std::string path = write_gz("c.gz", idx({4096}, iota_bytes(4096)));
  Bytes raw;
  {
    std::ifstream in(path, std::ios::binary);
    raw.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(raw.size(), 18u);
  raw[raw.size() - 8] ^= 0x5A;  // the trailer: CRC-32 then size, little-endian
  write_plain("c.gz", raw);
  EXPECT_KILN_ERROR(kiln::examples::read_idx(path), "'" + path + "' is corrupted");
}

TEST(IdxReaderDataset, FashionMnistTestLabels) {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not installed (scripts/install-deps installs it)";
  kiln::Tensor labels = kiln::examples::read_idx(path);
  ASSERT_EQ(labels.dim(), 1);
  ASSERT_EQ(labels.size(0), 10000);
  // The published test split: exactly 1000 images of each of the 10 classes.
  std::vector<int> counts(10, 0);
  const uint8_t* p = labels.data_ptr<uint8_t>();
  for (int64_t i = 0; i < labels.size(0); ++i) {
    ASSERT_LT(p[i], 10);
    ++counts[p[i]];
  }
  for (int c = 0; c < 10; ++c) EXPECT_EQ(counts[c], 1000) << "class " << c;
}

TEST(IdxReaderDataset, FashionMnistTestImagesShape) {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not installed (scripts/install-deps installs it)";
  kiln::Tensor images = kiln::examples::read_idx(path);
  ASSERT_EQ(std::vector<int64_t>(images.sizes().begin(), images.sizes().end()), (std::vector<int64_t>{10000, 28, 28}));
}

}  // namespace
