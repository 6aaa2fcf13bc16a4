// Trains a small CNN on Fashion-MNIST with Kiln's modules, AdamW and a
// warm-up + cosine schedule, and reports the test accuracy per epoch:
//
//   conv 3x3 1->16 -> GroupNorm(4) -> ReLU -> max-pool 2
//   conv 3x3 16->32 -> GroupNorm(8) -> ReLU -> max-pool 2
//   flatten -> linear 32*7*7 -> 10
//
//   ./build/bin/fashion_mnist_cnn [--data DIR] [--epochs 3] [--batch-size 128]
//       [--lr 0.003] [--weight-decay 0.05] [--warmup 200] [--seed 0]
//       [--train-limit N] [--min-accuracy A]
#include <kiln/kiln.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "fashion_mnist.h"
#include "kiln/train/optim/optim.h"

namespace nn = kiln::nn;
namespace optim = kiln::optim;

namespace {

struct Options {
  std::string data = kiln::examples::kFashionMnistDir;
  int epochs = 3;
  int64_t batch_size = 128;
  double lr = 3e-3;
  double weight_decay = 0.05;
  int64_t warmup = 200;
  uint64_t seed = 0;
  int64_t train_limit = 0;    // use only the first N training images (0: all)
  double min_accuracy = 0.0;  // exit 1 below this test accuracy (for smoke tests)
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--data DIR] [--epochs N] [--batch-size N] [--lr X] [--weight-decay X]\n"
      "          [--warmup STEPS] [--seed N] [--train-limit N] [--min-accuracy X]\n"
      "DIR holds train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
      "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (default %s,\n"
      "from Debian's dataset-fashion-mnist). Threads: KILN_NUM_THREADS (default: all cores).\n",
      argv0, Options().data.c_str());
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      usage(argv[0]);
      std::exit(0);
    }
    KILN_CHECK(i + 1 < argc, "fashion_mnist_cnn: flag ", flag, " needs a value (see --help)");
    std::string v = argv[++i];
    try {
      if (flag == "--data") o.data = v;
      else if (flag == "--epochs") o.epochs = std::stoi(v);
      else if (flag == "--batch-size") o.batch_size = std::stoll(v);
      else if (flag == "--lr") o.lr = std::stod(v);
      else if (flag == "--weight-decay") o.weight_decay = std::stod(v);
      else if (flag == "--warmup") o.warmup = std::stoll(v);
      else if (flag == "--seed") o.seed = std::stoull(v);
      else if (flag == "--train-limit") o.train_limit = std::stoll(v);
      else if (flag == "--min-accuracy") o.min_accuracy = std::stod(v);
      else KILN_ERROR("fashion_mnist_cnn: unknown flag ", flag, " (see --help)");
    } catch (const std::logic_error&) {  // stoi & co.: not a number / out of range
      KILN_ERROR("fashion_mnist_cnn: bad value '", v, "' for ", flag);
    }
  }
  KILN_CHECK(o.epochs >= 0 && o.batch_size > 0 && o.train_limit >= 0 && o.warmup >= 0,
             "fashion_mnist_cnn: --epochs, --batch-size, --warmup and --train-limit must not be negative");
  return o;
}

using Split = kiln::examples::FashionMnistSplit;

nn::Sequential conv_block(int64_t in, int64_t out, int64_t groups) {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1)), nn::GroupNorm(groups, out),
                        nn::ReLU());
}

struct CnnImpl : nn::Module {
  nn::Sequential features{nullptr};
  nn::Linear classifier{nullptr};

  CnnImpl() {
    features = register_module(
        "features", nn::Sequential(conv_block(1, 16, 4), nn::MaxPool2d(2), conv_block(16, 32, 8), nn::MaxPool2d(2),
                                   nn::Flatten()));
    classifier = register_module("classifier", nn::Linear(32 * 7 * 7, 10));
  }

  // Logits [N, 10].
  kiln::Tensor forward(const kiln::Tensor& x) { return classifier(features(x)); }
};
KILN_MODULE(Cnn);

double accuracy(Cnn& model, const Split& split) {
  kiln::NoGradGuard no_grad;
  model->eval();
  int64_t correct = 0;
  const int64_t n = split.images.size(0);
  for (int64_t i = 0; i < n; i += 1000) {
    const int64_t b = std::min<int64_t>(1000, n - i);
    kiln::Tensor predicted = model(split.images.narrow(0, i, b)).argmax(1);
    correct += predicted.eq(split.labels.narrow(0, i, b)).sum().item<int64_t>();
  }
  model->train();
  return static_cast<double>(correct) / static_cast<double>(n);
}


int run(const Options& opt) {
  using clock = std::chrono::steady_clock;
  auto seconds_since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };
  const auto start = clock::now();

  kiln::manual_seed(opt.seed);
  std::mt19937_64 shuffle_rng(opt.seed);
  Split train = kiln::examples::load_fashion_mnist(opt.data, "train", opt.train_limit);
  Split test = kiln::examples::load_fashion_mnist(opt.data, "t10k");
  const int64_t n = train.images.size(0);
  std::printf("Fashion-MNIST: %lld train / %lld test images from %s (%.1fs); %d threads\n",
              static_cast<long long>(n), static_cast<long long>(test.images.size(0)), opt.data.c_str(),
              seconds_since(start), kiln::get_num_threads());

  Cnn model;
  std::cout << model << "\n" << model->num_parameters() << " parameters\n";

  // No weight decay on biases and norm weights, as timm and HF fine-tuning do.
  optim::AdamW optimizer(optim::param_groups_weight_decay(model->named_parameters(), opt.weight_decay),
                         optim::AdamWOptions{.lr = opt.lr});
  const int64_t steps_per_epoch = (n + opt.batch_size - 1) / opt.batch_size;
  const int64_t total_steps = std::max<int64_t>(1, steps_per_epoch * opt.epochs);
  optim::CosineWithWarmupLR schedule(optimizer, std::min(opt.warmup, total_steps / 2), total_steps);
  std::printf("AdamW lr %g weight decay %g, warm-up %lld + cosine over %lld steps, batch %lld\n", opt.lr,
              opt.weight_decay, static_cast<long long>(std::min(opt.warmup, total_steps / 2)),
              static_cast<long long>(total_steps), static_cast<long long>(opt.batch_size));

  double acc = 0.0;
  for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
    const auto epoch_start = clock::now();
    Split shuffled;
    {
      kiln::NoGradGuard no_grad;
      kiln::Tensor perm = kiln::examples::permutation(n, shuffle_rng);
      shuffled = {train.images.index_select(0, perm), train.labels.index_select(0, perm)};
    }
    double loss_sum = 0.0;
    int64_t batches = 0;
    for (int64_t i = 0; i < n; i += opt.batch_size) {
      const int64_t b = std::min(opt.batch_size, n - i);
      kiln::Tensor logits = model(shuffled.images.narrow(0, i, b));
      kiln::Tensor loss = nn::functional::cross_entropy(logits, shuffled.labels.narrow(0, i, b));
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      schedule.step();
      loss_sum += loss.item<double>();
      ++batches;
    }
    acc = accuracy(model, test);
    std::printf("epoch %d  train loss %.4f  test accuracy %.2f%%  (%.1fs, %.0f images/s)\n", epoch,
                loss_sum / static_cast<double>(std::max<int64_t>(batches, 1)), 100.0 * acc,
                seconds_since(epoch_start), static_cast<double>(n) / seconds_since(epoch_start));
    std::fflush(stdout);
  }
  std::printf("test accuracy %.2f%% after %d epochs, %.1fs in all\n", 100.0 * acc, opt.epochs, seconds_since(start));
  if (acc < opt.min_accuracy) {
    std::fprintf(stderr, "fashion_mnist_cnn: test accuracy %.2f%% is below --min-accuracy %.2f%%\n", 100.0 * acc,
                 100.0 * opt.min_accuracy);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln::Error: %s\n", e.what());
    return 2;
  }
}
