// Training on CUDA follows training on the CPU: the same model (built once
// per device from the same seed, the CUDA copy moved with Module::to), the
// same batches and the same optimizer give, step by step for 5 steps, the
// same losses (relative 1e-4) and at the end the same parameters and
// buffers (||cuda - cpu|| / ||cpu|| <= 1e-4 per tensor), in float32 with
// TF32 off. An MLP (Linear, ReLU, GELU, Dropout) and a small CNN (Conv2d,
// GroupNorm, BatchNorm2d, max and adaptive pooling), each with SGD
// (Nesterov momentum, weight decay) and AdamW.
#include <memory>

#include "cuda/parity_util.h"

namespace {

using namespace kiln;
using namespace kiln::testing::parity;
namespace F = kiln::nn::functional;

constexpr int kSteps = 5;
constexpr double kRel = 1e-4;

nn::Sequential make_mlp() {
  return nn::Sequential(nn::Linear(20, 32), nn::ReLU(), nn::Dropout(0.1), nn::Linear(32, 32), nn::GELU(),
                        nn::Linear(32, 5));
}

nn::Sequential make_cnn() {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1)), nn::GroupNorm(2, 8), nn::ReLU(),
                        nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                        nn::Conv2d(nn::Conv2dOptions(8, 16, 3).padding(1).bias(false)), nn::BatchNorm2d(16),
                        nn::ReLU(), nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})), nn::Flatten(),
                        nn::Linear(16, 4));
}

struct Batches {
  std::vector<Tensor> x, y;
};

Batches batches(uint64_t seed, std::vector<int64_t> x_shape, int64_t classes) {
  Generator g(seed);
  Batches b;
  for (int i = 0; i < kSteps; ++i) {
    b.x.push_back(randn(g, x_shape));
    b.y.push_back(randint(g, 0, classes, {x_shape[0]}));
  }
  return b;
}

enum class Opt { SgdNesterov, AdamW };

std::unique_ptr<optim::Optimizer> make_optimizer(Opt opt, std::vector<Tensor> params) {
  if (opt == Opt::SgdNesterov) {
    return std::make_unique<optim::SGD>(std::move(params),
                                        optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4, .nesterov = true});
  }
  return std::make_unique<optim::AdamW>(std::move(params), optim::AdamWOptions{.lr = 1e-2, .weight_decay = 1e-2});
}

// Trains `model` (already on `device`) and returns the losses.
std::vector<double> train(nn::Sequential& model, Device device, Opt opt, const Batches& data, uint64_t seed) {
  auto optimizer = make_optimizer(opt, model->parameters());
  kiln::manual_seed(seed);  // dropout draws the same masks on both devices
  std::vector<double> losses;
  for (int step = 0; step < kSteps; ++step) {
    const Tensor x = data.x[step].to(device), y = data.y[step].to(device);
    optimizer->zero_grad();
    Tensor loss = F::cross_entropy(model(x), y);
    loss.backward();
    optimizer->step();
    losses.push_back(loss.item<double>());
  }
  return losses;
}

void expect_same_training(nn::Sequential (*make)(), std::vector<int64_t> x_shape, int64_t classes, Opt opt) {
  Tf32Guard full_f32(gpu(), false);
  const uint64_t seed = 20240611;
  kiln::manual_seed(seed);
  nn::Sequential cpu_model = make();
  kiln::manual_seed(seed);
  nn::Sequential gpu_model = make();
  gpu_model->to(gpu());
  // Same initialisation, now on the GPU.
  for (const auto& item : cpu_model->named_parameters()) {
    const Tensor q = gpu_model->named_parameters()[item.key];
    ASSERT_EQ(q.device(), gpu()) << item.key;
    EXPECT_TRUE(parity_close(q, item.value, 0.0)) << item.key;
  }

  const Batches data = batches(seed + 1, x_shape, classes);
  const std::vector<double> cpu_losses = train(cpu_model, cpu(), opt, data, seed + 2);
  const std::vector<double> gpu_losses = train(gpu_model, gpu(), opt, data, seed + 2);
  for (int step = 0; step < kSteps; ++step) {
    EXPECT_LE(std::fabs(gpu_losses[step] - cpu_losses[step]), kRel * std::fabs(cpu_losses[step]))
        << "step " << step << ": CUDA loss " << gpu_losses[step] << " vs CPU " << cpu_losses[step];
  }
  for (const auto& item : cpu_model->named_parameters()) {
    EXPECT_TRUE(parity_close(gpu_model->named_parameters()[item.key], item.value, kRel)) << item.key;
  }
  for (const auto& item : cpu_model->named_buffers()) {
    EXPECT_TRUE(parity_close(gpu_model->named_buffers()[item.key], item.value, kRel)) << item.key;
  }
}

TEST(CudaTrainParity, MlpSgdNesterov) {
  KILN_SKIP_WITHOUT_CUDA();
  expect_same_training(make_mlp, {16, 20}, 5, Opt::SgdNesterov);
}

TEST(CudaTrainParity, MlpAdamW) {
  KILN_SKIP_WITHOUT_CUDA();
  expect_same_training(make_mlp, {16, 20}, 5, Opt::AdamW);
}

TEST(CudaTrainParity, CnnSgdNesterov) {
  KILN_SKIP_WITHOUT_CUDA();
  expect_same_training(make_cnn, {4, 3, 12, 12}, 4, Opt::SgdNesterov);
}

TEST(CudaTrainParity, CnnAdamW) {
  KILN_SKIP_WITHOUT_CUDA();
  expect_same_training(make_cnn, {4, 3, 12, 12}, 4, Opt::AdamW);
}

}  // namespace
