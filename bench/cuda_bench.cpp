// Kiln's CUDA backend in one table, measured as bench/cuda_torch.py measures
// PyTorch on the same GPU (bench/cuda_run.sh prints both with ratios):
//   (a) matmul TFLOP/s at 4096^3 in bf16, TF32 and f32: kiln::matmul (the
//       whole op: checks, allocation, dispatch) and the backend's cuBLASLt
//       call kiln::cuda::matmul_lt on a preallocated output;
//   (b) bandwidth GB/s of add/mul/gelu, softmax and layer_norm (bytes read
//       + written per call) beside cudaMemcpyAsync device-to-device;
//   (c) conv2d forward and backward (input + weight gradients) on BiT-R50
//       shapes, ms per call, f32 (TF32 off) and bf16;
//   (d) the caching allocator: cudaMalloc calls over 10 steady-state
//       training steps of a small MLP with AdamW, and the step's time.
// Times are on the GPU's timeline (CUDA events on the current stream): the
// median over samples after a warm-up, each sample long enough (~2 ms) that
// the events' resolution does not matter.
//
//   kiln_bench_cuda [--quick] [--tsv]
//
// --tsv prints "name<TAB>value<TAB>unit" rows only (what cuda_run.sh reads).
// Without a GPU the program says so and exits 0.
#include <cuda_runtime_api.h>
#include <kiln/kiln.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/matmul_lt.h"  // cuda/src: the backend's cuBLASLt call
#include "kiln/cuda/caching_allocator.h"
#include "kiln/cuda/check.h"
#include "kiln/cuda/matmul.h"
#include "kiln/cuda/runtime.h"
#include "kiln/cuda/stream.h"

namespace {

using namespace kiln;
namespace F = kiln::nn::functional;

struct Config {
  bool quick = false;
  bool tsv = false;
};
Config cfg;

void row(const std::string& name, double value, const char* unit) {
  if (cfg.tsv) {
    std::printf("%s\t%.6g\t%s\n", name.c_str(), value, unit);
  } else {
    std::printf("%-36s %14.3f  %s\n", name.c_str(), value, unit);
  }
  std::fflush(stdout);
}

// Milliseconds per call of f on the GPU timeline: the median of `samples`
// samples, each timing enough back-to-back calls to last about 2 ms.
double median_ms(const std::function<void()>& f, int warmup = 3) {
  const int samples = cfg.quick ? 5 : 15;
  for (int i = 0; i < warmup; ++i) f();
  const cuda::Stream stream = cuda::getCurrentCUDAStream();
  cuda::Event start(true), stop(true);
  start.record(stream);
  f();
  stop.record(stream);
  stop.synchronize();
  const double one = std::max(1e-3, static_cast<double>(start.elapsed_time(stop)));
  const int reps = std::clamp(static_cast<int>(2.0 / one), 1, 1000);
  std::vector<double> ms;
  for (int s = 0; s < samples; ++s) {
    start.record(stream);
    for (int r = 0; r < reps; ++r) f();
    stop.record(stream);
    stop.synchronize();
    ms.push_back(static_cast<double>(start.elapsed_time(stop)) / reps);
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

TensorOptions on_gpu(DType dt) { return TensorOptions().dtype(dt).device(Device(kCUDA)); }

// ---- (a) matmul ----

void matmul_rows() {
  const int64_t n = 4096;
  const double flop = 2.0 * n * n * n;
  auto tflops = [&](double ms) { return flop / (ms * 1e-3) / 1e12; };
  struct Mode {
    const char* name;
    DType dt;
    bool tf32;
  };
  for (const Mode& m : {Mode{"bf16", kBFloat16, false}, Mode{"tf32", kFloat32, true}, Mode{"f32", kFloat32, false}}) {
    cuda::set_allow_tf32(m.tf32);
    const Tensor a = kiln::randn({n, n}, on_gpu(m.dt)), b = kiln::randn({n, n}, on_gpu(m.dt));
    const std::string size = "_4096";  // n
    row(std::string("matmul_") + m.name + size, tflops(median_ms([&] { kiln::matmul(a, b); })), "TFLOP/s");
    const Tensor a3 = native::unsqueeze(a, 0), b3 = native::unsqueeze(b, 0);
    const Tensor out = kiln::empty({1, n, n}, on_gpu(m.dt));
    row(std::string("matmul_lt_") + m.name + size,
        tflops(median_ms([&] { cuda::matmul_lt(a3, b3, out, 1.0, 0.0); })), "TFLOP/s");
  }
  cuda::set_allow_tf32(false);
}

// ---- (b) bandwidth ----

void bandwidth_rows() {
  const int64_t n = int64_t{1} << 26;  // 64M elements
  const int64_t rows_ = int64_t{1} << 16, cols = 1024;
  auto gbs = [](double bytes, double ms) { return bytes / (ms * 1e-3) / 1e9; };
  {
    const Tensor src = kiln::randn({n}, on_gpu(kFloat32)), dst = kiln::empty({n}, on_gpu(kFloat32));
    const size_t bytes = static_cast<size_t>(n) * 4;
    const cudaStream_t s = cuda::getCurrentCUDAStream();
    const double ms = median_ms([&] {
      KILN_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), bytes, cudaMemcpyDeviceToDevice, s));
    });
    row("memcpy_d2d_256MB", gbs(2.0 * static_cast<double>(bytes), ms), "GB/s");
  }
  for (DType dt : {kFloat32, kBFloat16}) {
    const std::string suffix = std::string(dt == kFloat32 ? "_f32" : "_bf16") + "_64M";
    const double es = static_cast<double>(element_size(dt));
    const Tensor a = kiln::randn({n}, on_gpu(dt)), b = kiln::randn({n}, on_gpu(dt));
    row("add" + suffix, gbs(3.0 * n * es, median_ms([&] { kiln::add(a, b); })), "GB/s");
    row("mul" + suffix, gbs(3.0 * n * es, median_ms([&] { kiln::mul(a, b); })), "GB/s");
    row("gelu" + suffix, gbs(2.0 * n * es, median_ms([&] { kiln::gelu(a); })), "GB/s");
    const Tensor x = kiln::randn({rows_, cols}, on_gpu(dt));
    const Tensor w = kiln::randn({cols}, on_gpu(kFloat32)), bias = kiln::randn({cols}, on_gpu(kFloat32));
    const Tensor wd = w.to(dt), bd = bias.to(dt);
    const std::string shape = std::string(dt == kFloat32 ? "_f32" : "_bf16") + "_65536x1024";
    row("softmax" + shape, gbs(2.0 * rows_ * cols * es, median_ms([&] { kiln::softmax(x, -1); })), "GB/s");
    row("layer_norm" + shape, gbs(2.0 * rows_ * cols * es, median_ms([&] { F::layer_norm(x, {cols}, wd, bd); })),
        "GB/s");
  }
}

// ---- (c) convolutions on BiT shapes ----

void conv_rows() {
  struct Shape {
    const char* name;
    int64_t n, cin, h, w, cout, k, stride, pad;
  };
  const std::vector<Shape> shapes = {
      {"conv_stem7x7s2_b32", 32, 3, 224, 224, 64, 7, 2, 3},
      {"conv_3x3_64_56_b32", 32, 64, 56, 56, 64, 3, 1, 1},
      {"conv_1x1_256to64_56_b32", 32, 256, 56, 56, 64, 1, 1, 0},
  };
  cuda::set_cudnn_allow_tf32(false);
  for (DType dt : {kFloat32, kBFloat16}) {
    const char* dn = dt == kFloat32 ? "_f32" : "_bf16";
    for (const Shape& s : shapes) {
      const Tensor x = kiln::randn({s.n, s.cin, s.h, s.w}, on_gpu(dt));
      const Tensor w = kiln::randn({s.cout, s.cin, s.k, s.k}, on_gpu(dt));
      const Conv2dParams p = native::conv2d_params({s.stride}, {s.pad}, {1}, 1);
      const Tensor y = native::conv2d(x, w, Tensor(), p);
      const Tensor gy = kiln::randn(y.sizes(), on_gpu(dt));
      row(std::string(s.name) + "_fwd" + dn, median_ms([&] { native::conv2d(x, w, Tensor(), p); }), "ms");
      row(std::string(s.name) + "_bwd" + dn, median_ms([&] {
            native::conv2d_backward_input(gy, w, x.sizes(), p);
            native::conv2d_backward_weight(gy, x, w.sizes(), p, false);
          }),
          "ms");
    }
  }
}

// ---- (d) allocator and a training step ----

void allocator_rows() {
  kiln::manual_seed(0);
  nn::Sequential model(nn::Linear(512, 2048), nn::GELU(), nn::Linear(2048, 512),
                       nn::LayerNorm(nn::LayerNormOptions({512})), nn::Linear(512, 10));
  model->to(Device(kCUDA));
  optim::AdamW opt(model->parameters(), optim::AdamWOptions{.lr = 1e-3});
  const Tensor x = kiln::randn({256, 512}, on_gpu(kFloat32));
  const Tensor y = kiln::randint(0, 10, {256}, on_gpu(kInt64));
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = F::cross_entropy(model(x), y);
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step();
  cuda::synchronize();
  const cuda::MemoryStats before = cuda::memory_stats();
  for (int i = 0; i < 10; ++i) step();
  cuda::synchronize();
  const cuda::MemoryStats after = cuda::memory_stats();
  row("cudamalloc_calls_10_steps", static_cast<double>(after.num_raw_mallocs - before.num_raw_mallocs), "count");
  row("allocations_per_step", static_cast<double>(after.num_allocs - before.num_allocs) / 10.0, "count");
  row("train_step_mlp_b256", median_ms(step), "ms");
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      cfg.quick = true;
    } else if (std::strcmp(argv[i], "--tsv") == 0) {
      cfg.tsv = true;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--tsv]\n", argv[0]);
      return 2;
    }
  }
  if (!kiln::has_backend(kiln::kCUDA)) {
    std::printf("kiln_bench_cuda: no CUDA device; nothing to measure\n");
    return 0;
  }
  if (!cfg.tsv) {
    std::printf("Kiln CUDA on %s\n", kiln::cuda::get_device_properties().name.c_str());
    std::printf("%-36s %14s  %s\n", "case", "value", "unit");
  }
  kiln::NoGradGuard no_grad;
  matmul_rows();
  bandwidth_rows();
  conv_rows();
  {
    kiln::EnableGradGuard grad;
    allocator_rows();
  }
  return 0;
}
