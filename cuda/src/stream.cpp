// Streams and events (c10::cuda's CUDAStream and at::cuda::CUDAEvent).
// The current stream is per thread and per device, as in libtorch, so a
// data-loader thread that switches streams does not redirect the trainer's
// kernels.
#include "kiln/cuda/stream.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "kiln/cuda/check.h"
#include "kiln/cuda/runtime.h"

namespace kiln::cuda {

namespace {

// Pool streams are handed out round robin: enough for a few concurrent
// pipelines (prefetch, communication) without creating a stream per request.
constexpr int kPoolSize = 4;

int resolve(int device, const char* what) {
  const int index = device < 0 ? current_device() : device;
  KILN_CHECK(index >= 0 && index < device_count(), what, ": invalid device index ", index, " (", device_count(),
             " CUDA devices available)");
  return index;
}

// The legacy default stream (handle 0): ordered with all other blocking
// streams of its device, so code that never touches streams sees plain
// program order.
constexpr cudaStream_t kDefaultStream = nullptr;

std::vector<cudaStream_t>& current_streams() {
  thread_local std::vector<cudaStream_t> streams;
  if (streams.empty()) streams.assign(static_cast<size_t>(device_count()), kDefaultStream);
  return streams;
}

struct DevicePool {
  std::once_flag once[2];
  cudaStream_t streams[2][kPoolSize] = {};
  std::atomic<uint32_t> next[2] = {0, 0};
};

// Created once, never destroyed: streams outlive every tensor and thread.
DevicePool& device_pool(int index) {
  static DevicePool* pools = new DevicePool[static_cast<size_t>(device_count())];
  return pools[index];
}

bool ready(cudaError_t status) {
  if (status == cudaErrorNotReady) {
    (void)cudaGetLastError();  // "not ready" is an answer, not an error to report later
    return false;
  }
  KILN_CUDA_CHECK(status);
  return true;
}

}  // namespace

bool Stream::query() const {
  DeviceGuard guard(device_);  // handle 0 means the current device's default stream
  return ready(cudaStreamQuery(stream_));
}

void Stream::synchronize() const {
  DeviceGuard guard(device_);
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

Stream getCurrentCUDAStream(int device) {
  const int index = resolve(device, "getCurrentCUDAStream");
  return Stream(current_streams()[static_cast<size_t>(index)], index);
}

Stream getDefaultCUDAStream(int device) {
  const int index = resolve(device, "getDefaultCUDAStream");
  return Stream(kDefaultStream, index);
}

Stream getStreamFromPool(bool high_priority, int device) {
  const int index = resolve(device, "getStreamFromPool");
  DevicePool& pool = device_pool(index);
  const int p = high_priority ? 1 : 0;
  std::call_once(pool.once[p], [&] {
    DeviceGuard guard(index);
    // Lower numbers are higher priorities; `least` is the default priority.
    int least = 0, greatest = 0;
    KILN_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    for (auto& s : pool.streams[p])
      KILN_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, high_priority ? greatest : least));
  });
  const uint32_t k = pool.next[p].fetch_add(1, std::memory_order_relaxed) % kPoolSize;
  return Stream(pool.streams[p][k], index);
}

void setCurrentCUDAStream(const Stream& stream) {
  const int index = resolve(stream.device_index(), "setCurrentCUDAStream");
  current_streams()[static_cast<size_t>(index)] = stream.stream();
}

StreamGuard::StreamGuard(const Stream& stream)
    : previous_(getCurrentCUDAStream(stream.device_index())), previous_device_(current_device()) {
  set_device(stream.device_index());
  setCurrentCUDAStream(stream);
}

StreamGuard::~StreamGuard() {
  // Both indices were validated by the constructor: nothing here can throw.
  current_streams()[static_cast<size_t>(previous_.device_index())] = previous_.stream();
  (void)cudaSetDevice(previous_device_);
}

// ---- Event ----

Event::~Event() {
  // Destroying an event whose work is still queued is allowed: CUDA frees it
  // once complete. Errors (a driver already unloaded at exit) are moot here.
  if (event_ != nullptr) (void)cudaEventDestroy(event_);
}

Event::Event(Event&& o) noexcept
    : event_(std::exchange(o.event_, nullptr)), device_(std::exchange(o.device_, -1)), timing_(o.timing_) {}

Event& Event::operator=(Event&& o) noexcept {
  if (this != &o) {
    if (event_ != nullptr) (void)cudaEventDestroy(event_);
    event_ = std::exchange(o.event_, nullptr);
    device_ = std::exchange(o.device_, -1);
    timing_ = o.timing_;
  }
  return *this;
}

void Event::record(const Stream& stream) {
  DeviceGuard guard(stream.device_index());
  if (event_ == nullptr) {
    // Timing costs a timestamp per record; most events only order work.
    KILN_CUDA_CHECK(cudaEventCreateWithFlags(&event_, timing_ ? cudaEventDefault : cudaEventDisableTiming));
    device_ = stream.device_index();
  }
  KILN_CHECK(device_ == stream.device_index(), "Event::record: the event belongs to device ", device_,
             " but the stream to device ", stream.device_index());
  KILN_CUDA_CHECK(cudaEventRecord(event_, stream.stream()));
}

void Event::record() { record(getCurrentCUDAStream()); }

void Event::block(const Stream& stream) const {
  if (event_ == nullptr) return;  // nothing recorded: nothing to wait for
  DeviceGuard guard(stream.device_index());
  KILN_CUDA_CHECK(cudaStreamWaitEvent(stream.stream(), event_, 0));
}

bool Event::query() const {
  if (event_ == nullptr) return true;
  return ready(cudaEventQuery(event_));
}

void Event::synchronize() const {
  if (event_ != nullptr) KILN_CUDA_CHECK(cudaEventSynchronize(event_));
}

float Event::elapsed_time(const Event& end) const {
  KILN_CHECK(timing_ && end.timing_, "Event::elapsed_time: both events must be created with enable_timing=true");
  KILN_CHECK(event_ != nullptr && end.event_ != nullptr,
             "Event::elapsed_time: both events must be recorded before measuring the time between them");
  // Waits for the later event rather than failing with "not ready".
  end.synchronize();
  synchronize();
  float ms = 0.f;
  KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, event_, end.event_));
  return ms;
}

}  // namespace kiln::cuda
