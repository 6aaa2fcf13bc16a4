// Trains a 784-256-10 MLP on Fashion-MNIST with Kiln's autograd and reports
// the loss per epoch and the test accuracy.
//
//   ./build/bin/fashion_mnist_mlp [--data DIR] [--epochs 3] [--batch-size 64]
//       [--lr 0.01] [--momentum 0.9] [--hidden 256] [--seed 0]
//       [--train-limit N] [--min-accuracy A]
//
// The optimizer (SGD with momentum) is written inline with tensor ops: the
// point is to show the bare autograd API end to end (fashion_mnist_cnn uses
// kiln::nn modules and kiln::optim).
#include <kiln/kiln.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "fashion_mnist.h"

namespace {

struct Options {
  std::string data = kiln::examples::kFashionMnistDir;
  int epochs = 3;
  int64_t batch_size = 64;
  double lr = 0.01;
  double momentum = 0.9;
  int64_t hidden = 256;
  uint64_t seed = 0;
  int64_t train_limit = 0;    // use only the first N training images (0: all)
  double min_accuracy = 0.0;  // exit 1 below this test accuracy (for smoke tests)
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--data DIR] [--epochs N] [--batch-size N] [--lr X] [--momentum X]\n"
      "          [--hidden N] [--seed N] [--train-limit N] [--min-accuracy X]\n"
      "DIR holds train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
      "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (default %s).\n"
      "Threads: KILN_NUM_THREADS (default: all cores).\n",
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
    KILN_CHECK(i + 1 < argc, "fashion_mnist_mlp: flag ", flag, " needs a value (see --help)");
    std::string v = argv[++i];
    try {
      if (flag == "--data") o.data = v;
      else if (flag == "--epochs") o.epochs = std::stoi(v);
      else if (flag == "--batch-size") o.batch_size = std::stoll(v);
      else if (flag == "--lr") o.lr = std::stod(v);
      else if (flag == "--momentum") o.momentum = std::stod(v);
      else if (flag == "--hidden") o.hidden = std::stoll(v);
      else if (flag == "--seed") o.seed = std::stoull(v);
      else if (flag == "--train-limit") o.train_limit = std::stoll(v);
      else if (flag == "--min-accuracy") o.min_accuracy = std::stod(v);
      else KILN_ERROR("fashion_mnist_mlp: unknown flag ", flag, " (see --help)");
    } catch (const std::logic_error&) {  // stoi & co.: not a number / out of range
      KILN_ERROR("fashion_mnist_mlp: bad value '", v, "' for ", flag);
    }
  }
  KILN_CHECK(o.epochs >= 0 && o.batch_size > 0 && o.hidden > 0 && o.train_limit >= 0,
             "fashion_mnist_mlp: --epochs, --batch-size, --hidden and --train-limit must be positive");
  return o;
}

using Split = kiln::examples::FashionMnistSplit;

// torch.nn.Linear's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
kiln::Tensor uniform_param(std::vector<int64_t> sizes, int64_t fan_in) {
  double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  kiln::Tensor p = kiln::empty(sizes, kiln::kFloat32);
  p.uniform_(-bound, bound);
  return p.requires_grad_();
}

struct Mlp {
  kiln::Tensor w1, b1, w2, b2;

  Mlp(int64_t in, int64_t hidden, int64_t out)
      : w1(uniform_param({in, hidden}, in)),
        b1(uniform_param({hidden}, in)),
        w2(uniform_param({hidden, out}, hidden)),
        b2(uniform_param({out}, hidden)) {}

  std::vector<kiln::Tensor> parameters() const { return {w1, b1, w2, b2}; }

  // Log-probabilities [N, 10].
  kiln::Tensor forward(const kiln::Tensor& x) const {
    kiln::Tensor h = kiln::relu(x.flatten(1).matmul(w1) + b1);
    return kiln::log_softmax(h.matmul(w2) + b2, /*dim=*/1);
  }
};

// Mean negative log-likelihood of the true classes.
kiln::Tensor nll_loss(const kiln::Tensor& log_probs, const kiln::Tensor& labels) {
  return -log_probs.gather(1, labels.unsqueeze(1)).mean();
}

double accuracy(const Mlp& model, const Split& split) {
  kiln::NoGradGuard no_grad;
  kiln::Tensor predicted = model.forward(split.images).argmax(1);
  int64_t correct = predicted.eq(split.labels).sum().item<int64_t>();
  return static_cast<double>(correct) / static_cast<double>(split.labels.size(0));
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

  Mlp model(784, opt.hidden, 10);
  std::vector<kiln::Tensor> params = model.parameters();
  std::vector<kiln::Tensor> velocity;
  for (const auto& p : params) velocity.push_back(kiln::zeros_like(p));

  std::printf("MLP 784-%lld-10, SGD lr %g momentum %g, batch %lld\n", static_cast<long long>(opt.hidden), opt.lr,
              opt.momentum, static_cast<long long>(opt.batch_size));
  double acc = accuracy(model, test);
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
      kiln::Tensor loss = nll_loss(model.forward(shuffled.images.narrow(0, i, b)), shuffled.labels.narrow(0, i, b));
      loss.backward();
      {
        // v = momentum * v + grad; p -= lr * v (torch.optim.SGD's update).
        kiln::NoGradGuard no_grad;
        for (size_t k = 0; k < params.size(); ++k) {
          velocity[k].mul_(opt.momentum).add_(params[k].grad());
          params[k].sub_(velocity[k], opt.lr);
          params[k].set_grad(kiln::Tensor());
        }
      }
      loss_sum += loss.item<double>();
      ++batches;
    }
    acc = accuracy(model, test);
    std::printf("epoch %d  train loss %.4f  test accuracy %.2f%%  (%.1fs)\n", epoch,
                loss_sum / static_cast<double>(std::max<int64_t>(batches, 1)), 100.0 * acc,
                seconds_since(epoch_start));
    std::fflush(stdout);
  }
  std::printf("test accuracy %.2f%% after %d epochs, %.1fs in all\n", 100.0 * acc, opt.epochs, seconds_since(start));
  if (acc < opt.min_accuracy) {
    std::fprintf(stderr, "fashion_mnist_mlp: test accuracy %.2f%% is below --min-accuracy %.2f%%\n", 100.0 * acc,
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
