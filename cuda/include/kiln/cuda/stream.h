#pragma once
// Streams and events. Every kernel Kiln launches goes to the current stream
// of its device (getCurrentCUDAStream in libtorch); the default is the
// legacy default stream, so host code that does not use streams sees
// ordinary ordering.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace kiln::cuda {

// A non-owning handle to a stream on a device (c10::cuda::CUDAStream).
class Stream {
 public:
  Stream(cudaStream_t stream, int device) : stream_(stream), device_(device) {}
  cudaStream_t stream() const { return stream_; }
  operator cudaStream_t() const { return stream_; }  // NOLINT
  int device_index() const { return device_; }
  // True when all work queued so far has finished.
  bool query() const;
  void synchronize() const;
  bool operator==(const Stream& o) const { return stream_ == o.stream_ && device_ == o.device_; }
  bool operator!=(const Stream& o) const { return !(*this == o); }

 private:
  cudaStream_t stream_;
  int device_;
};

// device -1: the current device.
Stream getCurrentCUDAStream(int device = -1);
Stream getDefaultCUDAStream(int device = -1);
// A new stream from a small per-device pool (non-blocking with respect to
// the default stream), as c10::cuda::getStreamFromPool.
Stream getStreamFromPool(bool high_priority = false, int device = -1);
void setCurrentCUDAStream(const Stream& stream);

// Sets the current stream (and its device) for its lifetime.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream previous_;
  int previous_device_;
};

// An owning CUDA event (at::cuda::CUDAEvent), created lazily on first record.
class Event {
 public:
  explicit Event(bool enable_timing = false) : timing_(enable_timing) {}
  ~Event();
  Event(Event&& o) noexcept;
  Event& operator=(Event&& o) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(const Stream& stream);
  void record() ;  // on the current stream of the current device
  // Makes `stream` wait for this event's work (no host wait).
  void block(const Stream& stream) const;
  bool query() const;  // true when never recorded or complete
  void synchronize() const;
  // Milliseconds between this event and a later one (both with timing).
  float elapsed_time(const Event& end) const;
  bool recorded() const { return event_ != nullptr; }
  cudaEvent_t event() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
  int device_ = -1;
  bool timing_;
};

}  // namespace kiln::cuda
