// The CUDA multi-tensor optimizer kernels (cuda/src/kernels/optim.cu) on
// lists longer than one launch holds (more than 30 tensors; a tensor of more
// than 320 chunks of 65536 elements), in every floating dtype, must give
// the CPU kernels' values bit for bit: both run the same op sequence with
// the same roundings.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <vector>

#include "test_util.h"

using namespace kiln;

namespace {

Tensor random(IntArrayRef sizes, DType dt, uint64_t seed, double scale = 1.0) {
  Generator g(seed);
  return native::to(native::mul(native::randn(sizes, TensorOptions().dtype(kFloat32), &g), Scalar(scale)), dt);
}

// Bitwise equal values (the updates are finite here), CUDA result against CPU.
void expect_identical(const Tensor& cuda, const Tensor& cpu, const std::string& what) {
  const Tensor c = native::to(cuda, Device(kCPU));
  ASSERT_TRUE(c.sizes().equals(cpu.sizes())) << what;
  const Tensor diff = native::binary(BinaryOp::Ne, c, cpu);
  EXPECT_FALSE(native::any(diff).item<bool>()) << what << ": values differ";
}

std::vector<Tensor> to_cuda(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.defined() ? native::to(t, Device(kCUDA)) : Tensor());
  return out;
}

std::vector<Tensor> clones(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.defined() ? native::clone(t) : Tensor());
  return out;
}

// 75 tensors, from 1 element to several chunks, one of them transposed.
std::vector<std::vector<int64_t>> many_shapes() {
  std::vector<std::vector<int64_t>> s;
  for (int i = 0; i < 75; ++i) s.push_back({1 + (i * 977) % 3001});
  s[10] = {3, 70001};  // 4 chunks
  s[40] = {65536};     // exactly one chunk
  s[41] = {65537};     // one element into a second
  s[3] = {40, 30};     // the parameter is a transposed view (see below)
  return s;
}

}  // namespace

TEST(CudaOptimLists, SgdAndAdamOverManyTensorsMatchTheCpuBitwise) {
  if (!has_backend(kCUDA)) GTEST_SKIP() << "no CUDA device";
  const auto shapes = many_shapes();
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    std::vector<Tensor> p, b, m, v, vmax;
    for (size_t i = 0; i < shapes.size(); ++i) {
      p.push_back(random(shapes[i], dt, 1 + i));
      b.push_back(native::zeros(shapes[i], TensorOptions().dtype(dt)));
      m.push_back(random(shapes[i], dt, 100 + i, 0.1));
      v.push_back(native::mul(random(shapes[i], dt, 200 + i, 0.1), random(shapes[i], dt, 200 + i, 0.1)));
      vmax.push_back(native::zeros(shapes[i], TensorOptions().dtype(dt)));
    }
    std::vector<Tensor> cp = clones(p), cb = clones(b), cm = clones(m), cv = clones(v), cx = clones(vmax);
    std::vector<Tensor> gp = to_cuda(p), gb = to_cuda(b), gm = to_cuda(m), gv = to_cuda(v), gx = to_cuda(vmax);
    // Parameter 3 is a transposed (strided) view on both devices.
    const Tensor base3 = random({30, 40}, dt, 4);
    cp[3] = native::t(native::clone(base3));
    gp[3] = native::t(native::to(base3, Device(kCUDA)));
    ASSERT_FALSE(gp[3].is_contiguous());
    for (int step = 1; step <= 3; ++step) {
      std::vector<Tensor> grads;
      for (size_t i = 0; i < shapes.size(); ++i) grads.push_back(random(cp[i].sizes(), dt, 1000 * step + i, 0.1));
      const std::vector<Tensor> ggrads = to_cuda(grads);
      const SGDStep sgd{0.1, 0.9, 0.1, 1e-2, false, false, step == 1};
      backend(kCPU).sgd_update(cp, grads, cb, sgd);
      backend(kCUDA).sgd_update(gp, ggrads, gb, sgd);
      const AdamStep adam{1e-2, 0.9, 0.999, 1e-8, 1e-2, true, false, step % 2 == 0, static_cast<double>(step)};
      backend(kCPU).adam_update(cp, grads, cm, cv, cx, adam);
      backend(kCUDA).adam_update(gp, ggrads, gm, gv, gx, adam);
    }
    for (size_t i = 0; i < shapes.size(); ++i) {
      const std::string what = std::string(dtype_name(dt)) + " tensor " + std::to_string(i);
      expect_identical(gp[i], cp[i], what + " param");
      expect_identical(gb[i], cb[i], what + " momentum_buffer");
      expect_identical(gm[i], cm[i], what + " exp_avg");
      expect_identical(gv[i], cv[i], what + " exp_avg_sq");
      expect_identical(gx[i], cx[i], what + " max_exp_avg_sq");
    }
  }
}

TEST(CudaOptimLists, ATensorLongerThanOneLaunchMatchesTheCpuBitwise) {
  if (!has_backend(kCUDA)) GTEST_SKIP() << "no CUDA device";
  // 330 chunks: more blocks than one launch's table, after two small tensors.
  const std::vector<std::vector<int64_t>> shapes = {{5}, {70000}, {330 * 65536 + 7}};
  std::vector<Tensor> p, g;
  for (size_t i = 0; i < shapes.size(); ++i) {
    p.push_back(random(shapes[i], kFloat32, 7 + i));
    g.push_back(random(shapes[i], kFloat32, 70 + i));
  }
  std::vector<Tensor> cp = clones(p);
  std::vector<Tensor> gp = to_cuda(p), gg = to_cuda(g);
  const SGDStep s{0.25, 0.0, 0.0, 1e-2, false, false, false};
  backend(kCPU).sgd_update(cp, g, std::vector<Tensor>(3), s);
  backend(kCUDA).sgd_update(gp, gg, std::vector<Tensor>(3), s);
  for (size_t i = 0; i < shapes.size(); ++i) expect_identical(gp[i], cp[i], "tensor " + std::to_string(i));
}
