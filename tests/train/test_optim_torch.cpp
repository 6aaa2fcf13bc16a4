// A handful of numbers from torch.optim itself (the full fixture files come
// from tools/fixtures later). Obtained with PyTorch 2.15.0 (CPU capability
// AVX512) running:
//
//   P0 = [0.5, -1.25, 2.0, 0.1, -0.3]
//   G = [[0.1, -0.2, 0.3, -0.4, 0.5], [-0.15, 0.25, 0.05, 0.6, -0.35],
//        [0.2, 0.1, -0.3, 0.45, 0.05]]
//   p = torch.tensor(P0, dtype=dtype, requires_grad=True); opt = make([p])
//   for g in G: p.grad = torch.tensor(g, dtype=dtype); opt.step()
//   # print p's bits: struct.pack("<f") for float32, float.hex for float64
//
// with the optimizers named in each test. Every value must match to the bit.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <bit>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "test_util.h"

using namespace kiln;
using namespace kiln::optim;
using kiln::testing::make;

namespace {

const std::vector<double> kP0 = {0.5, -1.25, 2.0, 0.1, -0.3};
const std::vector<std::vector<double>> kGrads = {
    {0.1, -0.2, 0.3, -0.4, 0.5}, {-0.15, 0.25, 0.05, 0.6, -0.35}, {0.2, 0.1, -0.3, 0.45, 0.05}};

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

Tensor run(const Factory& make_opt, DType dtype) {
  Tensor p = make({5}, kP0, dtype).requires_grad_(true);
  auto opt = make_opt({p});
  for (const auto& g : kGrads) {
    p.set_grad(make({5}, g, dtype));
    opt->step();
  }
  return p;
}

void expect_bits_f32(const Factory& f, const std::vector<uint32_t>& bits) {
  Tensor p = run(f, kFloat32);
  const float* v = p.data_ptr<float>();
  for (size_t i = 0; i < bits.size(); ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(v[i]), bits[i]) << "element " << i << ": " << v[i] << " vs torch "
                                                      << std::bit_cast<float>(bits[i]);
}

void expect_bits_f64(const Factory& f, const std::vector<double>& expected) {
  Tensor p = run(f, kFloat64);
  const double* v = p.data_ptr<double>();
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(v[i], expected[i]) << "element " << i;
}

}  // namespace

// torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
TEST(OptimTorch, SGDMomentumDampeningWeightDecay) {
  Factory f = [](std::vector<Tensor> ps) {
    return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
  };
  expect_bits_f32(f, {0x3ef4b12a, 0xbf9ed790, 0x3ff69ba7, 0x3d847715, 0xbec1bf4e});
  expect_bits_f64(f, {0x1.e9625421c40bcp-2, -0x1.3daf1f93fe80fp+0, 0x1.ed374d2fc6dfbp+0, 0x1.08ee29d4ac2cfp-4,
                      -0x1.837e9baf9ad5fp-2});
}

// torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, maximize=True)
TEST(OptimTorch, SGDNesterovMaximize) {
  Factory f = [](std::vector<Tensor> ps) {
    return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.05, .momentum = 0.8, .nesterov = true, .maximize = true});
  };
  expect_bits_f32(f, {0x3f03b3a6, 0xbf9eb8f9, 0x40017f0f, 0x3e1e5f31, 0xbe875f71});
  expect_bits_f64(f, {0x1.07674d1633483p-1, -0x1.3d71f36262cbbp+0, 0x1.02fe1da7b0b39p+1, 0x1.3cbe61cffeb07p-3,
                      -0x1.0ebedfa43fe5dp-2});
}

// torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, amsgrad=True)
TEST(OptimTorch, AdamWeightDecayAmsgrad) {
  Factory f = [](std::vector<Tensor> ps) {
    return std::make_unique<Adam>(
        ps, AdamOptions{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.1, .amsgrad = true});
  };
  expect_bits_f32(f, {0x3ef75e5f, 0xbf9dfd50, 0x3ffcddea, 0x3dcedad6, 0xbe9ec6a4});
  expect_bits_f64(f, {0x1.eebcbcac88c0ep-2, -0x1.3bfaa00f42377p+0, 0x1.f9bbd311f66d2p+0, 0x1.9db5ad2fe6044p-4,
                      -0x1.3d8d44c639dc0p-2});
}

// torch.optim.Adam(ps, lr=0.02)
TEST(OptimTorch, AdamDefaults) {
  Factory f = [](std::vector<Tensor> ps) { return std::make_unique<Adam>(ps, AdamOptions{.lr = 0.02}); };
  expect_bits_f32(f, {0x3ef4bf9a, 0xbf9ea6df, 0x3ffb7b0c, 0x3dd71a52, 0xbea695ef});
  expect_bits_f64(f, {0x1.e97f356222965p-2, -0x1.3d4dbdd8e1a63p+0, 0x1.f6f616be9b8f3p+0, 0x1.ae34a297e58bdp-4,
                      -0x1.4d2bdc3b0e061p-2});
}

// torch.optim.AdamW(ps, lr=0.01, betas=(0.3, 0.99), weight_decay=0.05)
TEST(OptimTorch, AdamWSmallBeta1) {
  Factory f = [](std::vector<Tensor> ps) {
    return std::make_unique<AdamW>(ps, AdamWOptions{.lr = 0.01, .beta1 = 0.3, .beta2 = 0.99, .weight_decay = 0.05});
  };
  expect_bits_f32(f, {0x3efa5356, 0xbfa00df2, 0x3ffea895, 0x3dc050cb, 0xbe9c8de0});
  expect_bits_f64(f, {0x1.f4a6ae3178ab3p-2, -0x1.401be62bb806dp+0, 0x1.fd512ced06dd1p+0, 0x1.80a1987070f3cp-4,
                      -0x1.391bc2205eafap-2});
}
