// BiT-R50x1 (google/bit-50's config, random weights) on CPU: one training
// step (forward, backward, AdamW) and inference, images per second.
// bench/bit.sh runs it beside bench/bit_torch.py (HF transformers in
// PyTorch, same threads) and prints the ratio.
//
//   kiln_bench_bit [--threads N] [--batch 8] [--size 224] [--steps 5] [--tsv]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = kiln::get_num_threads(), batch = 8, size = 224, steps = 5;
  bool tsv = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::stoi(argv[++i]) : 0; };
    if (arg == "--threads") threads = next();
    else if (arg == "--batch") batch = next();
    else if (arg == "--size") size = next();
    else if (arg == "--steps") steps = next();
    else if (arg == "--tsv") tsv = true;
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--batch B] [--size S] [--steps K] [--tsv]\n", argv[0]);
      return 2;
    }
  }
  kiln::set_num_threads(threads);
  kiln::manual_seed(0);

  kiln::models::BitConfig config;  // HF defaults are ResNetV2-50 x1
  config.global_padding = "SAME";  // as google/bit-50
  config.embedding_dynamic_padding = true;
  config.set_num_labels(1000);
  auto model = std::make_shared<kiln::models::BitForImageClassificationImpl>(config);
  kiln::optim::AdamW optimizer(model->parameters(), {.lr = 1e-4});

  kiln::Tensor pixels = kiln::randn({batch, 3, size, size});
  kiln::Tensor labels = kiln::randint(0, 1000, {batch});

  auto train_step = [&] {
    auto out = model->forward(pixels, labels);
    out.loss.backward();
    optimizer.step();
    optimizer.zero_grad();
  };
  auto infer = [&] {
    kiln::NoGradGuard no_grad;
    return model->forward(pixels).logits;
  };

  model->train();
  train_step();  // warm-up: first-touch allocations, optimizer state
  std::vector<double> train_s;
  for (int i = 0; i < steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    train_step();
    train_s.push_back(seconds_since(t0));
  }
  model->eval();
  infer();
  std::vector<double> infer_s;
  for (int i = 0; i < steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    infer();
    infer_s.push_back(seconds_since(t0));
  }
  const double train_ips = batch / median(train_s), infer_ips = batch / median(infer_s);
  if (tsv) {
    std::printf("bit\ttrain_step\tkiln\t%.6g\nbit\tinference\tkiln\t%.6g\n", train_ips, infer_ips);
  } else {
    std::printf("BiT-R50x1 %dx%d batch %d, %d threads: train step %.2f images/s, inference %.2f images/s\n", size,
                size, batch, threads, train_ips, infer_ips);
  }
  return 0;
}
