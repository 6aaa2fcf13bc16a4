// The pinned host cache's bookkeeping (pure C++, like caching_engine.cpp).
// Pinned buffers are staging areas for asynchronous copies, so a freed one
// may still be read or written by a copy in flight: reuse waits for events
// recorded on every stream that used it.
#include <algorithm>
#include <bit>
#include <limits>

#include "kiln/core/error.h"
#include "kiln/cuda/caching_allocator.h"
#include "pending_events.h"

namespace kiln::cuda {

namespace {

// Returns every idle buffer to the driver (empty_cache, and before retrying
// an allocation that failed).
template <typename FreeLists, typename Blocks>
void release_idle(FreeLists& free, Blocks& blocks, MemoryStats& stats, RawMemory& raw) {
  for (auto& [size, list] : free) {
    for (auto* b : list) {
      void* q = b->ptr;
      raw.free(q);
      stats.reserved_bytes -= b->size;
      --stats.segments;
      ++stats.num_raw_frees;
      blocks.erase(q);
    }
  }
  free.clear();
}

}  // namespace

HostCachingEngine::HostCachingEngine(RawMemory& raw) : raw_(raw) {}

HostCachingEngine::~HostCachingEngine() {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [event, block] : pending_) raw_.release_event(event);
    for (auto& [size, list] : free_)
      for (Block* b : list) raw_.free(b->ptr);
  } catch (...) {
    // Tearing down (the driver may be gone): nothing useful to report.
  }
}

size_t HostCachingEngine::round_size(size_t nbytes) {
  // Powers of two: a handful of buckets, so buffers of varying sizes recycle.
  return std::bit_ceil(std::max<size_t>(nbytes, 512));
}

void* HostCachingEngine::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  KILN_CHECK(nbytes <= std::numeric_limits<size_t>::max() / 4, "pinned host memory: cannot allocate ",
             format_size(nbytes));
  process_events();
  const size_t size = round_size(nbytes);
  Block* block = nullptr;
  if (auto it = free_.find(size); it != free_.end() && !it->second.empty()) {
    block = it->second.back();
    it->second.pop_back();
  } else {
    void* p = raw_.malloc(size);
    if (p == nullptr) {
      // Idle buffers of other sizes are what page-locked memory is short of.
      ++stats_.num_alloc_retries;
      release_idle(free_, blocks_, stats_, raw_);
      p = raw_.malloc(size);
    }
    if (p == nullptr) {
      ++stats_.num_ooms;
      KILN_ERROR("pinned host memory: out of memory. Tried to allocate ", format_size(size), " (",
                 format_size(stats_.reserved_bytes), " pinned by Kiln)");
    }
    auto owned = std::make_unique<Block>(Block{p, size});
    block = owned.get();
    blocks_.emplace(p, std::move(owned));
    stats_.reserved_bytes += size;
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
    ++stats_.segments;
    ++stats_.num_raw_mallocs;
  }
  block->allocated = true;
  block->requested = nbytes;
  stats_.allocated_bytes += block->size;
  stats_.requested_bytes += nbytes;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  ++stats_.active_blocks;
  ++stats_.num_allocs;
  return block->ptr;
}

void HostCachingEngine::free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = blocks_.find(ptr);
  KILN_CHECK(it != blocks_.end() && it->second->allocated, "pinned host memory: free of pointer ", ptr,
             " that was not allocated here or already freed");
  Block* block = it->second.get();
  block->allocated = false;
  stats_.allocated_bytes -= block->size;
  stats_.requested_bytes -= block->requested;
  --stats_.active_blocks;
  ++stats_.num_frees;
  std::vector<StreamRef> uses;
  uses.swap(block->streams);
  for (const StreamRef& s : uses) {
    pending_.emplace_back(raw_.record_event(s), block);
    ++block->pending_events;
  }
  if (block->pending_events == 0) free_[block->size].push_back(block);
}

bool HostCachingEngine::record_stream(void* ptr, const StreamRef& stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = blocks_.find(ptr);
  if (it == blocks_.end() || !it->second->allocated) return false;
  auto& streams = it->second->streams;
  if (std::find(streams.begin(), streams.end(), stream) == streams.end()) streams.push_back(stream);
  return true;
}

bool HostCachingEngine::owns(void* ptr) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return blocks_.count(ptr) != 0;
}

void HostCachingEngine::process_events() {
  retire_completed(
      pending_, [&](void* event) { return raw_.query_event(event); },
      [&](void* event) { raw_.release_event(event); }, [&](Block* block) { free_[block->size].push_back(block); });
}

void HostCachingEngine::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  process_events();
  release_idle(free_, blocks_, stats_, raw_);
}

MemoryStats HostCachingEngine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace kiln::cuda
