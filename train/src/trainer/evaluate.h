#pragma once
#include <map>
#include <string>

#include "kiln/data/loader.h"
#include "kiln/models/pretrained_model.h"

namespace kiln::train::detail {

// One pass over the loader's current epoch in eval mode without gradients:
// eval/loss (mean cross-entropy over examples), eval/accuracy (top-1),
// eval/top5 (top-min(5, classes)), eval/examples. The model's train/eval
// mode is restored afterwards.
// Batches go to `device`; with bf16 the forward runs under autocast. The
// ranking for top-1/top-5 happens on the CPU.
std::map<std::string, double> evaluate(models::PreTrainedModel& model, data::DataLoader& loader, Device device,
                                       bool bf16_autocast);

}  // namespace kiln::train::detail
