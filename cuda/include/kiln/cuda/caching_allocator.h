#pragma once
// Device and pinned-host memory, cached as PyTorch's CUDA caching allocator
// does: cudaMalloc and cudaFree synchronise the device and cost far more
// than a kernel, so memory a tensor gives back is kept and handed to the
// next request that fits.
//
// The logic lives in two engines that know nothing about CUDA: they carve
// up memory obtained through a RawMemory and order reuse with its events.
// The backend plugs in cudaMalloc / cudaHostAlloc and CUDA events; the
// tests plug in a fake, so every rule below is checked without a GPU.
//
// Stream order: a block freed is reusable at once by later work on the
// stream it was allocated on (that work runs after everything that used
// it). Work on other streams must be declared with record_stream(); such a
// block is reused only once events recorded on those streams at free time
// have completed.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/core/storage.h"
#include "kiln/core/tensor.h"

namespace kiln::cuda {

class Stream;

// Statistics of one device's cache (torch.cuda.memory_stats, summarised).
// Byte counts are of the rounded blocks, as torch's "allocated_bytes".
struct MemoryStats {
  size_t allocated_bytes = 0;       // held by live allocations
  size_t requested_bytes = 0;       // what those allocations asked for
  size_t reserved_bytes = 0;        // obtained from the raw allocator (cached or in use)
  size_t peak_allocated_bytes = 0;
  size_t peak_reserved_bytes = 0;
  int64_t active_blocks = 0;        // live allocations
  int64_t segments = 0;             // raw allocations held
  int64_t num_allocs = 0;           // allocate() calls
  int64_t num_frees = 0;            // free() calls
  int64_t num_raw_mallocs = 0;      // successful raw allocations (cudaMalloc)
  int64_t num_raw_frees = 0;        // raw frees (cudaFree)
  int64_t num_alloc_retries = 0;    // raw allocations retried after releasing the cache
  int64_t num_ooms = 0;             // requests that failed even after that
};

// A stream as the engines see it: an opaque handle and its device.
struct StreamRef {
  void* stream = nullptr;
  int device = 0;
  bool operator==(const StreamRef& o) const { return stream == o.stream && device == o.device; }
  bool operator<(const StreamRef& o) const {
    return device != o.device ? device < o.device : std::less<void*>()(stream, o.stream);
  }
};

// Raw memory and the events that order its reuse.
class RawMemory {
 public:
  virtual ~RawMemory() = default;
  // nullptr when out of memory; other failures throw.
  virtual void* malloc(size_t nbytes) = 0;
  virtual void free(void* ptr) = 0;
  // Free and total bytes of the device (for the out-of-memory message).
  virtual void mem_get_info(size_t* free, size_t* total) = 0;
  // An event marking the work queued on `stream` so far.
  virtual void* record_event(const StreamRef& stream) = 0;
  virtual bool query_event(void* event) = 0;  // true once complete
  virtual void synchronize_event(void* event) = 0;
  virtual void release_event(void* event) = 0;
};

// "512 bytes", "1.50 KiB", "20.00 MiB", "2.00 GiB", as torch prints sizes.
std::string format_size(size_t bytes);

// Device memory: blocks carved from segments, best fit per stream.
class CachingAllocatorEngine {
 public:
  // Every request is rounded up to a multiple of this.
  static constexpr size_t kMinBlockSize = 512;
  // Requests up to this size share 2 MiB segments (the small pool).
  static constexpr size_t kSmallSize = size_t{1} << 20;
  static constexpr size_t kSmallBuffer = size_t{2} << 20;
  // Large requests under kMinLargeAlloc get a 20 MiB segment to split;
  // larger ones a segment of their size rounded to 2 MiB.
  static constexpr size_t kLargeBuffer = size_t{20} << 20;
  static constexpr size_t kMinLargeAlloc = size_t{10} << 20;
  static constexpr size_t kRoundLarge = size_t{2} << 20;

  // raw must outlive the engine. device: the index named in messages.
  CachingAllocatorEngine(RawMemory& raw, int device);
  ~CachingAllocatorEngine();  // leaves memory in use alone; returns the cache
  CachingAllocatorEngine(const CachingAllocatorEngine&) = delete;
  CachingAllocatorEngine& operator=(const CachingAllocatorEngine&) = delete;

  // nullptr for 0 bytes. Throws kiln::Error ("CUDA out of memory. ...")
  // when the raw allocator fails even after the cache was released.
  void* allocate(size_t nbytes, const StreamRef& stream);
  void free(void* ptr);  // nullptr: no-op
  // Work on `stream` uses ptr (an allocate() result); ignored for pointers
  // this engine did not hand out and for the allocating stream.
  void record_stream(void* ptr, const StreamRef& stream);
  // Returns every cached segment that holds no live block (waits for
  // pending cross-stream frees first).
  void empty_cache();

  MemoryStats stats() const;
  void reset_peak_stats();
  // Size of the block behind ptr (a live allocation), 0 if unknown.
  size_t block_size(void* ptr) const;

  static size_t round_size(size_t nbytes);
  static size_t segment_size(size_t rounded);

 private:
  struct Block;
  struct BlockLess {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, BlockLess>;

  Block* find_free_block(Pool& pool, const StreamRef& stream, size_t size);
  Block* new_segment(Pool& pool, const StreamRef& stream, size_t size);
  void split(Block* block, size_t size);
  void free_block(Block* block);  // merges with free neighbours, back into its pool
  void process_events(bool wait);
  void release_cached();
  void release_pool(Pool& pool);
  [[noreturn]] void throw_oom(size_t nbytes);

  RawMemory& raw_;
  const int device_;
  mutable std::mutex mutex_;
  Pool small_, large_;
  std::unordered_map<void*, Block*> live_;
  // Blocks freed while other streams still used them: (event, block) in
  // free order; a block returns to its pool when its last event completes.
  std::deque<std::pair<void*, Block*>> pending_;
  MemoryStats stats_;
};

// Pinned host memory: whole blocks in power-of-two sizes, never split. A
// freed block is reused once events recorded (at free time) on every
// stream that used it have completed.
class HostCachingEngine {
 public:
  explicit HostCachingEngine(RawMemory& raw);
  ~HostCachingEngine();
  HostCachingEngine(const HostCachingEngine&) = delete;
  HostCachingEngine& operator=(const HostCachingEngine&) = delete;

  void* allocate(size_t nbytes);  // nullptr for 0 bytes; throws when out of pinned memory
  void free(void* ptr);
  // Work on `stream` (an asynchronous copy) reads or writes ptr's block;
  // false when ptr did not come from this engine.
  bool record_stream(void* ptr, const StreamRef& stream);
  bool owns(void* ptr) const;
  void empty_cache();
  MemoryStats stats() const;

  static size_t round_size(size_t nbytes);

 private:
  struct Block {
    void* ptr;
    size_t size;
    size_t requested = 0;
    bool allocated = true;
    int pending_events = 0;
    std::vector<StreamRef> streams;
  };
  void process_events();

  RawMemory& raw_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, std::unique_ptr<Block>> blocks_;
  std::unordered_map<size_t, std::vector<Block*>> free_;  // by size
  std::deque<std::pair<void*, Block*>> pending_;
  MemoryStats stats_;
};

// ---- the CUDA backend's caches (device -1: the current device) ----
MemoryStats memory_stats(int device = -1);
void reset_peak_memory_stats(int device = -1);
size_t memory_allocated(int device = -1);
size_t memory_reserved(int device = -1);
size_t max_memory_allocated(int device = -1);
size_t max_memory_reserved(int device = -1);
// Returns the cached, unused device memory of every device to CUDA.
void empty_cache();
// Marks a storage (device or pinned host memory) as used by work on
// `stream`, so its memory is not reused before that work is done
// (Tensor.record_stream in torch).
void record_stream(const Storage& storage, const Stream& stream);

// Pinned (page-locked) host memory: CPU tensors that copy() moves to and
// from the device asynchronously with non_blocking.
Storage allocate_pinned(size_t nbytes);
Tensor empty_pinned(IntArrayRef sizes, DType dtype);
// A pinned copy of a CPU tensor (t itself when it is already pinned).
Tensor pin_memory(const Tensor& t);
// True for host memory CUDA knows as page-locked (ours or registered).
bool is_pinned(const Tensor& t);
MemoryStats host_memory_stats();
void empty_host_cache();

}  // namespace kiln::cuda
