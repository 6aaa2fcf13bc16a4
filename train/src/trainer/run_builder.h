#pragma once
// Turning a validated RunConfig into the objects a run is made of.
#include <memory>
#include <string>

#include "kiln/data/dataset.h"
#include "kiln/data/loader.h"
#include "kiln/models/pretrained_model.h"
#include "kiln/train/optim/lr_scheduler.h"
#include "kiln/train/optim/optimizer.h"
#include "kiln/train/run_config.h"

namespace kiln::train::detail {

// The dataset a section names, cut to its `limit`.
std::shared_ptr<const data::ImageDataset> build_dataset(const DatasetSection& section);

// The model, randomly initialised from model.architecture + model.config, or
// loaded from model.from_pretrained; in train mode. `classes` (the training
// set's class names) become id2label when num_labels is not given or equals
// their count, as HF's run_image_classification does.
std::shared_ptr<models::PreTrainedModel> build_model(const RunConfig& config,
                                                     const std::vector<std::string>& classes);

std::unique_ptr<data::DataLoader> build_loader(const RunConfig& config,
                                               std::shared_ptr<const data::ImageDataset> dataset, bool train);

std::unique_ptr<optim::Optimizer> build_optimizer(models::PreTrainedModel& model, const OptimSection& section);

// total_steps: the run's optimizer steps, for warm-up ratios, decays and
// milestone fractions.
std::unique_ptr<optim::LRScheduler> build_scheduler(optim::Optimizer& optimizer, const ScheduleSection& section,
                                                    int64_t total_steps);

}  // namespace kiln::train::detail
