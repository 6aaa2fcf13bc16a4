// The device caching allocator's bookkeeping (pure C++: the CUDA calls sit
// behind RawMemory, so tests drive it with fake memory on any machine).
//
// Memory comes in segments from the raw allocator. A segment is a chain of
// blocks (prev/next by address); a request takes the smallest free block of
// its stream that fits, splitting off the rest, and a freed block merges
// with free neighbours so the segment can become whole again and be returned
// by empty_cache().
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>

#include "kiln/core/error.h"
#include "kiln/cuda/caching_allocator.h"
#include "pending_events.h"

namespace kiln::cuda {

std::string format_size(size_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (bytes < 1024) {
    std::snprintf(buf, sizeof(buf), "%zu bytes", bytes);
  } else if (bytes < (size_t{1} << 20)) {
    std::snprintf(buf, sizeof(buf), "%.2f KiB", b / 1024.0);
  } else if (bytes < (size_t{1} << 30)) {
    std::snprintf(buf, sizeof(buf), "%.2f MiB", b / 1048576.0);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", b / 1073741824.0);
  }
  return buf;
}

struct CachingAllocatorEngine::Block {
  char* ptr;
  size_t size;
  StreamRef stream;  // every block of a segment keeps the segment's stream
  Pool* pool;
  size_t requested = 0;
  bool allocated = false;
  int pending_events = 0;  // > 0: freed, waiting for other streams
  Block* prev = nullptr;
  Block* next = nullptr;
  std::vector<StreamRef> stream_uses;  // streams other than `stream` that used it

  bool in_pool() const { return !allocated && pending_events == 0; }
};

bool CachingAllocatorEngine::BlockLess::operator()(const Block* a, const Block* b) const {
  if (!(a->stream == b->stream)) return a->stream < b->stream;
  if (a->size != b->size) return a->size < b->size;
  return reinterpret_cast<uintptr_t>(a->ptr) < reinterpret_cast<uintptr_t>(b->ptr);
}

CachingAllocatorEngine::CachingAllocatorEngine(RawMemory& raw, int device) : raw_(raw), device_(device) {}

CachingAllocatorEngine::~CachingAllocatorEngine() {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached();
  } catch (...) {
    // Tearing down (the driver may be gone): nothing useful to report.
  }
  std::set<Block*> all(small_.begin(), small_.end());
  all.insert(large_.begin(), large_.end());
  for (auto& [p, b] : live_) all.insert(b);
  for (auto& [e, b] : pending_) all.insert(b);
  for (Block* b : all) delete b;
}

size_t CachingAllocatorEngine::round_size(size_t nbytes) {
  if (nbytes < kMinBlockSize) return kMinBlockSize;
  return (nbytes + kMinBlockSize - 1) / kMinBlockSize * kMinBlockSize;
}

size_t CachingAllocatorEngine::segment_size(size_t rounded) {
  if (rounded <= kSmallSize) return kSmallBuffer;
  if (rounded < kMinLargeAlloc) return kLargeBuffer;
  return (rounded + kRoundLarge - 1) / kRoundLarge * kRoundLarge;
}

void* CachingAllocatorEngine::allocate(size_t nbytes, const StreamRef& stream) {
  if (nbytes == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  // Sizes this large cannot be rounded without overflowing; no device has them.
  if (nbytes > std::numeric_limits<size_t>::max() / 4) {
    ++stats_.num_ooms;
    throw_oom(nbytes);
  }
  process_events(false);
  const size_t size = round_size(nbytes);
  Pool& pool = size <= kSmallSize ? small_ : large_;
  Block* block = find_free_block(pool, stream, size);
  if (block == nullptr) block = new_segment(pool, stream, size);
  if (block == nullptr) {
    // Cached blocks of other sizes or streams may be what stands in the way.
    ++stats_.num_alloc_retries;
    release_cached();
    block = find_free_block(pool, stream, size);
    if (block == nullptr) block = new_segment(pool, stream, size);
  }
  if (block == nullptr) {
    ++stats_.num_ooms;
    throw_oom(nbytes);
  }
  const size_t remaining = block->size - size;
  // Small blocks split down to the minimum; large ones only when the rest
  // could serve a large request, so small requests never fragment them.
  if (&pool == &small_ ? remaining >= kMinBlockSize : remaining > kSmallSize) split(block, size);
  block->allocated = true;
  block->requested = nbytes;
  live_.emplace(block->ptr, block);
  stats_.allocated_bytes += block->size;
  stats_.requested_bytes += nbytes;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  ++stats_.active_blocks;
  ++stats_.num_allocs;
  return block->ptr;
}

CachingAllocatorEngine::Block* CachingAllocatorEngine::find_free_block(Pool& pool, const StreamRef& stream,
                                                                       size_t size) {
  Block key{nullptr, size, stream, &pool};
  auto it = pool.lower_bound(&key);
  if (it == pool.end() || !((*it)->stream == stream)) return nullptr;
  Block* block = *it;
  pool.erase(it);
  return block;
}

CachingAllocatorEngine::Block* CachingAllocatorEngine::new_segment(Pool& pool, const StreamRef& stream,
                                                                   size_t size) {
  const size_t bytes = segment_size(size);
  void* p = raw_.malloc(bytes);
  if (p == nullptr) return nullptr;
  stats_.reserved_bytes += bytes;
  stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
  ++stats_.segments;
  ++stats_.num_raw_mallocs;
  return new Block{static_cast<char*>(p), bytes, stream, &pool};
}

void CachingAllocatorEngine::split(Block* block, size_t size) {
  auto* rest = new Block{block->ptr + size, block->size - size, block->stream, block->pool};
  rest->prev = block;
  rest->next = block->next;
  if (block->next != nullptr) block->next->prev = rest;
  block->next = rest;
  block->size = size;
  rest->pool->insert(rest);
}

void CachingAllocatorEngine::free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  KILN_CHECK(it != live_.end(), "CUDA caching allocator (GPU ", device_, "): free of pointer ", ptr,
             " that it did not allocate or already freed");
  Block* block = it->second;
  live_.erase(it);
  block->allocated = false;
  stats_.allocated_bytes -= block->size;
  stats_.requested_bytes -= block->requested;
  --stats_.active_blocks;
  ++stats_.num_frees;
  if (block->stream_uses.empty()) {
    free_block(block);
    return;
  }
  // Other streams may still be reading or writing it: reuse waits for them.
  std::vector<StreamRef> uses;
  uses.swap(block->stream_uses);
  for (const StreamRef& s : uses) {
    void* event = raw_.record_event(s);
    pending_.emplace_back(event, block);
    ++block->pending_events;
  }
}

void CachingAllocatorEngine::free_block(Block* block) {
  Pool& pool = *block->pool;
  if (Block* prev = block->prev; prev != nullptr && prev->in_pool()) {
    pool.erase(prev);
    prev->size += block->size;
    prev->next = block->next;
    if (block->next != nullptr) block->next->prev = prev;
    delete block;
    block = prev;
  }
  if (Block* next = block->next; next != nullptr && next->in_pool()) {
    pool.erase(next);
    block->size += next->size;
    block->next = next->next;
    if (next->next != nullptr) next->next->prev = block;
    delete next;
  }
  pool.insert(block);
}

void CachingAllocatorEngine::process_events(bool wait) {
  retire_completed(
      pending_,
      [&](void* event) {
        if (!wait) return raw_.query_event(event);
        raw_.synchronize_event(event);
        return true;
      },
      [&](void* event) { raw_.release_event(event); }, [&](Block* block) { free_block(block); });
}

void CachingAllocatorEngine::release_pool(Pool& pool) {
  for (auto it = pool.begin(); it != pool.end();) {
    Block* b = *it;
    if (b->prev != nullptr || b->next != nullptr) {  // part of a segment still in use
      ++it;
      continue;
    }
    raw_.free(b->ptr);
    stats_.reserved_bytes -= b->size;
    --stats_.segments;
    ++stats_.num_raw_frees;
    it = pool.erase(it);
    delete b;
  }
}

void CachingAllocatorEngine::release_cached() {
  process_events(true);
  release_pool(small_);
  release_pool(large_);
}

void CachingAllocatorEngine::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached();
}

MemoryStats CachingAllocatorEngine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocatorEngine::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

size_t CachingAllocatorEngine::block_size(void* ptr) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  return it == live_.end() ? 0 : it->second->size;
}

void CachingAllocatorEngine::record_stream(void* ptr, const StreamRef& stream) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) return;
  Block* block = it->second;
  if (block->stream == stream) return;
  if (std::find(block->stream_uses.begin(), block->stream_uses.end(), stream) == block->stream_uses.end())
    block->stream_uses.push_back(stream);
}

void CachingAllocatorEngine::throw_oom(size_t nbytes) {
  size_t free_bytes = 0, total_bytes = 0;
  try {
    raw_.mem_get_info(&free_bytes, &total_bytes);
  } catch (const std::exception&) {
    // The message is still worth giving without these numbers.
  }
  KILN_ERROR("CUDA out of memory. Tried to allocate ", format_size(nbytes), " (GPU ", device_, "; ",
             format_size(total_bytes), " total capacity; ", format_size(stats_.allocated_bytes),
             " already allocated; ", format_size(free_bytes), " free; ", format_size(stats_.reserved_bytes),
             " reserved in total by Kiln)");
}

}  // namespace kiln::cuda
