// Kiln's speed in tables, optionally beside PyTorch's:
//   (a) matmul GFLOP/s: kiln::native::mm and kiln::mm (grad mode off) against
//       cblas_sgemm called directly, for A·B, Aᵀ·B and A·Bᵀ (transposed views);
//   (b) f32 elementwise/reduction bandwidth at 16M elements, against memcpy;
//   (c) per-op overhead on tiny tensors, forward and forward+backward.
//   (d) conv2d on BiT-R50's shapes, ms forward and forward+backward.
//   (e) layer/group/batch norm on ViT-B and ResNet shapes, ms forward and forward+backward.
//   (f) a training step's fused pieces: cross_entropy over a 50K vocabulary,
//       and clip_grad_norm_ over BiT-R50's parameter list.
//
//   kiln_bench [--threads N] [--quick] [--torch FILE] [--tsv]
//
// --torch FILE reads bench/torch_bench.py's output and adds a torch column and
// a speed ratio (>1: Kiln faster). --tsv prints machine-readable rows instead
// of tables. bench/run.sh runs both programs with equal thread counts.
#include <cblas.h>
#include <kiln/kiln.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  int threads = 0;
  bool quick = false;
  bool tsv = false;
  std::map<std::string, double> torch;  // "section/case" -> value
};

// Seconds per call of f: the median over samples, or the best sample
// (throughput tables: on a shared machine the fastest run is the one least
// disturbed). Each sample times `batch` calls; samples are taken until both
// `min_samples` and `min_seconds` are reached.
enum class Stat { Median, Best };
double time_per_call(const std::function<void()>& f, Stat stat, double min_seconds, int min_samples = 5,
                     int batch = 1, int max_samples = 2000) {
  for (int i = 0; i < std::max(1, batch / 4); ++i) f();  // warm caches and the allocator
  std::vector<double> samples;
  double total = 0.0;
  while ((static_cast<int>(samples.size()) < min_samples || total < min_seconds) &&
         static_cast<int>(samples.size()) < max_samples) {
    auto t0 = Clock::now();
    for (int i = 0; i < batch; ++i) f();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    samples.push_back(s / batch);
    total += s;
  }
  if (stat == Stat::Best) return *std::min_element(samples.begin(), samples.end());
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return samples[samples.size() / 2];
}

// Best seconds per call of each of fs, timed in alternation (f0, f1, f2,
// f0, f1, ...) so that a change in machine load during the run hits every
// variant alike and the ratios between them stay meaningful.
std::vector<double> best_interleaved(const std::vector<std::function<void()>>& fs, double min_seconds,
                                     int min_rounds = 5) {
  for (const auto& f : fs) f();  // warm caches and the allocator
  std::vector<double> best(fs.size(), 1e30);
  double total = 0.0;
  for (int round = 0; round < min_rounds || total < min_seconds * static_cast<double>(fs.size()); ++round) {
    for (size_t i = 0; i < fs.size(); ++i) {
      auto t0 = Clock::now();
      fs[i]();
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      best[i] = std::min(best[i], s);
      total += s;
    }
  }
  return best;
}

// Prints one table: a title, column headers, then rows as they are measured.
class Table {
 public:
  // columns[headline] is the Kiln number compared with torch. higher_is_better:
  // the ratio is kiln/torch, else torch/kiln, so >1 always means Kiln is faster.
  Table(const Config& cfg, std::string section, std::string title, std::vector<std::string> columns,
        size_t headline, bool higher_is_better)
      : cfg_(cfg),
        section_(std::move(section)),
        columns_(std::move(columns)),
        headline_(headline),
        higher_(higher_is_better) {
    if (cfg_.tsv) return;
    std::printf("\n%s\n", title.c_str());
    std::printf("%-22s", "case");
    for (const auto& c : columns_) std::printf("%18s", c.c_str());
    if (!cfg_.torch.empty()) std::printf("%14s%16s", "torch", "kiln vs torch");
    std::printf("\n");
  }

  // values[i] belongs to columns[i].
  void row(const std::string& name, const std::vector<double>& values) {
    if (cfg_.tsv) {
      for (size_t i = 0; i < values.size(); ++i)
        std::printf("%s\t%s\t%s\t%.6g\n", section_.c_str(), name.c_str(), columns_[i].c_str(), values[i]);
      std::fflush(stdout);
      return;
    }
    std::printf("%-22s", name.c_str());
    for (double v : values) std::printf("%18.2f", v);
    if (!cfg_.torch.empty()) {
      auto it = cfg_.torch.find(section_ + "/" + name);
      if (it == cfg_.torch.end()) {
        std::printf("%14s%16s", "-", "-");
      } else {
        double kiln = values[headline_], torch = it->second;
        std::printf("%14.2f%15.2fx", torch, higher_ ? kiln / torch : torch / kiln);
      }
    }
    std::printf("\n");
    std::fflush(stdout);
  }

 private:
  const Config& cfg_;
  std::string section_;
  std::vector<std::string> columns_;
  size_t headline_;
  bool higher_;
};

void bench_matmul(const Config& cfg) {
  Table table(cfg, "matmul", "(a) matmul, float32, GFLOP/s, best of several runs (higher is better)",
              {"cblas_sgemm", "native::mm", "kiln::mm"}, 2, true);
  std::vector<int64_t> sizes = cfg.quick ? std::vector<int64_t>{128, 512} : std::vector<int64_t>{128, 256, 512, 1024, 2048};
  for (int64_t n : sizes) {
    kiln::Tensor a = kiln::native::randn({n, n}, kiln::kFloat32);
    kiln::Tensor b = kiln::native::randn({n, n}, kiln::kFloat32);
    kiln::Tensor c = kiln::native::empty({n, n}, kiln::kFloat32);
    const float* pa = a.data_ptr<float>();
    const float* pb = b.data_ptr<float>();
    float* pc = c.data_ptr<float>();
    const int in = static_cast<int>(n);
    const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
    const double min_s = cfg.quick ? 0.1 : 0.4;

    struct Variant {
      const char* name;
      CBLAS_TRANSPOSE ta, tb;
      kiln::Tensor lhs, rhs;  // views handed to Kiln: transposed ones are not copied
    };
    std::vector<Variant> variants = {
        {"A*B", CblasNoTrans, CblasNoTrans, a, b},
        {"At*B", CblasTrans, CblasNoTrans, kiln::native::t(a), b},
        {"A*Bt", CblasNoTrans, CblasTrans, a, kiln::native::t(b)},
    };
    for (const auto& v : variants) {
      const std::vector<double> t = best_interleaved(
          {[&] { cblas_sgemm(CblasRowMajor, v.ta, v.tb, in, in, in, 1.0f, pa, in, pb, in, 0.0f, pc, in); },
           [&] { kiln::native::mm(v.lhs, v.rhs); },
           [&] {
             kiln::NoGradGuard no_grad;
             v.lhs.mm(v.rhs);
           }},
          min_s);
      const double t_blas = t[0], t_native = t[1], t_kiln = t[2];
      table.row("n=" + std::to_string(n) + " " + v.name,
                {flops / t_blas * 1e-9, flops / t_native * 1e-9, flops / t_kiln * 1e-9});
    }
  }
}

void bench_bandwidth(const Config& cfg) {
  Table table(cfg, "bandwidth", "(b) float32 contiguous, 16M elements, GB/s read+written, best run (higher is better)",
              {"bytes/elem", "kiln GB/s", "% of memcpy"}, 1, true);
  const int64_t n = cfg.quick ? (int64_t{1} << 22) : (int64_t{1} << 24);
  const double min_s = cfg.quick ? 0.1 : 0.5;
  kiln::Tensor a = kiln::native::randn({n}, kiln::kFloat32);
  kiln::Tensor b = kiln::native::randn({n}, kiln::kFloat32);
  kiln::Tensor dst = kiln::native::zeros({n}, kiln::kFloat32);  // touched, so no page faults below
  const double elem_bytes = 4.0 * static_cast<double>(n);

  // The ceiling: memcpy of the same bytes into an already-touched buffer,
  // split across the same threads the kernels use. Counted as read + write.
  const char* src = static_cast<const char*>(a.data_ptr());
  char* out = static_cast<char*>(dst.data_ptr());
  const int threads = kiln::get_num_threads();
  double t_copy = time_per_call(
      [&] {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int t = 0; t < threads; ++t) {
          size_t total = static_cast<size_t>(n) * 4, begin = total * t / threads, end = total * (t + 1) / threads;
          std::memcpy(out + begin, src + begin, end - begin);
        }
      },
      Stat::Best, min_s);
  const double memcpy_gbs = 2.0 * elem_bytes / t_copy * 1e-9;
  table.row("memcpy", {8, memcpy_gbs, 100.0});

  kiln::NoGradGuard no_grad;
  struct Op {
    const char* name;
    double bytes_per_elem;  // reads + writes
    std::function<void()> f;
  };
  std::vector<Op> ops = {
      {"copy_", 8, [&] { dst.copy_(a); }},
      {"add", 12, [&] { a.add(b); }},
      {"mul", 12, [&] { a.mul(b); }},
      {"gelu", 8, [&] { a.gelu(); }},
      {"sum", 4, [&] { a.sum(); }},
  };
  for (const auto& op : ops) {
    double t = time_per_call(op.f, Stat::Best, min_s);
    double gbs = op.bytes_per_elem * static_cast<double>(n) / t * 1e-9;
    table.row(op.name, {op.bytes_per_elem, gbs, 100.0 * gbs / memcpy_gbs});
  }
}

void bench_overhead(const Config& cfg) {
  Table table(cfg, "overhead", "(c) per-op overhead on tiny float32 tensors, median us per call (lower is better)",
              {"kiln us"}, 0, false);
  const double min_s = cfg.quick ? 0.05 : 0.3;
  const int batch = 100;
  auto measure = [&](const std::string& name, const std::function<void()>& f) {
    table.row(name, {time_per_call(f, Stat::Median, min_s, 21, batch) * 1e6});
  };

  for (int64_t numel : {int64_t{1}, int64_t{16}}) {
    // (Built with append: GCC 12 warns falsely (-Wrestrict) on "[" + std::string.)
    std::string shape = "[";
    shape.append(std::to_string(numel)).append("]");
    kiln::Tensor x = kiln::native::randn({numel}, kiln::kFloat32);
    kiln::Tensor y = kiln::native::randn({numel}, kiln::kFloat32);
    measure("add " + shape + " fwd", [&] { x.add(y); });
    measure("mul " + shape + " fwd", [&] { x.mul(y); });
    measure("sum " + shape + " fwd", [&] { x.sum(); });

    kiln::Tensor xg = kiln::native::randn({numel}, kiln::kFloat32).requires_grad_();
    kiln::Tensor yg = kiln::native::randn({numel}, kiln::kFloat32).requires_grad_();
    kiln::Tensor ones = kiln::native::ones({numel}, kiln::kFloat32);
    // .grad is reset each time (torch's `x.grad = None`) so every call does the same work.
    auto reset = [&] {
      xg.set_grad(kiln::Tensor());
      yg.set_grad(kiln::Tensor());
    };
    measure("add " + shape + " fwd+bwd", [&] {
      xg.add(yg).backward(ones);
      reset();
    });
    measure("mul " + shape + " fwd+bwd", [&] {
      xg.mul(yg).backward(ones);
      reset();
    });
    measure("sum " + shape + " fwd+bwd", [&] {
      xg.sum().backward();
      reset();
    });
  }

  kiln::Tensor a = kiln::native::randn({4, 4}, kiln::kFloat32);
  kiln::Tensor b = kiln::native::randn({4, 4}, kiln::kFloat32);
  measure("matmul 4x4 fwd", [&] { a.matmul(b); });
  kiln::Tensor ag = kiln::native::randn({4, 4}, kiln::kFloat32).requires_grad_();
  kiln::Tensor bg = kiln::native::randn({4, 4}, kiln::kFloat32).requires_grad_();
  kiln::Tensor ones = kiln::native::ones({4, 4}, kiln::kFloat32);
  measure("matmul 4x4 fwd+bwd", [&] {
    ag.matmul(bg).backward(ones);
    ag.set_grad(kiln::Tensor());
    bg.set_grad(kiln::Tensor());
  });
}

// (d) conv2d on the convolutions of BiT-R50 (ResNet-v2) at 224x224 input:
// the 7x7/2 stem, a bottleneck's 1x1 reduce, 3x3 and 1x1 expand, the 3x3/2
// that opens stage 2; plus a depthwise 3x3. Forward with grad mode off, and
// forward + backward to input, weight and bias (torch_bench.py does the same).
void bench_conv2d(const Config& cfg) {
  const int64_t n = cfg.quick ? 2 : 8;
  Table table(cfg, "conv2d",
              "(d) conv2d, float32, batch " + std::to_string(n) + ", ms per call, best run (lower is better)",
              {"kiln ms"}, 0, false);
  struct Case {
    const char* name;
    int64_t cin, cout, size, kernel, stride, groups;
  };
  const Case cases[] = {
      {"7x7/2 3-64 224", 3, 64, 224, 7, 2, 1},   {"1x1 256-64 56", 256, 64, 56, 1, 1, 1},
      {"3x3 64ch 56", 64, 64, 56, 3, 1, 1},      {"1x1 64-256 56", 64, 256, 56, 1, 1, 1},
      {"3x3/2 128ch 56", 128, 128, 56, 3, 2, 1}, {"dw3x3 64ch 56", 64, 64, 56, 3, 1, 64},
  };
  const double min_s = cfg.quick ? 0.1 : 1.0;
  namespace F = kiln::nn::functional;
  for (const Case& c : cases) {
    kiln::Tensor x = kiln::native::randn({n, c.cin, c.size, c.size}, kiln::kFloat32);
    kiln::Tensor w = kiln::native::randn({c.cout, c.cin / c.groups, c.kernel, c.kernel}, kiln::kFloat32);
    kiln::Tensor b = kiln::native::randn({c.cout}, kiln::kFloat32);
    auto options = [&](const kiln::Tensor& bias) {
      return F::Conv2dFuncOptions().bias(bias).stride(c.stride).padding(c.kernel / 2).groups(c.groups);
    };
    const double t_fwd = time_per_call(
        [&] {
          kiln::NoGradGuard no_grad;
          F::conv2d(x, w, options(b));
        },
        Stat::Best, min_s, 3);
    table.row(std::string(c.name) + " fwd", {t_fwd * 1e3});

    x.requires_grad_();
    w.requires_grad_();
    b.requires_grad_();
    kiln::Tensor grad_out;
    {
      kiln::NoGradGuard no_grad;
      grad_out = kiln::native::randn(F::conv2d(x, w, options(b)).sizes(), kiln::kFloat32);
    }
    const double t_bwd = time_per_call(
        [&] {
          F::conv2d(x, w, options(b)).backward(grad_out);
          x.set_grad(kiln::Tensor());
          w.set_grad(kiln::Tensor());
          b.set_grad(kiln::Tensor());
        },
        Stat::Best, min_s, 3);
    table.row(std::string(c.name) + " fwd+bwd", {t_bwd * 1e3});
  }
}

// (e) normalisation layers: layer_norm over ViT-B/16's tokens (8 x 197 rows of
// 768), group_norm as in BiT (8 x 256 x 56 x 56, 32 groups), batch_norm on the
// same tensor in training and eval. Forward with grad mode off, and forward +
// backward to input, weight and bias (torch_bench.py does the same).
void bench_norm(const Config& cfg) {
  Table table(cfg, "norm",
              "(e) normalisation, float32, ms per call, best run (lower is better); layernorm [1576, 768], "
              "groupnorm (32 groups) and batchnorm (training unless eval) [8, 256, 56, 56]",
              {"kiln ms"}, 0, false);
  namespace F = kiln::nn::functional;
  const double min_s = cfg.quick ? 0.1 : 1.0;
  struct Case {
    const char* name;
    std::vector<int64_t> shape;
    std::function<kiln::Tensor(const kiln::Tensor&, const kiln::Tensor&, const kiln::Tensor&)> op;
    bool backward;
  };
  kiln::Tensor rm = kiln::native::zeros({256}, kiln::kFloat32), rv = kiln::native::ones({256}, kiln::kFloat32);
  const std::vector<Case> cases = {
      {"layernorm", {8 * 197, 768}, [](auto& x, auto& w, auto& b) { return F::layer_norm(x, {768}, w, b); },
       true},
      {"groupnorm", {8, 256, 56, 56},
       [](auto& x, auto& w, auto& b) { return F::group_norm(x, 32, w, b); }, true},
      {"batchnorm", {8, 256, 56, 56},
       [&](auto& x, auto& w, auto& b) { return F::batch_norm(x, rm, rv, w, b, true); }, true},
      {"batchnorm eval", {8, 256, 56, 56},
       [&](auto& x, auto& w, auto& b) { return F::batch_norm(x, rm, rv, w, b, false); }, false},
  };
  for (const Case& c : cases) {
    const int64_t ch = c.shape.back() == 768 ? 768 : c.shape[1];
    kiln::Tensor x = kiln::native::randn(c.shape, kiln::kFloat32);
    kiln::Tensor w = kiln::native::randn({ch}, kiln::kFloat32);
    kiln::Tensor b = kiln::native::randn({ch}, kiln::kFloat32);
    const double t_fwd = time_per_call(
        [&] {
          kiln::NoGradGuard no_grad;
          c.op(x, w, b);
        },
        Stat::Best, min_s, 3);
    table.row(std::string(c.name) + " fwd", {t_fwd * 1e3});
    if (!c.backward) continue;
    x.requires_grad_();
    w.requires_grad_();
    b.requires_grad_();
    kiln::Tensor grad_out = kiln::native::randn(c.shape, kiln::kFloat32);
    const double t_bwd = time_per_call(
        [&] {
          c.op(x, w, b).backward(grad_out);
          x.set_grad(kiln::Tensor());
          w.set_grad(kiln::Tensor());
          b.set_grad(kiln::Tensor());
        },
        Stat::Best, min_s, 3);
    table.row(std::string(c.name) + " fwd+bwd", {t_bwd * 1e3});
  }
}

// BiT-R50's parameter shapes (stem, bottleneck stages of 3, 4, 6, 3 blocks
// with GroupNorm weights and biases, the 1000-class head): 153 tensors,
// about 25.5M elements. torch_bench.py builds the same list.
std::vector<std::vector<int64_t>> bit_r50_parameter_shapes() {
  std::vector<std::vector<int64_t>> shapes = {{64, 3, 7, 7}};
  int64_t in = 64;
  const int64_t blocks[] = {3, 4, 6, 3};
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t out = 256 << stage, mid = out / 4;
    for (int64_t b = 0; b < blocks[stage]; ++b) {
      if (b == 0) shapes.push_back({out, in, 1, 1});
      for (auto s : std::vector<std::vector<int64_t>>{{in}, {in}, {mid, in, 1, 1}, {mid}, {mid}, {mid, mid, 3, 3},
                                                      {mid}, {mid}, {out, mid, 1, 1}}) {
        shapes.push_back(s);
      }
      in = out;
    }
  }
  for (auto s : std::vector<std::vector<int64_t>>{{in}, {in}, {1000, in}, {1000}}) shapes.push_back(s);
  return shapes;
}

void bench_training_pieces(const Config& cfg) {
  Table table(cfg, "step",
              "(f) fused training-step pieces, float32, ms per call, best run (lower is better); xent: cross_entropy on "
              "[512, 50265] logits, clip_grad_norm_ over BiT-R50's 153 gradients",
              {"kiln ms"}, 0, false);
  namespace F = kiln::nn::functional;
  const double min_s = cfg.quick ? 0.1 : 1.0;
  kiln::Tensor logits = kiln::native::randn({512, 50265}, kiln::kFloat32);
  const kiln::Tensor labels = kiln::native::randint(0, 50265, {512}, kiln::TensorOptions().dtype(kiln::kInt64));
  for (double ls : {0.0, 0.1}) {
    const auto opts = F::CrossEntropyFuncOptions().label_smoothing(ls);
    const std::string name = ls > 0 ? "xent ls=0.1" : "xent";
    const double t_fwd = time_per_call(
        [&] {
          kiln::NoGradGuard no_grad;
          F::cross_entropy(logits, labels, opts);
        },
        Stat::Best, min_s, 3);
    table.row(name + " fwd", {t_fwd * 1e3});
    logits.requires_grad_();
    const double t_bwd = time_per_call(
        [&] {
          F::cross_entropy(logits, labels, opts).backward();
          logits.set_grad(kiln::Tensor());
        },
        Stat::Best, min_s, 3);
    logits.requires_grad_(false);
    table.row(name + " fwd+bwd", {t_bwd * 1e3});
  }
  std::vector<kiln::Tensor> params;
  for (const auto& shape : bit_r50_parameter_shapes()) {
    kiln::Tensor p = kiln::native::zeros(shape, kiln::kFloat32);
    p.set_grad(kiln::native::randn(shape, kiln::kFloat32));
    params.push_back(p);
  }
  const double t_clip = time_per_call([&] { kiln::optim::clip_grad_norm_(params, 1e9); }, Stat::Best, min_s, 3);
  table.row("clip_grad_norm_", {t_clip * 1e3});
}

// torch_bench.py's rows: section \t case \t column \t value; the torch column is kept.
std::map<std::string, double> read_torch(const std::string& path) {
  std::ifstream in(path);
  KILN_CHECK(in.good(), "kiln_bench: cannot read torch results '", path, "'");
  std::map<std::string, double> out;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string field; std::getline(ss, field, '\t');) f.push_back(field);
    if (f.size() == 4 && f[2] == "torch") out[f[0] + "/" + f[1]] = std::stod(f[3]);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Config cfg;
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--threads" && i + 1 < argc) cfg.threads = std::stoi(argv[++i]);
      else if (arg == "--quick") cfg.quick = true;
      else if (arg == "--tsv") cfg.tsv = true;
      else if (arg == "--torch" && i + 1 < argc) cfg.torch = read_torch(argv[++i]);
      else {
        std::fprintf(stderr, "usage: %s [--threads N] [--quick] [--torch FILE] [--tsv]\n", argv[0]);
        return 2;
      }
    }
    if (cfg.threads > 0) kiln::set_num_threads(cfg.threads);
    kiln::manual_seed(0);
    if (!cfg.tsv) {
      std::printf("Kiln %s benchmark, %d threads (KILN_NUM_THREADS / --threads)%s\n", cfg.quick ? "quick" : "full",
                  kiln::get_num_threads(), cfg.torch.empty() ? "" : "; torch column from bench/torch_bench.py");
    }
    bench_matmul(cfg);
    bench_bandwidth(cfg);
    bench_overhead(cfg);
    bench_conv2d(cfg);
    bench_norm(cfg);
    bench_training_pieces(cfg);
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln::Error: %s\n", e.what());
    return 1;
  }
  return 0;
}
