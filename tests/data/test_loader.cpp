// DataLoader against a reference stream built here from the contract alone
// (epoch_permutation, DistributedSampler's padding, batching, SampleRng per
// example, Transforms::apply): the same tensors bit for bit whatever the
// number of workers, the prefetch depth or the workers' timing; drop_last,
// sharding, cursor/seek, epoch rollover, errors, skipped images, shutdown.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "kiln/core/native.h"
#include "kiln/data/loader.h"
#include "nn/temp_dir.h"
#include "test_util.h"

namespace {

using namespace kiln;
using namespace kiln::data;

// n images in memory, sizes varying with the index, label index % 3.
// Indices in `bad` throw kiln::Error naming a file; in `skipped`, SkippedImage.
// Optional jitter sleeps make the workers finish out of order.
class MemoryDataset : public ImageDataset {
 public:
  MemoryDataset(int64_t n, int channels = 3, bool jitter = false) : n_(n), channels_(channels), jitter_(jitter) {
    classes_ = {"a", "b", "c"};
  }
  std::set<int64_t> bad, skipped;
  int64_t size() const override { return n_; }
  Image load(int64_t index) const override {
    if (jitter_) std::this_thread::sleep_for(std::chrono::microseconds((index * 7919) % 5 * 300));
    if (bad.count(index)) KILN_ERROR("decode_image: 'bad-file-", index, ".png': corrupt PNG");
    if (skipped.count(index)) throw SkippedImage("decode_image: 'skip-" + std::to_string(index) + ".png': corrupt");
    Image im(10 + index % 4, 9 + index % 3, channels_);
    for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>(index * 37 + i * 11);
    return im;
  }
  int64_t label(int64_t index) const override { return index % 3; }
  const std::vector<std::string>& classes() const override { return classes_; }
  int channels() const override { return channels_; }
  std::string describe(int64_t index) const override { return "mem[" + std::to_string(index) + "]"; }

 private:
  int64_t n_;
  int channels_;
  bool jitter_;
  std::vector<std::string> classes_;
};

Transforms train_transforms() {
  return Transforms({RandomResizedCropSpec{8, 6, 0.3, 1.0}, HorizontalFlipSpec{}, ToTensorSpec{},
                     NormalizeSpec{{0.5, 0.4, 0.3}, {0.2, 0.25, 0.3}}});
}

struct Expected {
  std::vector<int64_t> indices;
  std::vector<float> inputs;
  int64_t skipped = 0;
};

// The stream the contract defines: batch b of epoch e on this rank.
Expected reference_batch(const ImageDataset& ds, const Transforms& t, const LoaderOptions& o, int64_t e, int64_t b) {
  const int64_t n = ds.size();
  std::vector<int64_t> order = o.shuffle ? epoch_permutation(n, o.seed, e) : std::vector<int64_t>();
  if (!o.shuffle)
    for (int64_t i = 0; i < n; ++i) order.push_back(i);
  const int64_t total = (n + o.world_size - 1) / o.world_size * o.world_size;
  std::vector<int64_t> padded;  // the order with its head repeated up to a multiple of world_size
  for (int64_t p = 0; p < total; ++p) padded.push_back(order[p % n]);
  std::vector<int64_t> positions;  // positions in `order` of this rank's examples
  for (int64_t p = o.rank; p < total; p += o.world_size) positions.push_back(p % n);
  int64_t count = static_cast<int64_t>(positions.size());
  if (o.drop_last) count = count / o.batch_size * o.batch_size;
  Expected out;
  for (int64_t k = b * o.batch_size; k < std::min(count, (b + 1) * o.batch_size); ++k) {
    // A skipped image gives way to the next example of the epoch's order.
    int64_t pos = positions[k], idx = -1;
    Image im;
    for (;; pos = (pos + 1) % n) {
      idx = order[pos];
      try {
        im = ds.load(idx);
        break;
      } catch (const SkippedImage&) {
        ++out.skipped;
      }
    }
    SampleRng rng(o.seed, e, idx);
    Tensor x = t.apply(im, rng);
    out.indices.push_back(idx);
    out.inputs.insert(out.inputs.end(), x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
  }
  return out;
}

void expect_batch(const Batch& got, const Expected& want, const ImageDataset& ds, int64_t e, int64_t b) {
  SCOPED_TRACE(::testing::Message() << "epoch " << e << " batch " << b);
  EXPECT_EQ(got.epoch, e);
  EXPECT_EQ(got.batch, b);
  ASSERT_EQ(got.indices, want.indices);
  ASSERT_EQ(got.inputs.dtype(), kFloat32);
  ASSERT_EQ(got.inputs.dim(), 4);
  ASSERT_EQ(got.inputs.size(0), static_cast<int64_t>(want.indices.size()));
  ASSERT_EQ(got.inputs.numel(), static_cast<int64_t>(want.inputs.size()));
  EXPECT_EQ(std::memcmp(got.inputs.data_ptr<float>(), want.inputs.data(), want.inputs.size() * sizeof(float)), 0);
  ASSERT_EQ(got.labels.dtype(), kInt64);
  ASSERT_EQ(got.labels.numel(), static_cast<int64_t>(want.indices.size()));
  for (size_t i = 0; i < want.indices.size(); ++i)
    EXPECT_EQ(got.labels.data_ptr<int64_t>()[i], ds.label(want.indices[i]));
}

// Reads `epochs` whole epochs, checking each batch and the one nullopt at each end.
void expect_stream(DataLoader& loader, const Transforms& t, int64_t first_epoch, int64_t epochs) {
  const auto& ds = loader.dataset();
  for (int64_t e = first_epoch; e < first_epoch + epochs; ++e) {
    for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
      EXPECT_EQ(loader.cursor(), (LoaderCursor{e, b}));
      auto batch = loader.next();
      ASSERT_TRUE(batch.has_value()) << "epoch " << e << " batch " << b;
      expect_batch(*batch, reference_batch(ds, t, loader.options(), e, b), ds, e, b);
    }
    EXPECT_EQ(loader.cursor(), (LoaderCursor{e, loader.batches_per_epoch()}));
    EXPECT_FALSE(loader.next().has_value());
    EXPECT_EQ(loader.cursor(), (LoaderCursor{e + 1, 0}));
  }
}

TEST(DataLoader, SameStreamForAnyWorkerCountAndPrefetch) {
  auto ds = std::make_shared<MemoryDataset>(23, 3, /*jitter=*/true);
  const Transforms t = train_transforms();
  for (int workers : {0, 1, 2, 4}) {
    for (int prefetch : {1, 3}) {
      SCOPED_TRACE(::testing::Message() << workers << " workers, prefetch " << prefetch);
      DataLoader loader(ds, t, {.batch_size = 5, .num_workers = workers, .prefetch_batches = prefetch, .seed = 17});
      EXPECT_EQ(loader.batches_per_epoch(), 5);
      EXPECT_EQ(loader.examples_per_epoch(), 23);
      expect_stream(loader, t, 0, 2);
      const LoaderStats s = loader.stats();
      EXPECT_EQ(s.images, 46);
      EXPECT_EQ(s.skipped, 0);
      EXPECT_GE(s.worker_seconds, 0.0);
    }
  }
}

TEST(DataLoader, UnshuffledGreyscaleAndDropLast) {
  auto ds = std::make_shared<MemoryDataset>(10, 1);
  const Transforms t({CenterCropSpec{8, 8}, ToTensorSpec{}, NormalizeSpec{{0.2860}, {0.3530}}});
  DataLoader keep(ds, t, {.batch_size = 4, .shuffle = false, .num_workers = 2});
  EXPECT_EQ(keep.batches_per_epoch(), 3);
  auto b0 = keep.next();
  EXPECT_EQ(b0->indices, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(std::vector<int64_t>(b0->inputs.sizes().begin(), b0->inputs.sizes().end()),
            (std::vector<int64_t>{4, 1, 8, 8}));
  keep.next();
  auto last = keep.next();
  EXPECT_EQ(last->indices, (std::vector<int64_t>{8, 9}));  // the short last batch
  EXPECT_FALSE(keep.next());

  DataLoader drop(ds, t, {.batch_size = 4, .shuffle = false, .drop_last = true, .num_workers = 2});
  EXPECT_EQ(drop.batches_per_epoch(), 2);
  EXPECT_EQ(drop.examples_per_epoch(), 8);
  expect_stream(drop, t, 0, 2);
  DataLoader shuffled(ds, t, {.batch_size = 3, .drop_last = true, .num_workers = 1, .seed = 5});
  expect_stream(shuffled, t, 0, 2);
}

TEST(DataLoader, ShardsCoverTheEpochOnceWithPadding) {
  // 10 examples over 3 ranks: 4 each, the padded order repeats its first 2.
  auto ds = std::make_shared<MemoryDataset>(10);
  const Transforms t = train_transforms();
  for (int64_t e : {0, 1}) {
    std::map<int64_t, int> seen;
    for (int64_t r = 0; r < 3; ++r) {
      DataLoader loader(ds, t, {.batch_size = 3, .num_workers = 2, .seed = 9, .rank = r, .world_size = 3});
      EXPECT_EQ(loader.examples_per_epoch(), 4);
      EXPECT_EQ(loader.batches_per_epoch(), 2);
      loader.seek({e, 0});
      expect_stream(loader, t, e, 1);
      loader.seek({e, 0});
      while (auto b = loader.next())
        for (int64_t i : b->indices) ++seen[i];
    }
    const auto order = epoch_permutation(10, 9, e);
    ASSERT_EQ(seen.size(), 10u);
    for (const auto& [index, count] : seen) EXPECT_EQ(count, (index == order[0] || index == order[1]) ? 2 : 1) << index;
  }
  EXPECT_KILN_ERROR(DataLoader(ds, t, {.rank = 3, .world_size = 3}), "rank 3 is outside [0, 3)");
}

TEST(DataLoader, SeekReproducesTheRemainingStream) {
  auto ds = std::make_shared<MemoryDataset>(19, 3, /*jitter=*/true);
  const Transforms t = train_transforms();
  const LoaderOptions o{.batch_size = 4, .num_workers = 2, .prefetch_batches = 2, .seed = 3};
  DataLoader a(ds, t, o);
  a.next();
  a.next();
  const LoaderCursor c = a.cursor();
  EXPECT_EQ(c, (LoaderCursor{0, 2}));
  std::vector<Batch> rest;
  for (int i = 0; i < 8; ++i)  // the rest of epoch 0, its end, and into epoch 1
    if (auto b = a.next()) rest.push_back(std::move(*b));
  for (int workers : {0, 3}) {
    LoaderOptions ob = o;
    ob.num_workers = workers;
    DataLoader b(ds, t, ob);
    b.next();  // something prefetched and then discarded
    b.seek(c);
    EXPECT_EQ(b.cursor(), c);
    size_t k = 0;
    for (int i = 0; i < 8; ++i) {
      auto got = b.next();
      if (!got) continue;
      ASSERT_LT(k, rest.size());
      expect_batch(*got, reference_batch(*ds, t, o, rest[k].epoch, rest[k].batch), *ds, rest[k].epoch, rest[k].batch);
      EXPECT_EQ(got->indices, rest[k].indices);
      ++k;
    }
    EXPECT_EQ(k, rest.size());
  }
  // Seeking back on the same loader, and to the end of an epoch.
  a.seek({0, 0});
  expect_stream(a, t, 0, 1);
  a.seek({3, a.batches_per_epoch()});
  EXPECT_FALSE(a.next());
  EXPECT_EQ(a.cursor(), (LoaderCursor{4, 0}));
  expect_stream(a, t, 4, 1);
  EXPECT_KILN_ERROR(a.seek({0, 6}), "outside the stream");
  EXPECT_KILN_ERROR(a.seek({-1, 0}), "outside the stream");
}

TEST(DataLoader, WorkerErrorIsRethrownForItsBatch) {
  auto ds = std::make_shared<MemoryDataset>(12);
  ds->bad = {7};
  const Transforms t = train_transforms();
  for (int workers : {0, 2}) {
    DataLoader loader(ds, t, {.batch_size = 4, .shuffle = false, .num_workers = workers});
    EXPECT_TRUE(loader.next().has_value());  // 0..3
    EXPECT_KILN_ERROR(loader.next(), "bad-file-7.png");
    EXPECT_EQ(loader.cursor(), (LoaderCursor{0, 2}));  // past the failed batch
    auto third = loader.next();
    ASSERT_TRUE(third.has_value());
    EXPECT_EQ(third->indices, (std::vector<int64_t>{8, 9, 10, 11}));
    EXPECT_FALSE(loader.next());
    loader.seek({0, 1});
    EXPECT_KILN_ERROR(loader.next(), "epoch 0, batch 1, example mem[7]");
  }
}

TEST(DataLoader, SkippedImagesAreCountedAndReplaced) {
  auto ds = std::make_shared<MemoryDataset>(15);
  const Transforms t = train_transforms();
  const auto order = epoch_permutation(15, 21, 0);
  // Two neighbours in the order (so one position skips twice) and the last
  // (whose replacement wraps round to the head).
  ds->skipped = {order[4], order[5], order[14]};
  for (int workers : {0, 2}) {
    DataLoader loader(ds, t, {.batch_size = 4, .num_workers = workers, .seed = 21});
    int64_t expected_skips = 0;
    for (int64_t b = 0; b < 4; ++b) {
      auto got = loader.next();
      ASSERT_TRUE(got);
      const Expected want = reference_batch(*ds, t, loader.options(), 0, b);
      expected_skips += want.skipped;
      expect_batch(*got, want, *ds, 0, b);
      for (int64_t i : got->indices) EXPECT_EQ(ds->skipped.count(i), 0u);
    }
    // Positions 4, 5 and 14: order[4] and order[5] give way to order[6]
    // (3 skips), order[14] to order[0] (1 skip).
    EXPECT_EQ(expected_skips, 4);
    EXPECT_EQ(loader.stats().skipped, 4);
    EXPECT_EQ(loader.stats().images, 15);
  }
  // Nothing readable at all: an error, not an endless search.
  auto none = std::make_shared<MemoryDataset>(3);
  none->skipped = {0, 1, 2};
  DataLoader loader(none, t, {.batch_size = 2, .num_workers = 1});
  EXPECT_KILN_ERROR(loader.next(), "every one of the 3 examples was skipped");
}

class DataLoaderFiles : public kiln::testing::TempDirTest {};

TEST_F(DataLoaderFiles, UnreadableFileNamedOrSkipped) {
  for (const char* name : {"a/0.png", "a/1.png", "a/2.png", "b/0.png", "b/1.png"}) {
    std::filesystem::create_directories((dir_ / name).parent_path());
    Image im(6, 5);
    for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>(i + name[2]);
    write_png(dir_ / name, im);
  }
  write_bytes((dir_ / "a/1.png").string(), "\x89PNG\r\n\x1a\n truncated");
  const Transforms t({RandomCropSpec{4, 4, 1}, ToTensorSpec{}});
  {
    auto ds = std::make_shared<ImageFolderDataset>(dir_);
    DataLoader loader(ds, t, {.batch_size = 5, .shuffle = false, .num_workers = 2});
    EXPECT_KILN_ERROR(loader.next(), (dir_ / "a/1.png").string());
  }
  auto ds = std::make_shared<ImageFolderDataset>(dir_, ImageFolderOptions{.skip_bad_images = true});
  DataLoader loader(ds, t, {.batch_size = 5, .shuffle = false, .num_workers = 2});
  auto b = loader.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->indices, (std::vector<int64_t>{0, 2, 2, 3, 4}));  // 1 gives way to the next in order
  EXPECT_EQ(loader.stats().skipped, 1);
}

TEST(DataLoader, DestructorMidEpochDoesNotHang) {
  // Slow examples, several workers busy and a full prefetch queue: the
  // destructor must stop them all and join.
  auto ds = std::make_shared<MemoryDataset>(400, 3, /*jitter=*/true);
  const Transforms t = train_transforms();
  for (int prefetch : {1, 4}) {
    DataLoader loader(ds, t, {.batch_size = 8, .num_workers = 4, .prefetch_batches = prefetch});
    loader.next();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  { DataLoader untouched(ds, t, {.batch_size = 8, .num_workers = 3}); }
  SUCCEED();
}

TEST(DataLoader, OptionAndShapeErrors) {
  auto ds = std::make_shared<MemoryDataset>(5);
  const Transforms t = train_transforms();
  EXPECT_KILN_ERROR(DataLoader(ds, t, {.batch_size = 0}), "batch_size must be >= 1");
  EXPECT_KILN_ERROR(DataLoader(std::make_shared<MemoryDataset>(0), t, {}), "the data set is empty");
  EXPECT_KILN_ERROR(DataLoader(ds, t, {.batch_size = 6, .drop_last = true}), "drop_last leaves no batch");
  EXPECT_KILN_ERROR(DataLoader(ds, t, {.prefetch_batches = 0}), "prefetch_batches must be >= 1");
  EXPECT_KILN_ERROR(DataLoader(ds, t, {.num_workers = -1}), "num_workers must be >= 0");
  EXPECT_KILN_ERROR(DataLoader(nullptr, t, {}), "no data set");
  // Images of different sizes without a crop cannot share a batch.
  DataLoader loader(ds, Transforms(), {.batch_size = 5, .shuffle = false, .num_workers = 1});
  EXPECT_KILN_ERROR(loader.next(), "a batch needs equal sizes");
}

}  // namespace
