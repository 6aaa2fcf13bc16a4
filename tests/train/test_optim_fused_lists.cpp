// The optimizers hand a whole parameter group to the backend as tensor lists
// (one call per step count for Adam, per fresh/existing momentum buffer for
// SGD, per device and dtype). A group must update every parameter exactly
// as an optimizer holding that parameter alone does (the per-tensor
// arithmetic itself is tested against torch in test_optim_{sgd,adam,torch}):
// lagging step counts, buffers created on different steps, mixed dtypes and
// strided parameters in one group.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <memory>
#include <vector>

#include "test_util.h"

using namespace kiln;
using kiln::optim::Adam;
using kiln::optim::AdamOptions;
using kiln::optim::AdamW;
using kiln::optim::AdamWOptions;
using kiln::optim::Optimizer;
using kiln::optim::SGD;
using kiln::optim::SGDOptions;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

struct Spec {
  std::vector<int64_t> sizes;
  DType dtype;
  bool transposed;  // the parameter is a transposed view of its storage
};

Tensor make_param(const Spec& s, unsigned seed) {
  int64_t n = 1;
  for (int64_t d : s.sizes) n *= d;
  if (s.transposed) {
    std::vector<int64_t> rev(s.sizes.rbegin(), s.sizes.rend());
    return native::t(make(rev, sample(n, -1, 1, seed), s.dtype)).requires_grad_(true);
  }
  return make(s.sizes, sample(n, -1, 1, seed), s.dtype).requires_grad_(true);
}

const std::vector<Spec> kSpecs = {
    {{3, 4}, kFloat32, false}, {{5}, kFloat64, false}, {{4, 3}, kFloat32, true}, {{6}, kBFloat16, false},
    {{2, 2}, kFloat32, false},
};

// Which parameters get a gradient at step t: the first always, the others
// from a later step or intermittently, so step counts and buffers differ.
bool has_grad(size_t i, int t) {
  switch (i) {
    case 0: return true;
    case 1: return t >= 2;
    case 2: return t % 2 == 1;
    case 3: return t != 1;
    default: return t >= 4;
  }
}

// Runs `steps` steps of one optimizer over all parameters and of one
// optimizer per parameter, with the same gradients; returns both final
// parameter sets.
template <typename MakeOpt>
void expect_group_equals_singles(const MakeOpt& make_opt, int steps) {
  std::vector<Tensor> grouped, single;
  for (size_t i = 0; i < kSpecs.size(); ++i) {
    grouped.push_back(make_param(kSpecs[i], 10 + static_cast<unsigned>(i)));
    single.push_back(make_param(kSpecs[i], 10 + static_cast<unsigned>(i)));
  }
  std::unique_ptr<Optimizer> group_opt = make_opt(grouped);
  std::vector<std::unique_ptr<Optimizer>> single_opts;
  for (const Tensor& p : single) single_opts.push_back(make_opt({p}));
  for (int t = 0; t < steps; ++t) {
    for (size_t i = 0; i < kSpecs.size(); ++i) {
      if (!has_grad(i, t)) {
        grouped[i].set_grad(Tensor());
        single[i].set_grad(Tensor());
        continue;
      }
      const std::vector<double> g = sample(grouped[i].numel(), -1, 1, 100 * t + static_cast<unsigned>(i));
      grouped[i].set_grad(make(grouped[i].sizes(), g, grouped[i].dtype()));
      single[i].set_grad(make(single[i].sizes(), g, single[i].dtype()));
    }
    group_opt->step();
    for (auto& o : single_opts) o->step();
  }
  for (size_t i = 0; i < kSpecs.size(); ++i) {
    EXPECT_EQ(values(grouped[i]), values(single[i])) << "parameter " << i;
    const auto* gs = group_opt->state(grouped[i]);
    const auto* ss = single_opts[i]->state(single[i]);
    ASSERT_EQ(gs == nullptr, ss == nullptr) << "parameter " << i;
    if (gs == nullptr) continue;
    for (const auto& item : *ss) {
      ASSERT_TRUE(gs->contains(item.key)) << item.key;
      EXPECT_EQ(values(gs->at(item.key)), values(item.value)) << "parameter " << i << " state " << item.key;
    }
  }
}

}  // namespace

TEST(OptimFusedLists, SGDMomentumBuffersCreatedOnDifferentSteps) {
  expect_group_equals_singles(
      [](std::vector<Tensor> ps) -> std::unique_ptr<Optimizer> {
        return std::make_unique<SGD>(std::move(ps),
                                     SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
      },
      6);
  expect_group_equals_singles(
      [](std::vector<Tensor> ps) -> std::unique_ptr<Optimizer> {
        return std::make_unique<SGD>(std::move(ps), SGDOptions{.lr = 0.1, .momentum = 0.5, .nesterov = true});
      },
      6);
  expect_group_equals_singles(
      [](std::vector<Tensor> ps) -> std::unique_ptr<Optimizer> {
        return std::make_unique<SGD>(std::move(ps), SGDOptions{.lr = 0.1, .maximize = true});
      },
      4);
}

TEST(OptimFusedLists, AdamWithLaggingStepCounts) {
  expect_group_equals_singles(
      [](std::vector<Tensor> ps) -> std::unique_ptr<Optimizer> {
        return std::make_unique<Adam>(std::move(ps), AdamOptions{.lr = 0.01, .weight_decay = 0.1, .amsgrad = true});
      },
      7);
  expect_group_equals_singles(
      [](std::vector<Tensor> ps) -> std::unique_ptr<Optimizer> {
        return std::make_unique<AdamW>(std::move(ps), AdamWOptions{.lr = 0.01, .beta1 = 0.3});
      },
      7);
}
