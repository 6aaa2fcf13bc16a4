// The data loader. Batches are numbered by a ticket, their place in the
// stream since the last seek; a worker takes the next ticket only while it
// is less than prefetch_batches ahead of the one next() waits for, builds
// that whole batch (everything about it follows from (epoch, batch) alone),
// and files it under its ticket. next() takes its ticket's batch when it is
// there, so the order never depends on which worker finished first.
//
// A seek bumps a generation number: batches of an older generation are
// dropped, and workers building one stop between examples.
#include "kiln/data/loader.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "kiln/core/error.h"
#include "kiln/core/native/factory.h"

namespace kiln::data {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A finished batch, or the error that stopped it, with what it cost.
struct Slot {
  std::optional<Batch> batch;
  std::exception_ptr error;
  int64_t images = 0, skipped = 0;
  double seconds = 0;
};

}  // namespace

struct DataLoader::Impl {
  const ImageDataset& dataset;
  const Transforms& transforms;
  const LoaderOptions& options;
  int64_t size = 0;       // examples in the data set
  int64_t shard = 0;      // examples per rank before drop_last (the padded order / world_size)
  int64_t per_epoch = 0;  // examples per rank per epoch
  int64_t batches = 0;    // batches per rank per epoch

  LoaderCursor cursor;  // the consumer's; only next() and seek() touch it

  mutable std::mutex mutex;
  std::condition_variable work_cv, ready_cv;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> generation{0};
  LoaderCursor base;            // where ticket 0 sits
  int64_t next_ticket = 0;      // the next ticket a worker takes
  int64_t consumer_ticket = 0;  // the ticket next() wants: ticket(cursor)
  std::map<int64_t, Slot> ready;
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> orders;  // by epoch
  LoaderStats stats;
  std::vector<std::thread> workers;

  Impl(const ImageDataset& d, const Transforms& t, const LoaderOptions& o) : dataset(d), transforms(t), options(o) {}

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    work_cv.notify_all();
    for (auto& w : workers) w.join();
  }

  LoaderCursor position(int64_t ticket) const {  // under the lock
    const int64_t p = base.batch + ticket;
    return {base.epoch + p / batches, p % batches};
  }
  int64_t ticket(LoaderCursor c) const { return (c.epoch - base.epoch) * batches + c.batch - base.batch; }

  // Epoch e's order of data set indices (before sharding).
  std::shared_ptr<const std::vector<int64_t>> order(int64_t epoch) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto it = orders.find(epoch);
      if (it != orders.end()) return it->second;
    }
    std::vector<int64_t> o;
    if (options.shuffle) {
      o = epoch_permutation(size, options.seed, epoch);
    } else {
      o.resize(static_cast<size_t>(size));
      for (int64_t i = 0; i < size; ++i) o[i] = i;
    }
    auto shared = std::make_shared<const std::vector<int64_t>>(std::move(o));
    std::lock_guard<std::mutex> lock(mutex);
    // Epochs before the consumer's are done with (nothing takes their tickets again).
    const int64_t oldest = position(consumer_ticket).epoch;
    for (auto it = orders.begin(); it != orders.end() && it->first < oldest;) it = orders.erase(it);
    return orders.emplace(epoch, std::move(shared)).first->second;
  }

  bool cancelled(uint64_t gen) const { return stopping.load(std::memory_order_relaxed) || generation.load() != gen; }

  // Batch `b` of epoch `e`; an empty slot when cancelled (a seek or the destructor).
  Slot build(int64_t e, int64_t b, uint64_t gen) {
    const auto t0 = Clock::now();
    Slot slot;
    int64_t current = -1;  // the data set index being prepared, for error messages
    try {
      const auto ord = order(e);
      const std::vector<int64_t>& o = *ord;
      const int64_t start = b * options.batch_size;
      const int64_t count = std::min(options.batch_size, per_epoch - start);
      Batch batch;
      batch.epoch = e, batch.batch = b;
      batch.indices.resize(static_cast<size_t>(count));
      batch.labels = native::empty({count}, kiln::dtype(kInt64));
      int64_t* labels = batch.labels.data_ptr<int64_t>();
      std::vector<int64_t> shape;
      int64_t example_floats = 0;
      float* inputs = nullptr;
      for (int64_t k = 0; k < count; ++k) {
        if (cancelled(gen)) return {};
        // Rank r's i-th example sits at r + i * W of the order padded by
        // repeating its head: element p of the padded order is o[p % n].
        const int64_t p = options.rank + (start + k) * options.world_size;
        Image image;
        int64_t tries = 0;
        for (;; ++tries) {
          KILN_CHECK(tries < size, "DataLoader: every one of the ", size,
                     " examples was skipped as unreadable (skip_bad_images)");
          current = o[static_cast<size_t>((p + tries) % size)];
          try {
            image = dataset.load(current);
            break;
          } catch (const SkippedImage&) {
            ++slot.skipped;  // replaced by the next example of the epoch's order
          }
        }
        SampleRng rng(options.seed, e, current);
        std::vector<int64_t> s = transforms.output_shape(image.channels, image.height, image.width);
        if (k == 0) {
          shape = s;
          example_floats = s[0] * s[1] * s[2];
          batch.inputs = native::empty({count, s[0], s[1], s[2]}, kiln::dtype(kFloat32));
          inputs = batch.inputs.data_ptr<float>();
        } else {
          KILN_CHECK(s == shape, "the transforms turn this ", image.width, "x", image.height, " image into (", s[0],
                     ", ", s[1], ", ", s[2], ") but the batch's first example into (", shape[0], ", ", shape[1], ", ",
                     shape[2], "); a batch needs equal sizes (end the pixel transforms with a crop or a fixed resize)");
        }
        transforms.apply_into(image, rng, inputs + k * example_floats, example_floats);
        labels[k] = dataset.label(current);
        batch.indices[static_cast<size_t>(k)] = current;
        ++slot.images;
      }
      slot.batch = std::move(batch);
    } catch (const SkippedImage& err) {
      slot.error =
          std::make_exception_ptr(Error(detail::str("DataLoader: epoch ", e, ", batch ", b, ": ", err.what())));
    } catch (const std::exception& err) {
      const std::string example = current >= 0 ? detail::str(", example ", describe_safe(current)) : std::string();
      slot.error = std::make_exception_ptr(
          Error(detail::str("DataLoader: epoch ", e, ", batch ", b, example, ": ", err.what())));
    } catch (...) {
      slot.error = std::current_exception();
    }
    slot.seconds = seconds_since(t0);
    return slot;
  }

  std::string describe_safe(int64_t index) const {
    try {
      return dataset.describe(index);
    } catch (...) {
      return "#" + std::to_string(index);
    }
  }

  void worker_loop() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      work_cv.wait(lock, [&] { return stopping || next_ticket < consumer_ticket + options.prefetch_batches; });
      if (stopping) return;
      const int64_t t = next_ticket++;
      const uint64_t gen = generation;
      const LoaderCursor at = position(t);
      lock.unlock();
      Slot slot = build(at.epoch, at.batch, gen);
      lock.lock();
      if (!stopping && gen == generation && (slot.batch || slot.error)) {
        ready.emplace(t, std::move(slot));
        ready_cv.notify_all();
      }
    }
  }
};

DataLoader::DataLoader(std::shared_ptr<const ImageDataset> dataset, Transforms transforms, LoaderOptions options)
    : dataset_(std::move(dataset)), transforms_(std::move(transforms)), options_(options) {
  KILN_CHECK(dataset_ != nullptr, "DataLoader: no data set");
  KILN_CHECK(options_.batch_size >= 1, "DataLoader: batch_size must be >= 1, got ", options_.batch_size);
  KILN_CHECK(options_.world_size >= 1, "DataLoader: world_size must be >= 1, got ", options_.world_size);
  KILN_CHECK(options_.rank >= 0 && options_.rank < options_.world_size, "DataLoader: rank ", options_.rank,
             " is outside [0, ", options_.world_size, ")");
  KILN_CHECK(options_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ", options_.num_workers);
  KILN_CHECK(options_.prefetch_batches >= 1, "DataLoader: prefetch_batches must be >= 1, got ",
             options_.prefetch_batches);
  const int64_t n = dataset_->size();
  KILN_CHECK(n > 0, "DataLoader: the data set is empty");
  impl_ = std::make_unique<Impl>(*dataset_, transforms_, options_);
  Impl& m = *impl_;
  m.size = n;
  m.shard = (n + options_.world_size - 1) / options_.world_size;
  if (options_.drop_last) {
    m.batches = m.shard / options_.batch_size;
    KILN_CHECK(m.batches > 0, "DataLoader: drop_last leaves no batch: rank ", options_.rank, " gets ", m.shard,
               " examples per epoch (", n, " over ", options_.world_size, " ranks), fewer than batch_size ",
               options_.batch_size);
    m.per_epoch = m.batches * options_.batch_size;
  } else {
    m.batches = (m.shard + options_.batch_size - 1) / options_.batch_size;
    m.per_epoch = m.shard;
  }
  for (int i = 0; i < options_.num_workers; ++i) m.workers.emplace_back([&m] { m.worker_loop(); });
}

DataLoader::~DataLoader() = default;

int64_t DataLoader::batches_per_epoch() const { return impl_->batches; }
int64_t DataLoader::examples_per_epoch() const { return impl_->per_epoch; }

std::optional<Batch> DataLoader::next() {
  Impl& m = *impl_;
  if (m.cursor.batch >= m.batches) {
    m.cursor = {m.cursor.epoch + 1, 0};
    return std::nullopt;
  }
  Slot slot;
  if (options_.num_workers == 0) {
    slot = m.build(m.cursor.epoch, m.cursor.batch, m.generation.load());
    std::lock_guard<std::mutex> lock(m.mutex);
    m.consumer_ticket = m.ticket(m.cursor) + 1;
  } else {
    std::unique_lock<std::mutex> lock(m.mutex);
    const int64_t t = m.ticket(m.cursor);
    const auto t0 = Clock::now();
    m.ready_cv.wait(lock, [&] { return m.ready.count(t) > 0; });
    m.stats.wait_seconds += seconds_since(t0);
    auto it = m.ready.find(t);
    slot = std::move(it->second);
    m.ready.erase(it);
    m.consumer_ticket = t + 1;
    lock.unlock();
    m.work_cv.notify_all();
  }
  ++m.cursor.batch;  // past this batch even when it failed, so the caller can go on
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    m.stats.images += slot.images;
    m.stats.skipped += slot.skipped;
    m.stats.worker_seconds += slot.seconds;
  }
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

LoaderCursor DataLoader::cursor() const { return impl_->cursor; }

void DataLoader::seek(LoaderCursor cursor) {
  Impl& m = *impl_;
  KILN_CHECK(cursor.epoch >= 0 && cursor.batch >= 0 && cursor.batch <= m.batches, "DataLoader::seek: cursor (epoch ",
             cursor.epoch, ", batch ", cursor.batch, ") is outside the stream (epoch >= 0, batch in [0, ", m.batches,
             "])");
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    ++m.generation;
    m.ready.clear();
    m.base = cursor;
    m.next_ticket = 0;
    m.consumer_ticket = 0;
    m.cursor = cursor;
  }
  m.work_cv.notify_all();
}

LoaderStats DataLoader::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->stats;
}

}  // namespace kiln::data
