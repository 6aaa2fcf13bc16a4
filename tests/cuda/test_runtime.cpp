// The CUDA runtime on a real device: devices, streams, events, transfers in
// every direction, fills, and the caching allocator. Every test skips
// without a GPU (test_allocator.cpp checks the allocator's rules anywhere).
// Copies and fills are compared with the CPU backend's result for the same
// input, bit for bit: the two backends must agree exactly on conversions.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "kiln/core/backend.h"
#include "kiln/core/native.h"
#include "kiln/cuda/caching_allocator.h"
#include "kiln/cuda/runtime.h"
#include "kiln/cuda/stream.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

constexpr DType kAllDTypes[] = {kFloat64, kFloat32, kFloat16, kBFloat16, kInt64, kInt32, kUInt8, kBool};
constexpr int64_t MiB = int64_t{1} << 20;

Device cuda0() { return Device(kCUDA, 0); }

// Values every dtype holds meaningfully: fractions (rounding, truncation
// toward zero), zeros (bool), and negatives unless uint8 is involved
// (negative -> uint8 is undefined in C++ and differs between devices).
std::vector<double> test_values(int64_t n, bool allow_negative, unsigned seed = 1) {
  std::vector<double> v = sample(n, allow_negative ? -100.0 : 0.0, 100.0, seed);
  for (size_t i = 0; i < v.size(); i += 7) v[i] = 0.0;
  for (size_t i = 3; i < v.size(); i += 11) v[i] = std::trunc(v[i]);
  return v;
}

// An input of dtype `dt` on the CPU, already holding dt's rounded values.
Tensor host_input(IntArrayRef sizes, DType dt, bool allow_negative, unsigned seed = 1) {
  return make(sizes, test_values(numel_of(sizes), allow_negative, seed), dt);
}

// Exact equality of the values (both are widened to double, which holds
// every element of every dtype exactly).
::testing::AssertionResult same_values(const Tensor& actual, const Tensor& expected) {
  if (!actual.sizes().equals(expected.sizes()))
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != " << expected.sizes();
  if (actual.dtype() != expected.dtype())
    return ::testing::AssertionFailure() << "dtype " << actual.dtype() << " != " << expected.dtype();
  auto a = values(actual), b = values(expected);
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (a[i] != b[i]) return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
  }
  return ::testing::AssertionSuccess();
}

Tensor to_cuda(const Tensor& t, bool non_blocking = false) { return native::to(t, cuda0(), non_blocking); }
Tensor to_cpu(const Tensor& t) { return native::to(t, Device(kCPU)); }

}  // namespace

// ---- devices ----

TEST(CudaRuntime, AvailabilityNeverThrows) {
  // Runs everywhere: without a GPU the answer is simply false.
  bool available = false;
  EXPECT_NO_THROW(available = cuda::is_available());
  EXPECT_EQ(available, has_backend(kCUDA));
  if (!available) {
    EXPECT_EQ(cuda::device_count(), 0);
  }
}

TEST(CudaRuntime, DeviceCountAndProperties) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  ASSERT_GE(cuda::device_count(), 1);
  const int cur = cuda::current_device();
  EXPECT_GE(cur, 0);
  EXPECT_LT(cur, cuda::device_count());
  const cuda::DeviceProperties& p = cuda::get_device_properties();
  EXPECT_FALSE(p.name.empty());
  EXPECT_GE(p.major, 5);
  EXPECT_GT(p.multi_processor_count, 0);
  EXPECT_GT(p.total_memory, size_t{1} << 28);
  EXPECT_GE(p.shared_memory_per_block_optin, size_t{48} << 10);
  EXPECT_EQ(p.max_threads_per_block, 1024);
  EXPECT_EQ(p.warp_size, 32);
  // Cached: the same object every time.
  EXPECT_EQ(&cuda::get_device_properties(cur), &p);
}

TEST(CudaRuntime, BadDeviceIndicesAreErrors) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  const int n = cuda::device_count();
  EXPECT_KILN_ERROR(cuda::set_device(n), "invalid device index " + std::to_string(n));
  EXPECT_KILN_ERROR(cuda::set_device(n), std::to_string(n) + (n == 1 ? " CUDA device is" : " CUDA devices are"));
  EXPECT_KILN_ERROR(cuda::set_device(-2), "invalid device index -2");
  EXPECT_KILN_ERROR(cuda::get_device_properties(n + 5), "invalid device index");
  EXPECT_KILN_ERROR(native::empty({4}, TensorOptions().device(Device(kCUDA, n))), "invalid device");
}

TEST(CudaRuntime, DeviceGuardRestoresThePreviousDevice) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  cuda::set_device(0);
  {
    cuda::DeviceGuard none(-1);
    EXPECT_EQ(cuda::current_device(), 0);
  }
  const int last = cuda::device_count() - 1;
  {
    cuda::DeviceGuard g(last);
    EXPECT_EQ(cuda::current_device(), last);
  }
  EXPECT_EQ(cuda::current_device(), 0);
  cuda::synchronize();
  cuda::synchronize(last);
  EXPECT_EQ(cuda::current_device(), 0);
}

TEST(CudaRuntime, TensorsCarryTheResolvedDeviceIndex) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  cuda::set_device(0);
  Tensor t = native::empty({3}, TensorOptions().device(Device(kCUDA)));
  EXPECT_EQ(t.device().index(), 0);
  EXPECT_EQ(t.device().str(), "cuda:0");
  Tensor e = native::empty({0, 5}, TensorOptions().device(Device(kCUDA)));
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(e.data_ptr(), nullptr);
  EXPECT_EQ(values(e).size(), 0u);
}

// ---- streams and events ----

TEST(CudaStreams, DefaultIsTheLegacyStreamAndCurrentIsPerThread) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  const cuda::Stream def = cuda::getDefaultCUDAStream();
  EXPECT_EQ(def.stream(), nullptr);
  EXPECT_EQ(def.device_index(), cuda::current_device());
  EXPECT_EQ(cuda::getCurrentCUDAStream(), def);
  const cuda::Stream s = cuda::getStreamFromPool();
  EXPECT_NE(s, def);
  cuda::setCurrentCUDAStream(s);
  EXPECT_EQ(cuda::getCurrentCUDAStream(), s);
  cuda::Stream other_thread = def;
  std::thread([&] { other_thread = cuda::getCurrentCUDAStream(0); }).join();
  EXPECT_EQ(other_thread, def);  // a new thread starts on the default stream
  cuda::setCurrentCUDAStream(def);
  EXPECT_EQ(cuda::getCurrentCUDAStream(), def);
}

TEST(CudaStreams, PoolHandsOutAFewStreamsRoundRobin) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  std::vector<cuda::Stream> got;
  for (int i = 0; i < 64; ++i) got.push_back(cuda::getStreamFromPool());
  for (const auto& s : got) {
    EXPECT_NE(s.stream(), nullptr);
    EXPECT_EQ(s.device_index(), cuda::current_device());
  }
  // A small pool: streams repeat, periodically.
  size_t period = 1;
  while (period < got.size() && got[period] != got[0]) ++period;
  ASSERT_LT(period, got.size());
  for (size_t i = period; i < got.size(); ++i) EXPECT_EQ(got[i], got[i - period]);
  const cuda::Stream high = cuda::getStreamFromPool(true);
  for (const auto& s : got) EXPECT_NE(s, high);
}

TEST(CudaStreams, StreamGuardSetsAndRestores) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  const cuda::Stream def = cuda::getCurrentCUDAStream();
  const cuda::Stream s = cuda::getStreamFromPool();
  {
    cuda::StreamGuard g(s);
    EXPECT_EQ(cuda::getCurrentCUDAStream(), s);
    // Kernels and copies go to the current stream; copy() to the CPU
    // synchronises that stream, so the values are there.
    Tensor x = native::full({1000}, 2.5, TensorOptions().dtype(kFloat32).device(cuda0()));
    EXPECT_EQ(values(x), std::vector<double>(1000, 2.5));
    EXPECT_TRUE(s.query());
  }
  EXPECT_EQ(cuda::getCurrentCUDAStream(), def);
}

TEST(CudaEvents, RecordQuerySynchronizeAndTime) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  cuda::Event e;
  EXPECT_FALSE(e.recorded());
  EXPECT_TRUE(e.query());  // never recorded: nothing to wait for
  e.record();
  EXPECT_TRUE(e.recorded());
  e.synchronize();
  EXPECT_TRUE(e.query());

  cuda::Event start(true), end(true);
  start.record();
  Tensor x = native::full({1 << 22}, 1.0, TensorOptions().dtype(kFloat32).device(cuda0()));
  end.record();
  EXPECT_GE(start.elapsed_time(end), 0.f);
  EXPECT_KILN_ERROR(e.elapsed_time(end), "enable_timing");
  cuda::Event unrecorded(true);
  EXPECT_KILN_ERROR(start.elapsed_time(unrecorded), "recorded");

  cuda::Event moved = std::move(start);
  EXPECT_TRUE(moved.recorded());
  EXPECT_FALSE(start.recorded());  // NOLINT(bugprone-use-after-move): moved-from is empty
}

TEST(CudaEvents, BlockOrdersWorkAcrossStreams) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  const cuda::Stream s1 = cuda::getStreamFromPool(), s2 = cuda::getStreamFromPool(true);
  Tensor x = native::empty({1 << 22}, TensorOptions().dtype(kFloat32).device(cuda0()));
  Tensor y = native::empty({1 << 22}, TensorOptions().dtype(kFloat32).device(cuda0()));
  cuda::Event written;
  {
    cuda::StreamGuard g(s1);
    backend(kCUDA).fill(x, 3.0);
    written.record(s1);
  }
  written.block(s2);
  {
    cuda::StreamGuard g(s2);
    backend(kCUDA).copy(x, y, false);  // device to device: asynchronous on s2
    cuda::record_stream(x.storage(), s2);
  }
  s2.synchronize();
  EXPECT_EQ(values(y), std::vector<double>(1 << 22, 3.0));
}

// ---- transfers ----

TEST(CudaCopy, RoundTripsEveryDtype) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  for (DType dt : kAllDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = host_input({5, 37}, dt, dt != kUInt8);
    Tensor d = to_cuda(x);
    EXPECT_TRUE(d.is_cuda());
    EXPECT_EQ(d.dtype(), dt);
    EXPECT_TRUE(same_values(to_cpu(d), x));
    EXPECT_TRUE(same_values(to_cpu(native::clone(d)), x));  // device to device
  }
}

TEST(CudaCopy, ConvertsEveryDtypePairAsTheCpu) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  for (DType from : kAllDTypes) {
    for (DType to : kAllDTypes) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to));
      Tensor x = host_input({3, 41}, from, from != kUInt8 && to != kUInt8);
      Tensor expected = native::to(x, to);  // the CPU backend's conversion
      Tensor d = to_cuda(x);
      // On the device.
      EXPECT_TRUE(same_values(native::to(d, to), expected));
      // Host to device with conversion.
      Tensor h2d = native::empty({3, 41}, TensorOptions().dtype(to).device(cuda0()));
      native::copy_(h2d, x);
      EXPECT_TRUE(same_values(h2d, expected));
      // Device to host with conversion.
      Tensor d2h = native::empty({3, 41}, TensorOptions().dtype(to));
      native::copy_(d2h, d);
      EXPECT_TRUE(same_values(d2h, expected));
    }
  }
}

TEST(CudaCopy, ConversionEdgeCases) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  // Closed forms: truncation toward zero, "!= 0" for bool, NaN and inf survive.
  Tensor f = to_cuda(make({6}, {2.7, -2.7, 0.0, 0.25, kiln::testing::kInf, kiln::testing::kNaN}, kFloat32));
  EXPECT_EQ(values(native::to(native::narrow(f, 0, 0, 4), kInt32)), (std::vector<double>{2, -2, 0, 0}));
  EXPECT_EQ(values(native::to(native::narrow(f, 0, 0, 5), kBool)), (std::vector<double>{1, 1, 0, 1, 1}));
  auto h = values(native::to(f, kFloat16));
  EXPECT_EQ(h[4], kiln::testing::kInf);
  EXPECT_TRUE(std::isnan(h[5]));
  // float64 -> 16-bit rounds through float32 (twice), as the CPU and torch:
  // 1 + 2^-11 + 2^-40 is just above the midpoint between 1 and the next
  // half, but float32 drops the 2^-40 and the tie then rounds to even.
  const double x = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  const double y = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40);
  Tensor d = to_cuda(make({2}, {x, y}, kFloat64));
  EXPECT_EQ(values(native::to(d, kFloat16))[0], 1.0);
  EXPECT_EQ(values(native::to(d, kBFloat16))[1], 1.0);
  EXPECT_TRUE(same_values(native::to(d, kFloat16), native::to(to_cpu(d), kFloat16)));
}

TEST(CudaCopy, StridedAndBroadcastSources) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  for (DType dt : {kFloat32, kFloat16, kInt64, kBool}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = host_input({6, 70, 45}, dt, true);
    Tensor d = to_cuda(x);
    std::vector<std::pair<Tensor, Tensor>> cases = {
        {native::transpose(x, 1, 2), native::transpose(d, 1, 2)},       // tiled transpose path
        {native::transpose(x, 0, 2), native::transpose(d, 0, 2)},       // general strides
        {native::slice(x, 1, 3, 60, 4), native::slice(d, 1, 3, 60, 4)},  // step
        {native::expand(native::slice(x, 1, 2, 3), {6, 9, 45}), native::expand(native::slice(d, 1, 2, 3), {6, 9, 45})},
        {native::expand(native::select(native::select(x, 0, 1), 0, 2), {4, 45}),
         native::expand(native::select(native::select(d, 0, 1), 0, 2), {4, 45})},
        {native::expand(native::select(native::select(native::select(x, 0, 1), 0, 2), 0, 17), {5, 3}),
         native::expand(native::select(native::select(native::select(d, 0, 1), 0, 2), 0, 17), {5, 3})},
    };
    for (auto& [hx, dx] : cases) {
      Tensor expected = native::contiguous(hx);
      EXPECT_TRUE(same_values(native::contiguous(dx), expected));  // on the device
      EXPECT_TRUE(same_values(to_cpu(dx), expected));              // device to host
      EXPECT_TRUE(same_values(to_cuda(hx), expected));             // host to device
      // Into strided destinations on either side.
      Tensor dst_dev = native::transpose(native::empty({hx.size(-1), hx.size(-2)}, TensorOptions().dtype(kFloat64).device(cuda0())), 0, 1);
      if (hx.dim() == 2) {
        native::copy_(dst_dev, hx);
        EXPECT_TRUE(same_values(dst_dev, native::to(expected, kFloat64)));
        Tensor dst_host = native::transpose(native::empty({hx.size(-1), hx.size(-2)}, TensorOptions().dtype(kFloat64)), 0, 1);
        native::copy_(dst_host, dx);
        EXPECT_TRUE(same_values(dst_host, native::to(expected, kFloat64)));
      }
    }
  }
}

TEST(CudaCopy, NonBlockingWithPinnedMemory) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  Tensor x = host_input({1000, 33}, kFloat32, true);
  Tensor pinned = cuda::pin_memory(x);
  EXPECT_TRUE(cuda::is_pinned(pinned));
  EXPECT_FALSE(cuda::is_pinned(x));
  EXPECT_TRUE(cuda::pin_memory(pinned).is_same(pinned));
  EXPECT_TRUE(same_values(pinned, x));

  Tensor d = to_cuda(pinned, /*non_blocking=*/true);
  Tensor back = cuda::empty_pinned({1000, 33}, kFloat32);
  native::copy_(back, d, /*non_blocking=*/true);
  cuda::synchronize();
  EXPECT_TRUE(same_values(back, x));

  // Pageable memory with non_blocking: staged through pinned memory, so the
  // source may change as soon as the call returns.
  Tensor src = native::clone(x);
  Tensor d2 = to_cuda(src, /*non_blocking=*/true);
  backend(kCPU).fill(src, 0.0);
  cuda::synchronize();
  EXPECT_TRUE(same_values(to_cpu(d2), x));

  // Strided pageable source and converting destination, asynchronously.
  Tensor d3 = native::empty({33, 1000}, TensorOptions().dtype(kFloat64).device(cuda0()));
  native::copy_(d3, native::transpose(x, 0, 1), /*non_blocking=*/true);
  cuda::synchronize();
  EXPECT_TRUE(same_values(d3, native::to(native::contiguous(native::transpose(x, 0, 1)), kFloat64)));
  EXPECT_GT(cuda::host_memory_stats().num_allocs, 0);
}

TEST(CudaCopy, BetweenDevices) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  if (cuda::device_count() < 2) GTEST_SKIP() << "needs two CUDA devices";
  const Device dev1(kCUDA, 1);
  Tensor x = host_input({40, 50}, kFloat32, true);
  Tensor d0 = to_cuda(x);
  Tensor d1 = native::to(d0, dev1);
  EXPECT_EQ(d1.device(), dev1);
  EXPECT_TRUE(same_values(d1, x));
  // With a conversion and a strided source and destination.
  Tensor t = native::transpose(native::empty({50, 40}, TensorOptions().dtype(kFloat64).device(dev1)), 0, 1);
  native::copy_(t, native::transpose(native::transpose(d0, 0, 1), 0, 1));
  EXPECT_TRUE(same_values(t, native::to(x, kFloat64)));
  Tensor back = native::empty({50, 40}, TensorOptions().dtype(kFloat16).device(cuda0()));
  native::copy_(back, native::transpose(d1, 0, 1));
  EXPECT_TRUE(same_values(back, native::to(native::contiguous(native::transpose(x, 0, 1)), kFloat16)));
}

// ---- fills and counting factories ----

TEST(CudaFill, FillsEveryDtypeAndLayoutAsTheCpu) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  for (DType dt : kAllDTypes) {
    for (const Scalar& v : {Scalar(2.7), Scalar(int64_t{-3}), Scalar(true), Scalar(0.0), Scalar(-0.0), Scalar(1e10)}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " fill " + std::to_string(v.toDouble()));
      if (dt == kUInt8 && v.toDouble() < 0) continue;
      if (!is_floating_point(dt) && std::fabs(v.toDouble()) > 1e9) continue;  // out of range: undefined
      Tensor cpu = native::full({7, 9}, v, TensorOptions().dtype(dt));
      Tensor dev = native::full({7, 9}, v, TensorOptions().dtype(dt).device(cuda0()));
      EXPECT_TRUE(same_values(dev, cpu));
      // Strided destinations: only the viewed elements change.
      Tensor base_cpu = native::zeros({7, 9}, TensorOptions().dtype(dt));
      Tensor base_dev = native::zeros({7, 9}, TensorOptions().dtype(dt).device(cuda0()));
      backend(kCPU).fill(native::slice(native::transpose(base_cpu, 0, 1), 0, 1, 8, 3), v);
      backend(kCUDA).fill(native::slice(native::transpose(base_dev, 0, 1), 0, 1, 8, 3), v);
      EXPECT_TRUE(same_values(base_dev, base_cpu));
    }
  }
  // -0.0 keeps its sign (not a memset of zero bits).
  Tensor nz = native::full({4}, -0.0, TensorOptions().dtype(kFloat32).device(cuda0()));
  EXPECT_TRUE(std::signbit(values(nz)[0]));
}

TEST(CudaFill, ArangeMatchesTheCpuBitForBit) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  for (DType dt : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    EXPECT_TRUE(same_values(native::arange(-3.0, 97.3, 0.1, TensorOptions().dtype(dt).device(cuda0())),
                            native::arange(-3.0, 97.3, 0.1, TensorOptions().dtype(dt))));
  }
  for (DType dt : {kInt64, kInt32, kUInt8}) {
    SCOPED_TRACE(dtype_name(dt));
    EXPECT_TRUE(same_values(native::arange(2, 200, 3, TensorOptions().dtype(dt).device(cuda0())),
                            native::arange(2, 200, 3, TensorOptions().dtype(dt))));
  }
  EXPECT_EQ(values(native::arange(5, TensorOptions().device(cuda0()))), (std::vector<double>{0, 1, 2, 3, 4}));
}

TEST(CudaFill, LinspaceMatchesTheCpuBitForBit) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  for (DType dt : kAllDTypes) {
    for (int64_t steps : {1, 2, 7, 1000, 1001}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " steps " + std::to_string(steps));
      const bool unsigned_dt = dt == kUInt8 || dt == kBool;
      const double a = unsigned_dt ? 0.0 : -3.3, b = unsigned_dt ? 1.0 : 7.9;
      EXPECT_TRUE(same_values(native::linspace(a, b, steps, TensorOptions().dtype(dt).device(cuda0())),
                              native::linspace(a, b, steps, TensorOptions().dtype(dt))));
    }
  }
  // Closed form: the ends are exact.
  auto v = values(native::linspace(-1.0, 1.0, 5, TensorOptions().dtype(kFloat32).device(cuda0())));
  EXPECT_EQ(v, (std::vector<double>{-1.0, -0.5, 0.0, 0.5, 1.0}));
}

// ---- the caching allocator on a device ----

TEST(CudaAllocator, StatsFollowAllocationsAndFrees) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  cuda::synchronize();
  const size_t before = cuda::memory_allocated();
  cuda::reset_peak_memory_stats();
  {
    Tensor t = native::empty({1000}, TensorOptions().dtype(kFloat32).device(cuda0()));  // 4000 -> 4096 bytes
    EXPECT_EQ(cuda::memory_allocated(), before + 4096);
    EXPECT_GE(cuda::memory_reserved(), cuda::memory_allocated());
    Tensor big = native::empty({3 * MiB}, TensorOptions().dtype(kUInt8).device(cuda0()));
    EXPECT_EQ(cuda::memory_allocated(), before + 4096 + size_t{3} * MiB);
  }
  EXPECT_EQ(cuda::memory_allocated(), before);
  EXPECT_EQ(cuda::max_memory_allocated(), before + 4096 + size_t{3} * MiB);
  cuda::reset_peak_memory_stats();
  EXPECT_EQ(cuda::max_memory_allocated(), before);
  const cuda::MemoryStats st = cuda::memory_stats();
  EXPECT_EQ(st.allocated_bytes, before);
  EXPECT_GE(st.num_raw_mallocs, st.segments);
}

TEST(CudaAllocator, SteadyStateLoopCallsCudaMallocNever) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  auto step = [] {
    Tensor a = native::empty({256, 256}, TensorOptions().dtype(kFloat32).device(cuda0()));
    Tensor b = native::full({7}, 1.0, TensorOptions().dtype(kFloat64).device(cuda0()));
    Tensor c = native::empty({3 * MiB}, TensorOptions().dtype(kFloat16).device(cuda0()));
    backend(kCUDA).copy(a, native::empty_like(a), false);
    Tensor d = native::to(b, Device(kCPU));
  };
  step();
  const int64_t mallocs = cuda::memory_stats().num_raw_mallocs;
  for (int i = 0; i < 100; ++i) step();
  EXPECT_EQ(cuda::memory_stats().num_raw_mallocs, mallocs);
}

TEST(CudaAllocator, ImpossibleRequestGivesTorchStyleOutOfMemory) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  const int64_t ooms = cuda::memory_stats().num_ooms;
  const int dev = cuda::current_device();
  EXPECT_KILN_ERROR(native::empty({int64_t{1} << 45}, TensorOptions().dtype(kFloat32).device(cuda0())),
                    "CUDA out of memory. Tried to allocate 131072.00 GiB");
  try {
    native::empty({int64_t{1} << 45}, TensorOptions().dtype(kFloat32).device(cuda0()));
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("(GPU " + std::to_string(dev) + "; "), std::string::npos) << msg;
    EXPECT_NE(msg.find(" total capacity; "), std::string::npos) << msg;
    EXPECT_NE(msg.find(" already allocated; "), std::string::npos) << msg;
    EXPECT_NE(msg.find(" reserved in total by Kiln)"), std::string::npos) << msg;
  }
  EXPECT_EQ(cuda::memory_stats().num_ooms, ooms + 2);
  // Still usable.
  EXPECT_EQ(values(native::full({3}, 1.5, TensorOptions().device(cuda0()))), (std::vector<double>{1.5, 1.5, 1.5}));
}

TEST(CudaAllocator, EmptyCacheReturnsUnusedSegments) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  {
    Tensor t = native::empty({int64_t{100} << 20}, TensorOptions().dtype(kUInt8).device(cuda0()));
    EXPECT_GE(cuda::memory_reserved(), size_t{100} << 20);
  }
  const size_t cached = cuda::memory_reserved();
  cuda::empty_cache();
  EXPECT_LE(cuda::memory_reserved() + (size_t{100} << 20), cached);
  EXPECT_GE(cuda::memory_stats().num_raw_frees, 1);
}

TEST(CudaAllocator, RecordStreamDefersReuseUntilThatStreamIsDone) {
  if (!kiln::has_backend(kiln::kCUDA)) GTEST_SKIP() << "no CUDA device";
  // 12 MiB blocks get segments of their own; with the cache emptied, the
  // only free block of that size is the one this test frees.
  cuda::synchronize();
  cuda::empty_cache();
  const cuda::Stream side = cuda::getStreamFromPool();
  const auto opts = TensorOptions().dtype(kFloat32).device(cuda0());
  void* p = nullptr;
  {
    Tensor x = native::empty({3 * MiB}, opts);
    p = x.data_ptr();
    cuda::record_stream(x.storage(), side);
  }
  cuda::synchronize();  // side's event has completed: the block is reusable
  Tensor y = native::empty({3 * MiB}, opts);
  EXPECT_EQ(y.data_ptr(), p);
  // Without record_stream, a freed block is reused at once on its stream.
  y = Tensor();
  Tensor z = native::empty({3 * MiB}, opts);
  EXPECT_EQ(z.data_ptr(), p);
}
