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
std::map<std::string, double> evaluate(models::PreTrainedModel& model, data::DataLoader& loader);

}  // namespace kiln::train::detail
