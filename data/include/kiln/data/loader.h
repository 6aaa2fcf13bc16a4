#pragma once
// The threaded data loader: worker threads decode and augment examples ahead
// of the trainer into a bounded queue of batches, and batches come out in a
// fixed order that depends only on (seed, epoch) and the options, never on
// the number of workers or their timing:
//   epoch e's order   epoch_permutation(size, seed, e) (or 0..n-1 unshuffled)
//   sharding          rank r of W takes positions r, r + W, ... of that order
//                     (torch DistributedSampler: the order is first padded by
//                     repeating its head so every rank gets the same count)
//   batch b           the shard's positions [b * B, (b + 1) * B); the last,
//                     short batch is dropped when drop_last
//   augmentation      SampleRng(seed, e, dataset index)
//   skipped images    (ImageFolderOptions::skip_bad_images) an example whose
//                     load() throws SkippedImage is replaced by the next one
//                     of epoch e's order (wrapping) that loads
// Workers prepare whole batches, one example at a time on one thread (no
// OpenMP inside), writing straight into the batch tensor.
// The cursor (epoch, next batch) is all a checkpoint needs to continue the
// exact same stream.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/data/dataset.h"
#include "kiln/data/transforms.h"

namespace kiln::data {

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;
  // 0: examples are prepared on the calling thread inside next().
  int num_workers = 2;
  // Batches prepared ahead of the trainer (queue bound), at least 1.
  int prefetch_batches = 4;
  uint64_t seed = 0;
  int64_t rank = 0, world_size = 1;
};

struct Batch {
  Tensor inputs;                 // float32 (N, C, H, W)
  Tensor labels;                 // int64 (N)
  std::vector<int64_t> indices;  // dataset indices, in batch order
  int64_t epoch = 0, batch = 0;  // where it sits in the stream
};

struct LoaderCursor {
  int64_t epoch = 0;
  int64_t batch = 0;  // the next batch next() returns
  bool operator==(const LoaderCursor&) const = default;
};

// Counted as next() hands batches out, so prefetched work that a seek or
// the destructor discards is not in them.
struct LoaderStats {
  int64_t images = 0;            // examples prepared
  int64_t skipped = 0;           // unreadable images replaced (skip_bad_images)
  double worker_seconds = 0;     // summed time workers spent decoding + augmenting
  double wait_seconds = 0;       // time next() blocked waiting for a batch
};

class DataLoader {
 public:
  // Errors (kiln::Error): batch_size < 1, empty dataset, a shard with no
  // full batch under drop_last, rank outside [0, world_size).
  DataLoader(std::shared_ptr<const ImageDataset> dataset, Transforms transforms, LoaderOptions options);
  ~DataLoader();  // stops and joins the workers
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const;
  // Examples per epoch on this rank (after sharding and drop_last).
  int64_t examples_per_epoch() const;

  // The batch at the cursor, which then moves on. At the end of an epoch
  // returns nullopt once and moves the cursor to (epoch + 1, 0). A worker's
  // error (an unreadable image) is rethrown here, for the batch it belongs to,
  // as a kiln::Error naming the epoch, batch and example; the cursor has
  // then moved past that batch, so calling next() again goes on. Call from
  // one thread at a time.
  std::optional<Batch> next();

  LoaderCursor cursor() const;
  // Continue from `cursor` (prefetched work is discarded).
  void seek(LoaderCursor cursor);

  LoaderStats stats() const;
  const LoaderOptions& options() const { return options_; }
  const ImageDataset& dataset() const { return *dataset_; }

 private:
  struct Impl;
  std::shared_ptr<const ImageDataset> dataset_;
  Transforms transforms_;
  LoaderOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::data
