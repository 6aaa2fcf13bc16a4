#pragma once
// The (event, block) list both caching engines keep for blocks used on other
// streams: a block is reusable once every event recorded for it completed.
#include <cstddef>
#include <deque>
#include <utility>

namespace kiln::cuda {

// Releases the completed events of `pending` (done(event) says whether one
// completed; it may wait or throw) and calls reusable(block) for each block
// whose last pending event that was; keeps the rest in order. If done()
// throws, the entries already handled are dropped first, so a later call
// never releases their events (or frees their blocks) twice.
template <typename Block, typename Done, typename Release, typename Reusable>
void retire_completed(std::deque<std::pair<void*, Block*>>& pending, Done&& done, Release&& release,
                      Reusable&& reusable) {
  size_t kept = 0;
  for (size_t i = 0; i < pending.size(); ++i) {
    auto [event, block] = pending[i];
    bool completed = false;
    try {
      completed = done(event);
    } catch (...) {
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(kept),
                    pending.begin() + static_cast<std::ptrdiff_t>(i));
      throw;
    }
    if (!completed) {
      pending[kept++] = pending[i];
      continue;
    }
    release(event);
    if (--block->pending_events == 0) reusable(block);
  }
  pending.resize(kept);
}

}  // namespace kiln::cuda
