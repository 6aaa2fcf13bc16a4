// kiln::data::read_idx: files written here (gzip'd and plain), the installed
// Fashion-MNIST test split against its known class counts, and every kind of
// bad file, each of which must name the path in its error.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/idx_files.h"
#include "kiln/data/dataset.h"
#include "nn/temp_dir.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using kiln::data::read_idx;
using namespace kiln::testing;

class IdxReader : public TempDirTest {
 protected:
  std::string write_gz(const std::string& name, const Bytes& bytes) {
    write_bytes_to(path(name), gzip_stored(bytes));
    return path(name);
  }
  std::string write_plain(const std::string& name, const Bytes& bytes) {
    write_bytes_to(path(name), bytes);
    return path(name);
  }
};

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
  expect_contents(read_idx(write_gz("a.gz", idx_bytes({2, 3, 300}, data))), {2, 3, 300}, data);
}

TEST_F(IdxReader, ReadsGzipSpanningSeveralBlocks) {
  Bytes data = iota_bytes(3 * 256 * 256);  // 196608 bytes: four stored blocks
  expect_contents(read_idx(write_gz("big.gz", idx_bytes({3, 256, 256}, data))), {3, 256, 256}, data);
}

TEST_F(IdxReader, ReadsPlainRank1) {
  Bytes data = iota_bytes(17);
  expect_contents(read_idx(write_plain("a.idx", idx_bytes({17}, data))), {17}, data);
}

TEST_F(IdxReader, ReadsEmpty) { expect_contents(read_idx(write_gz("e.gz", idx_bytes({0, 28}, {}))), {0, 28}, {}); }

TEST_F(IdxReader, AcceptsFilesystemPaths) {
  Bytes data = iota_bytes(6);
  write_gz("p.gz", idx_bytes({2, 3}, data));
  expect_contents(read_idx(dir_ / "p.gz"), {2, 3}, data);
}

TEST_F(IdxReader, MissingFileNamesPath) {
  std::string file = path("missing.gz");
  EXPECT_KILN_ERROR(read_idx(file), "cannot open '" + file + "'");
}

TEST_F(IdxReader, BadMagic) {
  std::string file = write_gz("m.gz", {0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 5});
  EXPECT_KILN_ERROR(read_idx(file), "'" + file + "' is not an IDX file");
}

TEST_F(IdxReader, UnsupportedElementType) {
  std::string file = write_gz("f.gz", idx_bytes({1}, {0, 0, 0, 0}, 0x0D));
  EXPECT_KILN_ERROR(read_idx(file), "element type 0xd");
}

TEST_F(IdxReader, RankZero) {
  std::string file = write_gz("r.gz", {0, 0, 0x08, 0});
  EXPECT_KILN_ERROR(read_idx(file), "declares rank 0");
}

TEST_F(IdxReader, TooShort) {
  std::string file = write_gz("s.gz", {0, 0});
  EXPECT_KILN_ERROR(read_idx(file), "'" + file + "' is too short");
}

TEST_F(IdxReader, TruncatedHeader) {
  std::string file = write_gz("h.gz", {0, 0, 0x08, 2, 0, 0, 0, 4, 0, 0});
  EXPECT_KILN_ERROR(read_idx(file), "truncated inside its header");
}

TEST_F(IdxReader, TruncatedData) {
  Bytes bytes = idx_bytes({10, 10}, iota_bytes(100));
  bytes.resize(bytes.size() - 1);
  std::string file = write_gz("t.gz", bytes);
  EXPECT_KILN_ERROR(read_idx(file), "declares 100 bytes of data but only 99 follow");
}

TEST_F(IdxReader, TrailingBytes) {
  Bytes bytes = idx_bytes({4}, iota_bytes(4));
  bytes.push_back(9);
  EXPECT_KILN_ERROR(read_idx(write_gz("x.gz", bytes)), "has bytes after the data");
}

TEST_F(IdxReader, ImplausibleShape) {
  std::string file = write_gz("big.gz", idx_bytes({0xFFFFFFFF, 0xFFFFFFFF}, {}));
  EXPECT_KILN_ERROR(read_idx(file), "implausibly large shape");
}

TEST_F(IdxReader, CorruptedGzipStream) {
  // A gzip member whose stored CRC-32 no longer matches its contents (as
  // after a bit flip on disk): zlib reports it at the end of the stream, and
  // the reader turns that into an error naming the file.
  Bytes raw = gzip_stored(idx_bytes({4096}, iota_bytes(4096)));
  raw[raw.size() - 8] ^= 0x5A;  // the trailer: CRC-32 then size, little-endian
  std::string file = write_plain("c.gz", raw);
  EXPECT_KILN_ERROR(read_idx(file), "'" + file + "' is corrupted");
}

const std::string kFashion = "/usr/share/datasets/fashion-mnist";

TEST(IdxReaderDataset, FashionMnistTestLabels) {
  const std::string file = kFashion + "/t10k-labels-idx1-ubyte.gz";
  if (!fs::exists(file)) GTEST_SKIP() << file << " not installed (scripts/install-deps installs it)";
  kiln::Tensor labels = read_idx(file);
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
  const std::string file = kFashion + "/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(file)) GTEST_SKIP() << file << " not installed (scripts/install-deps installs it)";
  kiln::Tensor images = read_idx(file);
  ASSERT_EQ(std::vector<int64_t>(images.sizes().begin(), images.sizes().end()), (std::vector<int64_t>{10000, 28, 28}));
}

}  // namespace
