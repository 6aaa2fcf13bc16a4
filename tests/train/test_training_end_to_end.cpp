// The pieces compose: modules, functional ops, losses, autograd, optimizers
// and schedules train small networks to targets known in closed form.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.h"
#include "kiln/train/optim/optim.h"
#include "test_util.h"

namespace nn = kiln::nn;
namespace F = kiln::nn::functional;
namespace optim = kiln::optim;
using kiln::Tensor;

namespace {

// Teacher-student: a student conv learns a fixed teacher conv (groups and
// stride included) from random images; with enough data the least-squares
// solution is unique, so the student's weights must converge to the
// teacher's.
TEST(TrainingEndToEnd, StudentConvRecoversTeacherWeightsWithAdamWAndCosineSchedule) {
  kiln::manual_seed(7);
  auto options = nn::Conv2dOptions(4, 6, 3).stride(2).padding(1).groups(2);
  nn::Conv2d teacher(options), student(options);
  optim::AdamW optimizer(student->parameters(), optim::AdamWOptions{.lr = 0.05, .weight_decay = 0.0});
  const int64_t steps = 400;
  optim::CosineWithWarmupLR schedule(optimizer, 20, steps);
  double first_loss = 0.0, loss_value = 0.0;
  for (int64_t step = 0; step < steps; ++step) {
    Tensor x = kiln::randn({8, 4, 9, 9});
    Tensor target;
    {
      kiln::NoGradGuard no_grad;
      target = teacher(x);
    }
    Tensor loss = F::mse_loss(student(x), target);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    schedule.step();
    loss_value = loss.item<double>();
    if (step == 0) first_loss = loss_value;
  }
  EXPECT_LT(loss_value, 1e-6 * first_loss);
  EXPECT_TRUE(kiln::testing::all_close(student->weight, teacher->weight, 0, 1e-3));
  EXPECT_TRUE(kiln::testing::all_close(student->bias, teacher->bias, 0, 1e-3));
}

// Linear regression with SGD + momentum: the minimiser of the mean squared
// error over a fixed data set is the normal-equations solution, here the
// generating weights exactly (noise-free targets).
TEST(TrainingEndToEnd, LinearRegressionWithSgdMomentumReachesTheExactSolution) {
  kiln::manual_seed(3);
  Tensor w_true = kiln::tensor(std::vector<double>{1.5, -2.0, 0.25}).to(kiln::kFloat32).view({1, 3});
  Tensor b_true = kiln::tensor(std::vector<double>{0.75}).to(kiln::kFloat32);
  Tensor x = kiln::randn({256, 3});
  Tensor y = kiln::linear(x, w_true, b_true);
  nn::Linear model(3, 1);
  optim::SGD optimizer(model->parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  for (int step = 0; step < 300; ++step) {
    Tensor loss = F::mse_loss(model(x), y);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  EXPECT_TRUE(kiln::testing::all_close(model->weight, w_true, 0, 1e-4));
  EXPECT_TRUE(kiln::testing::all_close(model->bias, b_true, 0, 1e-4));
}

// A small CNN (conv -> group norm -> relu -> pool -> linear, the shape of the
// Fashion-MNIST example) separates two classes that differ only in where a
// bright square sits, a task no per-pixel-mean classifier can solve; it must
// reach 100% training accuracy and near-zero loss.
struct TinyCnnImpl : nn::Module {
  nn::Sequential body{nullptr};
  TinyCnnImpl() {
    body = register_module(
        "body", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 8, 3).padding(1)), nn::GroupNorm(2, 8), nn::ReLU(),
                               nn::MaxPool2d(2), nn::Conv2d(nn::Conv2dOptions(8, 8, 3).padding(1)),
                               nn::GroupNorm(2, 8), nn::ReLU(), nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({2, 2})),
                               nn::Flatten(), nn::Linear(32, 2)));
  }
  Tensor forward(const Tensor& x) { return body(x); }
};
KILN_MODULE(TinyCnn);

TEST(TrainingEndToEnd, TinyCnnLearnsWhereTheSquareIs) {
  kiln::manual_seed(11);
  const int64_t n = 64;
  Tensor images = kiln::zeros({n, 1, 8, 8});
  Tensor labels = kiln::zeros({n}, kiln::kInt64);
  {
    float* p = images.data_ptr<float>();
    int64_t* l = labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t label = i % 2, r = (i / 2) % 3, c = (i / 6) % 3;
      // Class 0: a 2x2 square in the top-left quadrant; class 1: bottom-right.
      const int64_t top = label == 0 ? r : 4 + r, left = label == 0 ? c : 4 + c;
      for (int64_t dy = 0; dy < 2; ++dy)
        for (int64_t dx = 0; dx < 2; ++dx) p[i * 64 + (top + dy) * 8 + left + dx] = 1.0f;
      l[i] = label;
    }
  }
  TinyCnn model;
  optim::AdamW optimizer(optim::param_groups_weight_decay(model->named_parameters(), 0.01),
                         optim::AdamWOptions{.lr = 0.01});
  Tensor loss;
  for (int step = 0; step < 150; ++step) {
    loss = F::cross_entropy(model(images), labels);
    optimizer.zero_grad();
    loss.backward();
    optim::clip_grad_norm_(model->parameters(), 5.0);
    optimizer.step();
  }
  EXPECT_LT(loss.item<double>(), 0.05);
  kiln::NoGradGuard no_grad;
  model->eval();
  EXPECT_TRUE(model(images).argmax(1).eq(labels).all().item<bool>());
}

}  // namespace
