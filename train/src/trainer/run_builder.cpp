// From config sections to datasets, the model, loaders, the optimizer and
// the schedule. The config was validated when parsed; what can still fail
// here (a dataset that turns out to be empty, a checkpoint directory that
// does not load) is a kiln::Error naming the key.
#include "run_builder.h"

#include <algorithm>
#include <cmath>

#include "kiln/autograd/grad_mode.h"
#include "kiln/models/registry.h"
#include "kiln/train/optim/adam.h"
#include "kiln/train/optim/lr_schedules.h"
#include "kiln/train/optim/param_groups.h"
#include "kiln/train/optim/sgd.h"

namespace kiln::train::detail {

namespace {

// The first `limit` examples of another dataset (data.*.limit).
class LimitedDataset : public data::ImageDataset {
 public:
  LimitedDataset(std::shared_ptr<const data::ImageDataset> base, int64_t limit)
      : base_(std::move(base)), size_(std::min(limit, base_->size())) {}
  int64_t size() const override { return size_; }
  data::Image load(int64_t index) const override { return base_->load(index); }
  int64_t label(int64_t index) const override { return base_->label(index); }
  const std::vector<std::string>& classes() const override { return base_->classes(); }
  int channels() const override { return base_->channels(); }
  std::string describe(int64_t index) const override { return base_->describe(index); }

 private:
  std::shared_ptr<const data::ImageDataset> base_;
  int64_t size_;
};

}  // namespace

std::shared_ptr<const data::ImageDataset> build_dataset(const DatasetSection& section) {
  std::shared_ptr<const data::ImageDataset> dataset;
  if (section.type == "idx") {
    dataset = data::IdxDataset::mnist_split(section.path, section.split, section.classes != "mnist");
  } else if (section.type == "image_folder") {
    dataset = std::make_shared<data::ImageFolderDataset>(section.path,
                                                         data::ImageFolderOptions{.skip_bad_images = section.skip_bad_images});
  } else {
    KILN_ERROR("data: unknown dataset type '", section.type, "'");
  }
  if (section.limit > 0) dataset = std::make_shared<LimitedDataset>(dataset, section.limit);
  return dataset;
}

std::shared_ptr<models::PreTrainedModel> build_model(const RunConfig& config,
                                                     const std::vector<std::string>& classes) {
  const ModelSection& m = config.model;
  const int64_t n_classes = static_cast<int64_t>(classes.size());
  const bool name_labels = !classes.empty() && (!m.num_labels || *m.num_labels == n_classes);
  std::shared_ptr<models::PreTrainedModel> model;
  if (!m.from_pretrained.empty()) {
    models::FromPretrainedOptions options;
    options.num_labels = name_labels ? std::optional<int64_t>(n_classes) : m.num_labels;
    options.ignore_mismatched_sizes = m.ignore_mismatched_sizes;
    if (!m.architecture.empty()) options.architecture = m.architecture;
    model = models::from_pretrained(m.from_pretrained, options);
    // A new head's labels are LABEL_i; the data set knows their names.
    if (name_labels)
      for (int64_t i = 0; i < n_classes; ++i) model->pretrained_config().id2label[i] = classes[static_cast<size_t>(i)];
  } else {
    models::Json json = m.config;
    json["architectures"] = models::Json::array({m.architecture});
    if (name_labels) {
      models::Json id2label = models::Json::object();
      for (int64_t i = 0; i < n_classes; ++i) id2label[std::to_string(i)] = classes[static_cast<size_t>(i)];
      json["id2label"] = id2label;
    } else if (m.num_labels) {
      json["num_labels"] = *m.num_labels;
    }
    NoGradGuard no_grad;
    model = models::create_model(json, m.architecture, config.source + ": model");
  }
  model->train();
  return model;
}

std::unique_ptr<data::DataLoader> build_loader(const RunConfig& config,
                                               std::shared_ptr<const data::ImageDataset> dataset, bool train) {
  const DatasetSection& section = train ? config.data.train : *config.data.eval;
  data::LoaderOptions options;
  options.batch_size = train ? config.data.batch_size : config.data.eval_batch_size;
  options.shuffle = train && config.data.shuffle;
  options.drop_last = train && config.data.drop_last;
  options.num_workers = config.data.workers;
  options.prefetch_batches = config.data.prefetch;
  options.seed = config.run.seed;
  return std::make_unique<data::DataLoader>(std::move(dataset), data::Transforms(section.transforms), options);
}

std::unique_ptr<optim::Optimizer> build_optimizer(models::PreTrainedModel& model, const OptimSection& o) {
  const auto named = model.named_parameters();
  const double wd = o.weight_decay.value_or(o.name == "adamw" ? 0.01 : 0.0);
  std::vector<optim::ParamGroup> groups;
  if (o.no_decay_bias_and_norm && wd != 0.0) {
    groups = optim::param_groups_weight_decay(named, wd);
  } else {
    std::vector<Tensor> params;
    for (const auto& item : named)
      if (item.value.requires_grad()) params.push_back(item.value);
    groups.emplace_back(std::move(params));
  }
  if (o.name == "sgd")
    return std::make_unique<optim::SGD>(
        std::move(groups), optim::SGDOptions{.lr = o.lr, .momentum = o.momentum, .dampening = o.dampening,
                                             .weight_decay = wd, .nesterov = o.nesterov});
  if (o.name == "adam")
    return std::make_unique<optim::Adam>(
        std::move(groups),
        optim::AdamOptions{.lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps, .weight_decay = wd});
  if (o.name == "adamw")
    return std::make_unique<optim::AdamW>(
        std::move(groups),
        optim::AdamWOptions{.lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps, .weight_decay = wd});
  KILN_ERROR("optim.name: unknown optimizer '", o.name, "'");
}

std::unique_ptr<optim::LRScheduler> build_scheduler(optim::Optimizer& optimizer, const ScheduleSection& s,
                                                    int64_t total_steps) {
  const int64_t warmup = s.warmup_steps > 0
                             ? s.warmup_steps
                             : static_cast<int64_t>(std::ceil(s.warmup_ratio * static_cast<double>(total_steps)));
  if (s.name == "constant") return std::make_unique<optim::ConstantWithWarmupLR>(optimizer, warmup);
  if (s.name == "linear")
    return std::make_unique<optim::LinearWithWarmupLR>(optimizer, warmup, total_steps, s.min_lr);
  if (s.name == "cosine")
    return std::make_unique<optim::CosineWithWarmupLR>(optimizer, warmup, total_steps, s.min_lr);
  if (s.name == "polynomial")
    return std::make_unique<optim::PolynomialWithWarmupLR>(optimizer, warmup, total_steps, s.lr_end, s.power);
  if (s.name == "step") return std::make_unique<optim::StepLR>(optimizer, s.step_size, s.gamma, warmup);
  if (s.name == "multistep") {
    std::vector<int64_t> milestones = s.milestones;
    for (double f : s.milestone_fractions)
      milestones.push_back(static_cast<int64_t>(std::llround(f * static_cast<double>(total_steps))));
    return std::make_unique<optim::MultiStepLR>(optimizer, std::move(milestones), s.gamma, warmup);
  }
  KILN_ERROR("schedule.name: unknown schedule '", s.name, "'");
}

}  // namespace kiln::train::detail
