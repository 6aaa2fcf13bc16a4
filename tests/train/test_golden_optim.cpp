// Optimizers, clipping and LR schedules against torch.optim: six-step
// trajectories from tools/fixtures/optim.py (tests/fixtures/optim/). Each
// step feeds the stored gradients, clips when the case says so, checks the
// lr every group runs with, steps, and compares the parameters to rel 1e-10
// (f64) / 1e-5 (f32) of their scale. Also checks that a state_dict taken
// mid-run and loaded into a fresh optimizer and scheduler continues on the
// same trajectory.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "golden.h"
#include "kiln/kiln.h"
#include "kiln/train/optim/optim.h"

using kiln::Tensor;
using kiln::testing::golden_close;
using kiln::testing::GoldenFile;
using nlohmann::json;
namespace optim = kiln::optim;

namespace {

struct Precision {
  const char* file;
  double rel;
};

std::vector<optim::ParamGroup::Option> group_options(const json& g) {
  std::vector<optim::ParamGroup::Option> out;
  for (auto& [key, value] : g.items()) {
    if (key == "betas") {
      out.emplace_back("beta1", value[0].get<double>());
      out.emplace_back("beta2", value[1].get<double>());
    } else {
      out.emplace_back(key, value.is_boolean() ? (value.get<bool>() ? 1.0 : 0.0) : value.get<double>());
    }
  }
  return out;
}

// One case's optimizer and scheduler over the two parameters.
struct OptimRun {
  std::vector<Tensor> params;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<optim::LRScheduler> scheduler;

  OptimRun(const json& spec, std::vector<Tensor> initial) {
    for (auto& t : initial) params.push_back(t.clone().requires_grad_(true));
    std::vector<optim::ParamGroup> groups;
    const json& gs = spec["groups"];
    if (gs.size() == 2) {  // each parameter its own group
      groups.emplace_back(std::vector<Tensor>{params[0]}, group_options(gs[0]));
      groups.emplace_back(std::vector<Tensor>{params[1]}, group_options(gs[1]));
    } else {
      groups.emplace_back(params, group_options(gs[0]));
    }
    const std::string kind = spec["optimizer"];
    if (kind == "sgd") optimizer = std::make_unique<optim::SGD>(groups);
    if (kind == "adam") optimizer = std::make_unique<optim::Adam>(groups);
    if (kind == "adamw") optimizer = std::make_unique<optim::AdamW>(groups);
    if (!spec.contains("schedule")) return;
    const json& s = spec["schedule"];
    const std::string sk = s["kind"];
    auto& o = *optimizer;
    if (sk == "warmup_cosine")
      scheduler = std::make_unique<optim::CosineWithWarmupLR>(o, s["warmup_steps"].get<int64_t>(),
                                                              s["total_steps"].get<int64_t>());
    if (sk == "warmup_linear")
      scheduler = std::make_unique<optim::LinearWithWarmupLR>(o, s["warmup_steps"].get<int64_t>(),
                                                              s["total_steps"].get<int64_t>());
    if (sk == "step")
      scheduler = std::make_unique<optim::StepLR>(o, s["step_size"].get<int64_t>(), s["gamma"].get<double>());
    if (sk == "multistep")
      scheduler = std::make_unique<optim::MultiStepLR>(o, s["milestones"].get<std::vector<int64_t>>(),
                                                       s["gamma"].get<double>());
    EXPECT_TRUE(scheduler) << "unknown schedule " << sk;
  }
};

class GoldenOptim : public ::testing::TestWithParam<Precision> {
 protected:
  void SetUp() override { golden_ = std::make_unique<GoldenFile>(std::string("optim/") + GetParam().file); }
  Tensor get(const std::string& name) const { return golden_->get(name); }
  int64_t steps() const { return std::stoll(golden_->file.metadata().at("steps")); }

  // Runs steps [from, to) of case `name` on `run`, checking every step.
  void advance(const std::string& name, const json& spec, OptimRun& run, int64_t from, int64_t to) {
    const double rel = GetParam().rel;
    for (int64_t t = from; t < to; ++t) {
      SCOPED_TRACE("step " + std::to_string(t));
      const std::string ts = std::to_string(t);
      for (size_t i = 0; i < run.params.size(); ++i)
        run.params[i].set_grad(get(name + ".grad" + std::to_string(i) + "." + ts));
      if (spec.contains("clip_norm")) {
        Tensor norm = optim::clip_grad_norm_(run.params, spec["clip_norm"].get<double>());
        EXPECT_TRUE(golden_close(norm, get(name + ".norm." + ts), rel)) << "clip_grad_norm_";
      }
      for (size_t g = 0; g < run.optimizer->param_groups().size(); ++g) {
        double expected = get(name + ".lr" + std::to_string(g) + "." + ts).item<double>();
        EXPECT_DOUBLE_EQ(run.optimizer->param_groups()[g].lr(), expected) << "lr of group " << g;
      }
      run.optimizer->step();
      if (run.scheduler) run.scheduler->step();
      for (size_t i = 0; i < run.params.size(); ++i)
        EXPECT_TRUE(golden_close(run.params[i], get(name + ".param" + std::to_string(i) + "." + ts), rel))
            << "param" << i;
    }
  }

  std::vector<Tensor> initial(const std::string& name) const {
    return {get(name + ".param0.init"), get(name + ".param1.init")};
  }

  std::unique_ptr<GoldenFile> golden_;
};

TEST_P(GoldenOptim, TrajectoriesMatchTorch) {
  ASSERT_GE(golden_->cases.size(), 8u);
  for (auto& [name, spec] : golden_->cases.items()) {
    SCOPED_TRACE(name);
    OptimRun run(spec, initial(name));
    advance(name, spec, run, 0, steps());
  }
}

TEST_P(GoldenOptim, ResumeFromStateDictContinuesTheTrajectory) {
  const int64_t half = steps() / 2;
  for (auto& [name, spec] : golden_->cases.items()) {
    SCOPED_TRACE(name);
    OptimRun first(spec, initial(name));
    advance(name, spec, first, 0, half);
    auto optimizer_state = first.optimizer->state_dict();
    auto schedule_state = first.scheduler ? first.scheduler->state_dict() : kiln::nn::StateDict();

    // A fresh run from the checkpointed parameters, as a resumed job builds it.
    std::vector<Tensor> saved;
    for (auto& p : first.params) saved.push_back(p.detach());
    OptimRun resumed(spec, saved);
    resumed.optimizer->load_state_dict(optimizer_state);
    if (resumed.scheduler) resumed.scheduler->load_state_dict(schedule_state);
    advance(name, spec, resumed, half, steps());
  }
}

INSTANTIATE_TEST_SUITE_P(Torch, GoldenOptim,
                         ::testing::Values(Precision{"optim_f64.safetensors", 1e-10},
                                           Precision{"optim_f32.safetensors", 1e-5}),
                         [](const auto& info) { return std::string(info.param.rel < 1e-6 ? "f64" : "f32"); });

}  // namespace
