// ImageFolderDataset (torchvision ImageFolder's order and errors) on small
// PNGs written into a temp dir, and IdxDataset on hand-written IDX files and
// on the installed Fashion-MNIST.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/idx_files.h"
#include "kiln/data/dataset.h"
#include "nn/temp_dir.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using namespace kiln;
using namespace kiln::data;
using namespace kiln::testing;

// A w x h RGB image whose bytes encode `tag`, so each file is recognisable.
Image tagged_image(int64_t w, int64_t h, int tag) {
  Image im(w, h);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>(tag * 31 + i * 7);
  return im;
}

class ImageFolder : public TempDirTest {
 protected:
  fs::path root() const { return dir_ / "root"; }
  void image(const std::string& relative, int tag) {
    fs::path p = root() / relative;
    fs::create_directories(p.parent_path());
    write_png(p, tagged_image(3 + tag % 2, 2, tag));
  }
  void text(const std::string& relative, const std::string& contents = "not an image") {
    fs::path p = root() / relative;
    fs::create_directories(p.parent_path());
    write_file_bytes(p.string(), contents);
  }
};

TEST_F(ImageFolder, TorchvisionOrderAndLabels) {
  // Class directories sorted by name (bytewise: "Zebra" < "cat" < "dog");
  // inside a class, os.walk's directories sorted by path, each one's files
  // sorted by name; extensions .jpg/.jpeg/.png in any case; everything else
  // (text files, files in ROOT itself) ignored. The format comes from the
  // bytes, so a PNG named .JPG loads.
  image("cat/b.png", 1);
  image("cat/a.JPG", 2);
  image("cat/z.png", 3);
  image("cat/sub/c.png", 4);
  image("cat/sub/deeper/a.png", 5);
  image("cat/sub-x/a.png", 6);  // "cat/sub-x" < "cat/sub" bytewise ('-' < '/')
  text("cat/notes.txt");
  text("cat/sub/readme.md");
  text("cat/image.png.bak");
  image("dog/x.jpeg", 7);
  image("dog/Y.Png", 8);
  image("Zebra/q.png", 9);
  text("info.txt");
  image("stray.png", 10);  // a file in ROOT is not a class

  ImageFolderDataset ds(root());
  EXPECT_EQ(ds.classes(), (std::vector<std::string>{"Zebra", "cat", "dog"}));
  EXPECT_EQ(ds.channels(), 3);
  const std::vector<std::pair<std::string, int64_t>> expected = {{"Zebra/q.png", 0},
                                                                 {"cat/a.JPG", 1},
                                                                 {"cat/b.png", 1},
                                                                 {"cat/z.png", 1},
                                                                 {"cat/sub/c.png", 1},
                                                                 {"cat/sub-x/a.png", 1},
                                                                 {"cat/sub/deeper/a.png", 1},
                                                                 {"dog/Y.Png", 2},
                                                                 {"dog/x.jpeg", 2}};
  // sorted(os.walk(...)) compares directory strings: "cat/sub" (a prefix of
  // the other two) first, then "cat/sub-x" ('-' 0x2D) before
  // "cat/sub/deeper" ('/' 0x2F); each directory's files before the next's.
  ASSERT_EQ(ds.size(), static_cast<int64_t>(expected.size()));
  const std::vector<int> tags = {9, 2, 1, 3, 4, 6, 5, 8, 7};
  for (int64_t i = 0; i < ds.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(ds.path(i), root() / expected[i].first);
    EXPECT_EQ(ds.describe(i), (root() / expected[i].first).string());
    EXPECT_EQ(ds.label(i), expected[i].second);
    Image im = ds.load(i);
    Image want = tagged_image(3 + tags[i] % 2, 2, tags[i]);
    EXPECT_EQ(im.channels, 3);
    EXPECT_EQ(im.width, want.width);
    EXPECT_EQ(im.height, want.height);
    EXPECT_EQ(im.pixels, want.pixels);
  }
  EXPECT_KILN_ERROR(ds.path(ds.size()), "out of range");
  EXPECT_KILN_ERROR(ds.label(-1), "out of range");
}

TEST_F(ImageFolder, EmptyClassIsAnErrorNamingIt) {
  image("a/1.png", 1);
  text("b/readme.txt");
  EXPECT_KILN_ERROR(ImageFolderDataset{root()}, "class 'b'");
  EXPECT_KILN_ERROR(ImageFolderDataset{root()}, "has no .jpg, .jpeg or .png files");
}

TEST_F(ImageFolder, MissingRootNotADirectoryNoClasses) {
  EXPECT_KILN_ERROR(ImageFolderDataset{root()}, "'" + root().string() + "' does not exist");
  text("file-root");
  EXPECT_KILN_ERROR(ImageFolderDataset{root() / "file-root"}, "is not a directory");
  EXPECT_KILN_ERROR(ImageFolderDataset{root()}, "no class directories in '" + root().string() + "'");
}

TEST_F(ImageFolder, UnreadableImageNamesFileAndSkipMode) {
  image("a/good.png", 1);
  text("a/bad.png", "\x89PNG\r\n\x1a\n garbage");
  const std::string bad = (root() / "a/bad.png").string();
  {
    ImageFolderDataset ds(root());  // nothing decoded here
    ASSERT_EQ(ds.size(), 2);
    ASSERT_EQ(ds.path(0).string(), bad);
    EXPECT_KILN_ERROR(ds.load(0), bad);
    EXPECT_KILN_ERROR(ds.load(0), "skip_bad_images");
    EXPECT_NO_THROW(ds.load(1));
  }
  {
    ImageFolderDataset ds(root(), {.skip_bad_images = true});
    try {
      ds.load(0);
      ADD_FAILURE() << "expected SkippedImage";
    } catch (const SkippedImage& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "expected SkippedImage, got " << e.what();
    }
    EXPECT_NO_THROW(ds.load(1));
  }
}

// ---- IDX ----

class Idx : public TempDirTest {
 protected:
  // n images of h x w with pixel (i, y, x) = i * 16 + y * w + x, labels l(i).
  void write(const std::string& images, const std::string& labels, uint32_t n, uint32_t h, uint32_t w,
             const std::vector<unsigned char>& label_values, bool gz = true) {
    Bytes px(static_cast<size_t>(n) * h * w);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>((i / (h * w)) * 16 + i % (h * w));
    Bytes a = idx_bytes({n, h, w}, px), b = idx_bytes({static_cast<uint32_t>(label_values.size())}, label_values);
    write_bytes_to(path(images), gz ? gzip_stored(a) : a);
    write_bytes_to(path(labels), gz ? gzip_stored(b) : b);
  }
};

TEST_F(Idx, LoadsGreyscaleImagesAndLabels) {
  write("img.gz", "lab.gz", 5, 3, 4, {3, 0, 9, 1, 1});
  IdxDataset ds(path("img.gz"), path("lab.gz"));
  EXPECT_EQ(ds.size(), 5);
  EXPECT_EQ(ds.channels(), 1);
  EXPECT_EQ(ds.classes(), (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
  const std::vector<int64_t> labels = {3, 0, 9, 1, 1};
  for (int64_t i = 0; i < 5; ++i) {
    Image im = ds.load(i);
    EXPECT_EQ(im.channels, 1);
    EXPECT_EQ(im.width, 4);
    EXPECT_EQ(im.height, 3);
    ASSERT_EQ(im.pixels.size(), 12u);
    for (int64_t y = 0; y < 3; ++y)
      for (int64_t x = 0; x < 4; ++x) EXPECT_EQ(im.row(y)[x], i * 16 + y * 4 + x);
    EXPECT_EQ(ds.label(i), labels[i]);
  }
  EXPECT_EQ(ds.describe(2), path("img.gz") + "[2]");
  EXPECT_KILN_ERROR(ds.load(5), "out of range");
}

TEST_F(Idx, ClassNames) {
  write("img", "lab", 3, 2, 2, {0, 12, 2}, /*gz=*/false);
  IdxDataset wide(path("img"), path("lab"));
  EXPECT_EQ(wide.classes().size(), 13u);  // labels past 9 get names too
  EXPECT_EQ(wide.classes()[12], "12");
  IdxDataset named(path("img"), path("lab"), std::vector<std::string>(13, "x"));
  EXPECT_EQ(named.classes().size(), 13u);
  EXPECT_KILN_ERROR((IdxDataset{path("img"), path("lab"), {"a", "b", "c"}}), "has label 12 but only 3 class names");
}

TEST_F(Idx, ShapeErrors) {
  write("img.gz", "lab.gz", 4, 2, 2, {0, 1, 2});
  EXPECT_KILN_ERROR((IdxDataset{path("img.gz"), path("lab.gz")}), "has 4 images but");
  EXPECT_KILN_ERROR((IdxDataset{path("lab.gz"), path("lab.gz")}), "images need rank 3");
  EXPECT_KILN_ERROR((IdxDataset{path("img.gz"), path("img.gz")}), "labels need rank 1");
  EXPECT_KILN_ERROR((IdxDataset{path("none.gz"), path("lab.gz")}), "cannot open '" + path("none.gz") + "'");
}

TEST_F(Idx, MnistSplitFindsGzipOrPlainFiles) {
  write("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 4, 2, 3, {5, 6, 7, 8});
  write("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 2, 2, 3, {1, 0}, /*gz=*/false);
  auto train = IdxDataset::mnist_split(dir_, "train", /*fashion=*/true);
  EXPECT_EQ(train->size(), 4);
  EXPECT_EQ(train->label(3), 8);
  EXPECT_EQ(train->classes(), (std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                                        "Shirt", "Sneaker", "Bag", "Ankle boot"}));
  auto test = IdxDataset::mnist_split(dir_, "test", /*fashion=*/false);
  EXPECT_EQ(test->size(), 2);
  EXPECT_EQ(test->classes()[9], "9");
  EXPECT_KILN_ERROR(IdxDataset::mnist_split(dir_, "val", false), "split must be \"train\" or \"test\"");
  EXPECT_KILN_ERROR(IdxDataset::mnist_split(dir_ / "nowhere", "train", false), "train-images-idx3-ubyte.gz' nor '");
}

TEST(FashionMnist, RealFiles) {
  const fs::path dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir / "train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << dir << " not installed (Debian's dataset-fashion-mnist; scripts/install-deps installs it)";
  auto train = IdxDataset::mnist_split(dir, "train", true);
  auto test = IdxDataset::mnist_split(dir, "test", true);
  ASSERT_EQ(train->size(), 60000);
  ASSERT_EQ(test->size(), 10000);
  // The first labels of each split (read with Python's gzip module).
  const std::vector<int64_t> train_first = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9};
  const std::vector<int64_t> test_first = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5};
  for (int64_t i = 0; i < 12; ++i) {
    EXPECT_EQ(train->label(i), train_first[i]) << i;
    EXPECT_EQ(test->label(i), test_first[i]) << i;
  }
  EXPECT_EQ(train->classes()[9], "Ankle boot");
  // Image 0 of each split: its byte sum and the middle row, also from Python.
  Image a = train->load(0), b = test->load(0);
  ASSERT_EQ(a.width, 28);
  ASSERT_EQ(a.height, 28);
  ASSERT_EQ(a.channels, 1);
  int64_t sum_a = 0, sum_b = 0;
  for (uint8_t v : a.pixels) sum_a += v;
  for (uint8_t v : b.pixels) sum_b += v;
  EXPECT_EQ(sum_a, 76247);
  EXPECT_EQ(sum_b, 33456);
  const std::vector<uint8_t> row14 = {0x00, 0x00, 0x01, 0x04, 0x06, 0x07, 0x02, 0x00, 0x00, 0x00,
                                      0x00, 0x00, 0xed, 0xe2, 0xd9, 0xdf, 0xde, 0xdb, 0xde, 0xdd,
                                      0xd8, 0xdf, 0xe5, 0xd7, 0xda, 0xff, 0x4d, 0x00};
  EXPECT_EQ(std::vector<uint8_t>(a.row(14), a.row(14) + 28), row14);
}

}  // namespace
