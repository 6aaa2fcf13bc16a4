// The caching allocators' rules, driven by fake raw memory: these run on
// every machine, GPU or not. (test_runtime.cpp checks the same allocator on
// a real device.)
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/cuda/caching_allocator.h"

using namespace kiln::cuda;

namespace {

constexpr size_t KiB = size_t{1} << 10;
constexpr size_t MiB = size_t{1} << 20;

// Address space that is never dereferenced; segments are spaced apart so
// two of them are never adjacent (a merge across segments would show).
// Events complete only when the test says so (or when waited on).
class FakeMemory : public RawMemory {
 public:
  explicit FakeMemory(size_t capacity = size_t{1} << 40) : capacity_(capacity) {}

  void* malloc(size_t n) override {
    ++malloc_calls;
    if (used_ + n > capacity_) return nullptr;
    used_ += n;
    const uintptr_t a = next_;
    next_ += n + (size_t{1} << 30);
    segments_[a] = n;
    return reinterpret_cast<void*>(a);
  }
  void free(void* p) override {
    auto it = segments_.find(reinterpret_cast<uintptr_t>(p));
    ASSERT_NE(it, segments_.end()) << "raw free of an address that is not a segment";
    used_ -= it->second;
    segments_.erase(it);
    ++free_calls;
  }
  void mem_get_info(size_t* free, size_t* total) override {
    *free = capacity_ - used_;
    *total = capacity_;
  }
  void* record_event(const StreamRef& s) override {
    events_.push_back(std::make_unique<Event>(Event{s}));
    ++live_events;
    return events_.back().get();
  }
  bool query_event(void* e) override { return static_cast<Event*>(e)->done; }
  void synchronize_event(void* e) override {
    static_cast<Event*>(e)->done = true;
    ++event_waits;
  }
  void release_event(void* e) override {
    EXPECT_FALSE(static_cast<Event*>(e)->released);
    static_cast<Event*>(e)->released = true;
    --live_events;
  }

  // All work queued on `s` so far has finished.
  void complete(const StreamRef& s) {
    for (auto& e : events_)
      if (e->stream == s) e->done = true;
  }
  size_t segment_count() const { return segments_.size(); }
  size_t used() const { return used_; }

  int malloc_calls = 0, free_calls = 0, live_events = 0, event_waits = 0;

 private:
  struct Event {
    StreamRef stream;
    bool done = false;
    bool released = false;
  };
  size_t capacity_;
  size_t used_ = 0;
  uintptr_t next_ = uintptr_t{1} << 40;
  std::map<uintptr_t, size_t> segments_;
  std::vector<std::unique_ptr<Event>> events_;
};

const StreamRef s0{nullptr, 0};
const StreamRef s1{reinterpret_cast<void*>(0x1000), 0};

char* at(void* p, size_t offset) { return static_cast<char*>(p) + offset; }

}  // namespace

TEST(CachingAllocator, RoundsSizes) {
  EXPECT_EQ(CachingAllocatorEngine::round_size(1), 512u);
  EXPECT_EQ(CachingAllocatorEngine::round_size(512), 512u);
  EXPECT_EQ(CachingAllocatorEngine::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocatorEngine::round_size(MiB + 1), MiB + 512);
  EXPECT_EQ(CachingAllocatorEngine::segment_size(512), 2 * MiB);
  EXPECT_EQ(CachingAllocatorEngine::segment_size(MiB), 2 * MiB);
  EXPECT_EQ(CachingAllocatorEngine::segment_size(MiB + 512), 20 * MiB);
  EXPECT_EQ(CachingAllocatorEngine::segment_size(10 * MiB - 512), 20 * MiB);
  EXPECT_EQ(CachingAllocatorEngine::segment_size(10 * MiB), 10 * MiB);
  EXPECT_EQ(CachingAllocatorEngine::segment_size(11 * MiB), 12 * MiB);
}

TEST(CachingAllocator, ZeroBytesAndNullFree) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  EXPECT_EQ(engine.allocate(0, s0), nullptr);
  engine.free(nullptr);
  EXPECT_EQ(raw.malloc_calls, 0);
  EXPECT_EQ(engine.stats().num_allocs, 0);
}

TEST(CachingAllocator, ReusesFreedBlock) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* p = engine.allocate(1000, s0);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(engine.block_size(p), 1024u);
  engine.free(p);
  EXPECT_EQ(engine.block_size(p), 0u);  // no longer live
  void* q = engine.allocate(900, s0);
  EXPECT_EQ(q, p);
  EXPECT_EQ(raw.malloc_calls, 1);
  engine.free(q);
}

TEST(CachingAllocator, SplitsSmallSegment) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* a = engine.allocate(512, s0);
  void* b = engine.allocate(700, s0);
  void* c = engine.allocate(100, s0);
  EXPECT_EQ(static_cast<char*>(b), at(a, 512));
  EXPECT_EQ(static_cast<char*>(c), at(a, 512 + 1024));
  EXPECT_EQ(raw.malloc_calls, 1);
  MemoryStats st = engine.stats();
  EXPECT_EQ(st.reserved_bytes, 2 * MiB);
  EXPECT_EQ(st.allocated_bytes, 512u + 1024u + 512u);
  EXPECT_EQ(st.requested_bytes, 512u + 700u + 100u);
  EXPECT_EQ(st.active_blocks, 3);
  EXPECT_EQ(st.segments, 1);
  // A request of exactly a small segment's size takes all of a new one.
  void* whole = engine.allocate(MiB, s0);
  EXPECT_EQ(engine.block_size(whole), MiB);
  for (void* p : {a, b, c, whole}) engine.free(p);
}

TEST(CachingAllocator, MergesFreeNeighbours) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* a = engine.allocate(1024, s0);
  void* b = engine.allocate(1024, s0);
  void* c = engine.allocate(1024, s0);
  engine.free(a);
  engine.free(b);
  // a and b merged into one 2 KiB block, the best fit for 2 KiB (the tail
  // after c is much larger).
  void* d = engine.allocate(2048, s0);
  EXPECT_EQ(d, a);
  EXPECT_EQ(engine.block_size(d), 2048u);
  engine.free(c);
  engine.free(d);
  // Everything merged back into one whole segment, so empty_cache returns it.
  engine.empty_cache();
  EXPECT_EQ(raw.free_calls, 1);
  EXPECT_EQ(raw.segment_count(), 0u);
  EXPECT_EQ(engine.stats().reserved_bytes, 0u);
}

TEST(CachingAllocator, MergesInAnyFreeOrder) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i) blocks.push_back(engine.allocate(512 * (i + 1), s0));
  for (int i : {3, 1, 7, 0, 5, 2, 6, 4}) engine.free(blocks[i]);
  // All merged into one block spanning the segment: the largest small
  // request fits in it, at its start, with no new segment.
  void* p = engine.allocate(MiB, s0);
  EXPECT_EQ(p, blocks[0]);
  EXPECT_EQ(raw.malloc_calls, 1);
  engine.free(p);
  engine.empty_cache();
  EXPECT_EQ(raw.segment_count(), 0u);
}

TEST(CachingAllocator, LargePoolSplitsOnlyUsefulRemainders) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* a = engine.allocate(3 * MiB, s0);  // a 20 MiB segment
  EXPECT_EQ(engine.stats().reserved_bytes, 20 * MiB);
  void* b = engine.allocate(5 * MiB, s0);  // carved from its remainder
  EXPECT_EQ(static_cast<char*>(b), at(a, 3 * MiB));
  EXPECT_EQ(raw.malloc_calls, 1);
  void* c = engine.allocate(13 * MiB, s0);  // 12 MiB left: a new 14 MiB segment
  EXPECT_EQ(raw.malloc_calls, 2);
  EXPECT_EQ(engine.stats().reserved_bytes, 34 * MiB);
  // Small requests never come from the large pool, even with 12 MiB free there.
  void* e = engine.allocate(MiB, s0);
  EXPECT_EQ(raw.malloc_calls, 3);
  EXPECT_EQ(engine.stats().reserved_bytes, 36 * MiB);
  // A remainder of 1 MiB or less stays with the block.
  void* d = engine.allocate(11 * MiB + 512, s0);
  EXPECT_EQ(engine.block_size(d), 12 * MiB);
  EXPECT_EQ(raw.malloc_calls, 3);
  for (void* p : {a, b, c, d, e}) engine.free(p);
}

TEST(CachingAllocator, BestFitPicksSmallestBlock) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* big = engine.allocate(4096, s0);
  void* sep1 = engine.allocate(512, s0);
  void* small = engine.allocate(1024, s0);
  void* sep2 = engine.allocate(512, s0);
  engine.free(big);
  engine.free(small);
  EXPECT_EQ(engine.allocate(1000, s0), small);
  EXPECT_EQ(engine.allocate(3000, s0), big);
  (void)sep1;
  (void)sep2;
}

TEST(CachingAllocator, StreamsHaveSeparatePools) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* p = engine.allocate(4096, s0);
  engine.free(p);
  void* q = engine.allocate(4096, s1);
  EXPECT_NE(q, p);
  EXPECT_EQ(raw.malloc_calls, 2);  // s1 never takes s0's cached memory
  void* r = engine.allocate(4096, s0);
  EXPECT_EQ(r, p);
  engine.free(q);
  engine.free(r);
  // Blocks of different streams never merge: two whole segments come back.
  engine.empty_cache();
  EXPECT_EQ(raw.free_calls, 2);
}

TEST(CachingAllocator, RecordStreamDelaysReuseUntilEventsComplete) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* p = engine.allocate(4096, s0);
  engine.record_stream(p, s1);
  engine.record_stream(p, s1);  // once is enough
  engine.free(p);
  EXPECT_EQ(raw.live_events, 1);
  EXPECT_EQ(engine.stats().allocated_bytes, 0u);  // freed as far as stats go
  void* q = engine.allocate(4096, s0);
  EXPECT_NE(q, p);  // s1 may still be using p
  raw.complete(s1);
  void* r = engine.allocate(4096, s0);
  EXPECT_EQ(r, p);
  EXPECT_EQ(raw.live_events, 0);
  EXPECT_EQ(raw.malloc_calls, 1);
  engine.free(q);
  engine.free(r);
}

TEST(CachingAllocator, RecordStreamOnOwnStreamOrUnknownPointerIsNoOp) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* p = engine.allocate(4096, s0);
  engine.record_stream(p, s0);
  int dummy = 0;
  engine.record_stream(&dummy, s1);
  engine.free(p);
  EXPECT_EQ(raw.live_events, 0);
  EXPECT_EQ(engine.allocate(4096, s0), p);
}

TEST(CachingAllocator, EmptyCacheWaitsForPendingFrees) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* p = engine.allocate(4096, s0);
  engine.record_stream(p, s1);
  engine.free(p);
  engine.empty_cache();
  EXPECT_EQ(raw.event_waits, 1);
  EXPECT_EQ(raw.live_events, 0);
  EXPECT_EQ(raw.segment_count(), 0u);
  EXPECT_EQ(engine.stats().reserved_bytes, 0u);
}

TEST(CachingAllocator, EmptyCacheKeepsSegmentsInUse) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* a = engine.allocate(1024, s0);      // small segment, stays in use
  void* b = engine.allocate(30 * MiB, s0);  // large segment, freed below
  void* c = engine.allocate(2 * KiB, s0);   // same small segment as a
  engine.free(b);
  engine.free(c);
  engine.empty_cache();
  EXPECT_EQ(raw.segment_count(), 1u);
  MemoryStats st = engine.stats();
  EXPECT_EQ(st.reserved_bytes, 2 * MiB);
  EXPECT_EQ(st.segments, 1);
  EXPECT_EQ(st.num_raw_frees, 1);
  EXPECT_EQ(st.allocated_bytes, 1024u);
  engine.free(a);
  engine.empty_cache();
  EXPECT_EQ(raw.segment_count(), 0u);
}

TEST(CachingAllocator, StatsAndPeaks) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  void* a = engine.allocate(12 * MiB, s0);
  void* b = engine.allocate(1000, s0);
  MemoryStats st = engine.stats();
  EXPECT_EQ(st.allocated_bytes, 12 * MiB + 1024);
  EXPECT_EQ(st.requested_bytes, 12 * MiB + 1000);
  EXPECT_EQ(st.reserved_bytes, 12 * MiB + 2 * MiB);
  EXPECT_EQ(st.peak_allocated_bytes, 12 * MiB + 1024);
  EXPECT_EQ(st.num_allocs, 2);
  EXPECT_EQ(st.num_raw_mallocs, 2);
  engine.free(a);
  st = engine.stats();
  EXPECT_EQ(st.allocated_bytes, 1024u);
  EXPECT_EQ(st.requested_bytes, 1000u);
  EXPECT_EQ(st.peak_allocated_bytes, 12 * MiB + 1024);
  EXPECT_EQ(st.reserved_bytes, 14 * MiB);  // cached, not returned
  EXPECT_EQ(st.num_frees, 1);
  EXPECT_EQ(st.active_blocks, 1);
  engine.reset_peak_stats();
  st = engine.stats();
  EXPECT_EQ(st.peak_allocated_bytes, 1024u);
  EXPECT_EQ(st.peak_reserved_bytes, 14 * MiB);
  engine.empty_cache();
  engine.reset_peak_stats();
  st = engine.stats();
  EXPECT_EQ(st.reserved_bytes, 2 * MiB);
  EXPECT_EQ(st.peak_reserved_bytes, 2 * MiB);
  EXPECT_EQ(st.num_raw_frees, 1);
  engine.free(b);
}

TEST(CachingAllocator, SteadyStateNeedsNoRawAllocations) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  const size_t sizes[] = {4, 1000, 4096, 300 * KiB, 3 * MiB, 25 * MiB};
  int after_first = 0;
  for (int iter = 0; iter < 20; ++iter) {
    std::vector<void*> live;
    for (size_t s : sizes) live.push_back(engine.allocate(s, s0));
    for (size_t i = 0; i < live.size(); i += 2) engine.free(live[i]);
    for (size_t i = 1; i < live.size(); i += 2) engine.free(live[i]);
    if (iter == 0) after_first = raw.malloc_calls;
  }
  EXPECT_EQ(raw.malloc_calls, after_first);
  EXPECT_EQ(raw.free_calls, 0);
  EXPECT_EQ(engine.stats().allocated_bytes, 0u);
}

TEST(CachingAllocator, ReleasesCacheAndRetriesBeforeFailing) {
  FakeMemory raw(64 * MiB);
  CachingAllocatorEngine engine(raw, 0);
  void* p = engine.allocate(40 * MiB, s0);
  engine.free(p);  // 40 MiB cached for s0
  void* q = engine.allocate(30 * MiB, s1);
  ASSERT_NE(q, nullptr);
  MemoryStats st = engine.stats();
  EXPECT_EQ(st.num_alloc_retries, 1);
  EXPECT_EQ(st.num_ooms, 0);
  EXPECT_EQ(st.num_raw_frees, 1);
  EXPECT_EQ(st.reserved_bytes, 30 * MiB);
  EXPECT_EQ(st.peak_reserved_bytes, 40 * MiB);
  engine.free(q);
}

TEST(CachingAllocator, OutOfMemoryMessage) {
  FakeMemory raw(64 * MiB);
  CachingAllocatorEngine engine(raw, 3);
  void* p = engine.allocate(40 * MiB, s0);
  try {
    engine.allocate(30 * MiB, s0);
    ADD_FAILURE() << "expected an out-of-memory error";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "CUDA out of memory. Tried to allocate 30.00 MiB (GPU 3; 64.00 MiB total capacity; 40.00 MiB already "
              "allocated; 24.00 MiB free; 40.00 MiB reserved in total by Kiln)");
  }
  MemoryStats st = engine.stats();
  EXPECT_EQ(st.num_ooms, 1);
  EXPECT_EQ(st.num_alloc_retries, 1);
  EXPECT_EQ(st.allocated_bytes, 40 * MiB);
  // The engine is still usable after the failure.
  void* q = engine.allocate(MiB, s0);
  EXPECT_NE(q, nullptr);
  engine.free(q);
  engine.free(p);
  try {
    engine.allocate(size_t{1} << 62, s0);
    ADD_FAILURE() << "expected an out-of-memory error";
  } catch (const kiln::Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA out of memory. Tried to allocate 4294967296.00 GiB"),
              std::string::npos)
        << e.what();
  }
}

TEST(CachingAllocator, FreeOfUnknownPointerIsAnError) {
  FakeMemory raw;
  CachingAllocatorEngine engine(raw, 0);
  int dummy = 0;
  EXPECT_THROW(engine.free(&dummy), kiln::Error);
  void* p = engine.allocate(64, s0);
  engine.free(p);
  EXPECT_THROW(engine.free(p), kiln::Error);  // double free
}

TEST(CachingAllocator, FormatsSizesAsTorch) {
  EXPECT_EQ(format_size(0), "0 bytes");
  EXPECT_EQ(format_size(1023), "1023 bytes");
  EXPECT_EQ(format_size(1536), "1.50 KiB");
  EXPECT_EQ(format_size(20 * MiB), "20.00 MiB");
  EXPECT_EQ(format_size(size_t{3} << 29), "1.50 GiB");
}

TEST(HostCachingAllocator, RoundsToPowersOfTwoAndReuses) {
  FakeMemory raw;
  HostCachingEngine engine(raw);
  EXPECT_EQ(HostCachingEngine::round_size(1), 512u);
  EXPECT_EQ(HostCachingEngine::round_size(513), 1024u);
  EXPECT_EQ(HostCachingEngine::round_size(MiB), MiB);
  EXPECT_EQ(HostCachingEngine::round_size(MiB + 1), 2 * MiB);
  EXPECT_EQ(engine.allocate(0), nullptr);
  void* p = engine.allocate(3000);
  EXPECT_TRUE(engine.owns(p));
  EXPECT_EQ(engine.stats().allocated_bytes, 4096u);
  engine.free(p);
  EXPECT_EQ(engine.allocate(2500), p);  // same bucket
  void* q = engine.allocate(5000);      // another bucket
  EXPECT_NE(q, p);
  EXPECT_EQ(raw.malloc_calls, 2);
  engine.free(p);
  engine.free(q);
  engine.empty_cache();
  EXPECT_EQ(raw.segment_count(), 0u);
  EXPECT_FALSE(engine.owns(p));
}

TEST(HostCachingAllocator, ReuseWaitsForStreamsThatUsedTheBlock) {
  FakeMemory raw;
  HostCachingEngine engine(raw);
  void* p = engine.allocate(4096);
  EXPECT_TRUE(engine.record_stream(p, s1));
  int dummy = 0;
  EXPECT_FALSE(engine.record_stream(&dummy, s1));
  engine.free(p);
  void* q = engine.allocate(4096);
  EXPECT_NE(q, p);  // a copy on s1 may still read p
  engine.free(q);
  raw.complete(s1);
  void* r = engine.allocate(4096);
  void* t = engine.allocate(4096);
  EXPECT_TRUE((r == p && t == q) || (r == q && t == p));
  EXPECT_EQ(raw.malloc_calls, 2);
  EXPECT_EQ(raw.live_events, 0);
  engine.free(r);
  engine.free(t);
}

TEST(HostCachingAllocator, RetriesAfterReleasingIdleBlocksThenFails) {
  FakeMemory raw(8 * KiB);
  HostCachingEngine engine(raw);
  void* a = engine.allocate(4096);
  engine.free(a);
  void* b = engine.allocate(8192);  // only fits once a's idle block is released
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(engine.stats().num_alloc_retries, 1);
  EXPECT_EQ(engine.stats().reserved_bytes, 8192u);
  try {
    engine.allocate(100);
    ADD_FAILURE() << "expected an out-of-memory error";
  } catch (const kiln::Error& e) {
    EXPECT_NE(std::string(e.what()).find("pinned host memory: out of memory"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine.stats().num_ooms, 1);
  engine.free(b);
  EXPECT_THROW(engine.free(b), kiln::Error);
}
