#include "evaluate.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "kiln/autograd/autocast.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/nn/functional/loss.h"

namespace kiln::train::detail {

std::map<std::string, double> evaluate(models::PreTrainedModel& model, data::DataLoader& loader, Device device,
                                       bool bf16_autocast) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  double loss_sum = 0.0;
  int64_t examples = 0, top1 = 0, top5 = 0;
  // The same examples every time: from the start of the eval stream.
  loader.seek({0, 0});
  while (auto batch = loader.next()) {
    models::ModelInputs inputs;
    inputs.pixel_values = batch->inputs.to(device, /*non_blocking=*/true);
    Tensor logits;
    {
      AutocastGuard autocast(device.type(), kBFloat16, bf16_autocast);
      logits = model.forward(inputs).logits;
    }
    KILN_CHECK(logits.defined() && logits.dim() == 2, "evaluate: the model gives no [N, classes] logits");
    Tensor loss = nn::functional::cross_entropy(logits.to(kFloat32), batch->labels.to(device),
                                                nn::functional::CrossEntropyFuncOptions().reduction(nn::functional::Reduction::Sum));
    loss_sum += loss.item<double>();
    const Tensor scores = logits.to(Device(kCPU), kFloat32).contiguous();
    const int64_t n = scores.size(0), classes = scores.size(1), k = std::min<int64_t>(5, classes);
    const float* s = scores.data_ptr<float>();
    const int64_t* labels = batch->labels.contiguous().data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const float* row = s + i * classes;
      const float target = row[labels[i]];
      // Rank of the label: classes scoring higher, ties broken by lower index (as argmax / topk).
      int64_t rank = 0;
      for (int64_t c = 0; c < classes; ++c)
        if (row[c] > target || (row[c] == target && c < labels[i])) ++rank;
      top1 += rank == 0;
      top5 += rank < k;
    }
    examples += n;
  }
  loader.seek({0, 0});
  model.train(was_training);
  const double n = static_cast<double>(std::max<int64_t>(examples, 1));
  return {{"eval/loss", loss_sum / n},
          {"eval/accuracy", static_cast<double>(top1) / n},
          {"eval/top5", static_cast<double>(top5) / n},
          {"eval/examples", static_cast<double>(examples)}};
}

}  // namespace kiln::train::detail
