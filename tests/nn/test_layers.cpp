// Parameterised layers: Linear, Conv2d, Embedding, LayerNorm, GroupNorm,
// BatchNorm. Each forward is compared with a float64 loop written here;
// default initialisations with PyTorch's distributions (bounds and moments);
// parameter/buffer names, shapes and dtypes as torch's; reprs; errors.
#include <kiln/kiln.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "nn/stats_util.h"
#include "test_util.h"

using namespace kiln;
using namespace kiln::nn;
using kiln::testing::all_close;
using kiln::testing::expect_normal;
using kiln::testing::expect_uniform;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

std::string str(const Module& m) {
  std::ostringstream os;
  os << m;
  return os.str();
}

std::vector<std::string> names(const OrderedDict<Tensor>& d) { return d.keys(); }

// y[n, o] = sum_i x[n, i] w[o, i] + b[o], in float64.
std::vector<double> ref_linear(const std::vector<double>& x, const std::vector<double>& w,
                               const std::vector<double>& b, int64_t rows, int64_t in, int64_t out) {
  std::vector<double> y(static_cast<size_t>(rows * out));
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (int64_t i = 0; i < in; ++i) s += x[n * in + i] * w[o * in + i];
      y[n * out + o] = s;
    }
  return y;
}

// Direct convolution (cross-correlation) with zero padding, float64.
std::vector<double> ref_conv2d(const std::vector<double>& x, const std::vector<double>& w,
                               const std::vector<double>& b, int64_t n, int64_t cin, int64_t h, int64_t wd,
                               int64_t cout, int64_t kh, int64_t kw, int64_t s, int64_t p, int64_t d, int64_t g,
                               int64_t& ho, int64_t& wo) {
  ho = (h + 2 * p - d * (kh - 1) - 1) / s + 1;
  wo = (wd + 2 * p - d * (kw - 1) - 1) / s + 1;
  const int64_t cin_g = cin / g, cout_g = cout / g;
  std::vector<double> y(static_cast<size_t>(n * cout * ho * wo));
  for (int64_t b_ = 0; b_ < n; ++b_)
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t i = 0; i < ho; ++i)
        for (int64_t j = 0; j < wo; ++j) {
          double acc = b.empty() ? 0.0 : b[o];
          const int64_t grp = o / cout_g;
          for (int64_t c = 0; c < cin_g; ++c)
            for (int64_t u = 0; u < kh; ++u)
              for (int64_t v = 0; v < kw; ++v) {
                const int64_t r = i * s - p + u * d, q = j * s - p + v * d;
                if (r < 0 || r >= h || q < 0 || q >= wd) continue;
                acc += x[((b_ * cin + grp * cin_g + c) * h + r) * wd + q] * w[((o * cin_g + c) * kh + u) * kw + v];
              }
          y[((b_ * cout + o) * ho + i) * wo + j] = acc;
        }
  return y;
}

// Normalises each of `groups` contiguous blocks of `size` values, then
// applies per-position affine values (gamma/beta indexed by pos_of(k)).
std::vector<double> ref_normalize(const std::vector<double>& x, int64_t groups, int64_t size, double eps) {
  std::vector<double> y(x.size());
  for (int64_t g = 0; g < groups; ++g) {
    double m = 0, v = 0;
    for (int64_t k = 0; k < size; ++k) m += x[g * size + k];
    m /= static_cast<double>(size);
    for (int64_t k = 0; k < size; ++k) v += (x[g * size + k] - m) * (x[g * size + k] - m);
    v /= static_cast<double>(size);
    for (int64_t k = 0; k < size; ++k) y[g * size + k] = (x[g * size + k] - m) / std::sqrt(v + eps);
  }
  return y;
}

}  // namespace

// ---- Linear ----

TEST(LinearLayer, ForwardMatchesMatmulReference) {
  Linear fc(5, 3);
  EXPECT_EQ(names(fc->named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(fc->weight.sizes(), IntArrayRef({3, 5}));
  EXPECT_EQ(fc->bias.sizes(), IntArrayRef({3}));
  EXPECT_EQ(fc->weight.dtype(), kFloat32);
  fc->to(kFloat64);
  const auto w = values(fc->weight), b = values(fc->bias);
  const auto xv = sample(4 * 5, -2, 2, 7);
  // 2-D, batched 3-D, and a transposed (non-contiguous) input.
  EXPECT_TRUE(all_close(fc(make({4, 5}, xv)), make({4, 3}, ref_linear(xv, w, b, 4, 5, 3)), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(fc(make({2, 2, 5}, xv)), make({2, 2, 3}, ref_linear(xv, w, b, 4, 5, 3)), 1e-12, 1e-12));
  Tensor xt = make({5, 4}, xv).t();
  std::vector<double> xt_rows = values(xt);
  EXPECT_TRUE(all_close(fc(xt), make({4, 3}, ref_linear(xt_rows, w, b, 4, 5, 3)), 1e-12, 1e-12));
  // float32.
  fc->to(kFloat32);
  Tensor y32 = fc(make({4, 5}, xv, kFloat32));
  EXPECT_EQ(y32.dtype(), kFloat32);
  EXPECT_TRUE(all_close(y32, make({4, 3}, ref_linear(values(make({4, 5}, xv, kFloat32)), values(fc->weight),
                                                     values(fc->bias), 4, 5, 3)),
                        1e-5, 1e-6));
}

TEST(LinearLayer, NoBiasAndGradients) {
  Linear fc(LinearOptions(3, 2).bias(false));
  fc->to(kFloat64);
  const auto xv = sample(6, -1, 1, 2);
  Tensor y = fc(make({2, 3}, xv));
  EXPECT_TRUE(all_close(y, make({2, 2}, ref_linear(xv, values(fc->weight), {}, 2, 3, 2)), 1e-12, 1e-12));
  kiln::sum(y).backward();
  // d sum(x W^T) / dW[o, i] = sum_n x[n, i].
  std::vector<double> expect;
  for (int o = 0; o < 2; ++o)
    for (int i = 0; i < 3; ++i) expect.push_back(xv[i] + xv[3 + i]);
  EXPECT_TRUE(all_close(fc->weight.grad(), make({2, 3}, expect), 1e-12, 1e-12));
}

TEST(LinearLayer, DefaultInitAsPyTorch) {
  Linear fc(400, 500);  // fan_in 400: weight and bias ~ U(-1/20, 1/20)
  expect_uniform(fc->weight, -0.05, 0.05);
  Linear wide(2500, 400);
  expect_uniform(wide->bias, -0.02, 0.02);
  // reset_parameters redraws.
  const auto before = values(fc->weight);
  fc->reset_parameters();
  EXPECT_NE(values(fc->weight), before);
  EXPECT_TRUE(fc->weight.requires_grad());
  EXPECT_TRUE(fc->weight.is_leaf());
  EXPECT_EQ(str(*fc), "Linear(in_features=400, out_features=500, bias=true)");
}

// ---- Conv2d ----

TEST(Conv2dLayer, ParametersDefaultsAndRepr) {
  Conv2d conv(Conv2dOptions(3, 16, 3));
  EXPECT_EQ(names(conv->named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(conv->weight.sizes(), IntArrayRef({16, 3, 3, 3}));
  EXPECT_EQ(conv->bias.sizes(), IntArrayRef({16}));
  EXPECT_EQ(str(*conv), "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1))");
  Conv2d plain(3, 16, 3);
  EXPECT_EQ(str(*plain), str(*conv));
  Conv2d full(Conv2dOptions(4, 8, {3, 5}).stride(2).padding(1).dilation(2).groups(2).bias(false));
  EXPECT_EQ(full->weight.sizes(), IntArrayRef({8, 2, 3, 5}));
  EXPECT_FALSE(full->bias.defined());
  EXPECT_EQ(str(*full),
            "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), dilation=(2, 2), groups=2, bias=false)");
  // fan_in = in / groups * kh * kw: 64 / 4 * 5 * 5 = 400 -> U(-1/20, 1/20).
  Conv2d big(Conv2dOptions(64, 256, 5).groups(4));
  expect_uniform(big->weight, -0.05, 0.05);
  Conv2d many(Conv2dOptions(16, 20000, 5));  // fan_in 400 again, 20000 biases
  expect_uniform(many->bias, -0.05, 0.05);
}

TEST(Conv2dLayer, ForwardMatchesDirectConvolution) {
  struct Case {
    int64_t cin, cout, k, s, p, d, g;
    bool bias;
  };
  for (const Case& c : {Case{3, 4, 3, 1, 0, 1, 1, true}, Case{4, 6, 3, 2, 1, 1, 2, true},
                        Case{2, 2, 2, 1, 2, 2, 1, false}, Case{4, 4, 3, 1, 1, 1, 4, true}}) {
    Conv2d conv(Conv2dOptions(c.cin, c.cout, c.k).stride(c.s).padding(c.p).dilation(c.d).groups(c.g).bias(c.bias));
    conv->to(kFloat64);
    const int64_t n = 2, h = 7, w = 6;
    const auto xv = sample(n * c.cin * h * w, -1, 1, 5);
    int64_t ho = 0, wo = 0;
    auto ref = ref_conv2d(xv, values(conv->weight), c.bias ? values(conv->bias) : std::vector<double>{}, n, c.cin, h,
                          w, c.cout, c.k, c.k, c.s, c.p, c.d, c.g, ho, wo);
    EXPECT_TRUE(all_close(conv(make({n, c.cin, h, w}, xv)), make({n, c.cout, ho, wo}, ref), 1e-10, 1e-12));
  }
}

TEST(Conv2dLayer, Errors) {
  EXPECT_KILN_ERROR(Conv2d(Conv2dOptions(3, 4, 3).groups(2)), "in_channels (3) must be divisible by groups (2)");
  EXPECT_KILN_ERROR(Conv2d(Conv2dOptions(4, 3, 3).groups(2)), "out_channels (3) must be divisible by groups (2)");
  EXPECT_KILN_ERROR(Conv2d(Conv2dOptions(4, 4, 0)), "kernel_size");
  EXPECT_KILN_ERROR(Conv2d(Conv2dOptions(4, 4, 3).stride(0)), "stride");
}

// ---- Embedding ----

TEST(EmbeddingLayer, InitPaddingAndForward) {
  Embedding emb(EmbeddingOptions(2000, 100).padding_idx(3));
  EXPECT_EQ(names(emb->named_parameters()), std::vector<std::string>{"weight"});
  EXPECT_EQ(emb->weight.sizes(), IntArrayRef({2000, 100}));
  auto w = values(emb->weight);
  for (int k = 0; k < 100; ++k) ASSERT_EQ(w[3 * 100 + k], 0.0);
  // N(0, 1) elsewhere: rows 4.. (the padding row excluded).
  expect_normal(emb->weight.slice(0, 4), 0.0, 1.0);
  EXPECT_EQ(str(*emb), "Embedding(2000, 100, padding_idx=3)");
  EXPECT_EQ(str(*Embedding(10, 4)), "Embedding(10, 4)");
  // Negative padding_idx counts from the end.
  Embedding neg(EmbeddingOptions(10, 4).padding_idx(-1));
  EXPECT_EQ(*neg->options.padding_idx(), 9);
  EXPECT_EQ(values(neg->weight.select(0, 9)), std::vector<double>(4, 0.0));

  Embedding small(5, 3);
  Tensor idx = native::reshape(native::tensor(std::vector<int64_t>{4, 0, 2, 2}), {2, 2});
  Tensor out = small(idx);
  EXPECT_EQ(out.sizes(), IntArrayRef({2, 2, 3}));
  auto sw = values(small->weight);
  std::vector<double> expect;
  for (int64_t r : {4, 0, 2, 2})
    for (int k = 0; k < 3; ++k) expect.push_back(sw[r * 3 + k]);
  EXPECT_EQ(values(out), expect);
  EXPECT_KILN_ERROR(Embedding(EmbeddingOptions(10, 4).padding_idx(10)), "padding_idx must be within num_embeddings");
  EXPECT_KILN_ERROR(Embedding(EmbeddingOptions(10, 4).padding_idx(-11)), "padding_idx must be within num_embeddings");
}

TEST(EmbeddingLayer, FromPretrainedSharesAndFreezes) {
  Tensor table = make({3, 2}, {1, 2, 3, 4, 5, 6});
  Embedding emb = Embedding::from_pretrained(table);
  EXPECT_EQ(emb->weight.data_ptr(), table.data_ptr());
  EXPECT_EQ(emb->weight.dtype(), kFloat64);
  EXPECT_FALSE(emb->weight.requires_grad());
  EXPECT_EQ(emb->options.num_embeddings(), 3);
  Embedding trainable = Embedding::from_pretrained(table, /*freeze=*/false, 0);
  EXPECT_TRUE(trainable->weight.requires_grad());
  EXPECT_EQ(*trainable->options.padding_idx(), 0);
  EXPECT_KILN_ERROR(Embedding::from_pretrained(kiln::zeros({3})), "2-D tensor");
}

// ---- LayerNorm, GroupNorm ----

TEST(LayerNormLayer, ParametersForwardAndRepr) {
  LayerNorm ln(LayerNormOptions({3, 4}).eps(1e-6));
  EXPECT_EQ(names(ln->named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(values(ln->weight), std::vector<double>(12, 1.0));
  EXPECT_EQ(values(ln->bias), std::vector<double>(12, 0.0));
  EXPECT_EQ(str(*ln), "LayerNorm((3, 4), eps=1e-06, elementwise_affine=true, bias=true)");
  ln->to(kFloat64);
  init::uniform_(ln->weight, 0.5, 1.5);
  init::uniform_(ln->bias, -1, 1);
  const auto xv = sample(2 * 3 * 4, -3, 3, 9);
  auto ref = ref_normalize(xv, 2, 12, 1e-6);
  auto g = values(ln->weight), b = values(ln->bias);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = ref[i] * g[i % 12] + b[i % 12];
  EXPECT_TRUE(all_close(ln(make({2, 3, 4}, xv)), make({2, 3, 4}, ref), 1e-10, 1e-12));

  LayerNorm plain(LayerNormOptions({4}).elementwise_affine(false));
  EXPECT_TRUE(plain->named_parameters().empty());
  EXPECT_EQ(str(*plain), "LayerNorm((4,), eps=1e-05, elementwise_affine=false, bias=false)");
  LayerNorm no_bias(LayerNormOptions({4}).bias(false));
  EXPECT_EQ(names(no_bias->named_parameters()), std::vector<std::string>{"weight"});
  LayerNorm from_vector(std::vector<int64_t>{768});
  EXPECT_EQ(from_vector->weight.sizes(), IntArrayRef({768}));
}

TEST(GroupNormLayer, ParametersForwardAndRepr) {
  GroupNorm gn(2, 6);
  EXPECT_EQ(names(gn->named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(str(*gn), "GroupNorm(2, 6, eps=1e-05, affine=true, bias=true)");
  gn->to(kFloat64);
  init::uniform_(gn->weight, 0.5, 1.5);
  init::uniform_(gn->bias, -1, 1);
  const int64_t n = 2, c = 6, hw = 5;
  const auto xv = sample(n * c * hw, -2, 2, 4);
  auto ref = ref_normalize(xv, n * 2, 3 * hw, 1e-5);
  auto g = values(gn->weight), b = values(gn->bias);
  for (size_t i = 0; i < ref.size(); ++i) {
    const size_t ch = (i / hw) % c;
    ref[i] = ref[i] * g[ch] + b[ch];
  }
  EXPECT_TRUE(all_close(gn(make({n, c, hw}, xv)), make({n, c, hw}, ref), 1e-10, 1e-12));
  GroupNorm plain(GroupNormOptions(3, 6).affine(false).eps(1e-3));
  EXPECT_TRUE(plain->named_parameters().empty());
  EXPECT_EQ(str(*plain), "GroupNorm(3, 6, eps=0.001, affine=false, bias=false)");
  EXPECT_KILN_ERROR(GroupNorm(4, 6), "num_channels (6) must be divisible by num_groups (4)");
}

// ---- BatchNorm ----

TEST(BatchNormLayer, BuffersAsTorch) {
  BatchNorm2d bn(4);
  EXPECT_EQ(names(bn->named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(names(bn->named_buffers()),
            (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
  EXPECT_EQ(bn->state_dict().keys(),
            (std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}));
  EXPECT_EQ(values(bn->running_mean), std::vector<double>(4, 0.0));
  EXPECT_EQ(values(bn->running_var), std::vector<double>(4, 1.0));
  EXPECT_EQ(bn->num_batches_tracked.dtype(), kInt64);
  EXPECT_EQ(bn->num_batches_tracked.dim(), 0);
  EXPECT_EQ(str(*bn), "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=true, bias=true, track_running_stats=true)");
  BatchNorm2d bare(BatchNorm2dOptions(3).affine(false).track_running_stats(false).momentum(std::nullopt));
  EXPECT_TRUE(bare->named_parameters().empty());
  EXPECT_TRUE(bare->named_buffers().empty());
  EXPECT_EQ(str(*bare), "BatchNorm2d(3, eps=1e-05, momentum=None, affine=false, bias=false, track_running_stats=false)");
  // to(dtype) leaves the counter int64.
  bn->to(kFloat64);
  EXPECT_EQ(bn->running_mean.dtype(), kFloat64);
  EXPECT_EQ(bn->num_batches_tracked.dtype(), kInt64);
}

TEST(BatchNormLayer, TrainingUpdatesRunningStatsEvalUsesThem) {
  BatchNorm2d bn(BatchNorm2dOptions(2).momentum(0.25));
  bn->to(kFloat64);
  const int64_t n = 3, c = 2, hw = 4;
  const auto xv = sample(n * c * hw, -2, 3, 6);
  // Per-channel batch statistics.
  std::vector<double> mean(c, 0), var(c, 0);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t b = 0; b < n; ++b)
      for (int64_t k = 0; k < hw; ++k) mean[ch] += xv[(b * c + ch) * hw + k];
    mean[ch] /= n * hw;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t k = 0; k < hw; ++k) var[ch] += std::pow(xv[(b * c + ch) * hw + k] - mean[ch], 2);
    var[ch] /= n * hw;  // biased, for normalising
  }
  Tensor x = make({n, c, 2, 2}, xv);
  Tensor y = bn(x);
  std::vector<double> ref(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t ch = (i / hw) % c;
    ref[i] = (xv[i] - mean[ch]) / std::sqrt(var[ch] + 1e-5);
  }
  EXPECT_TRUE(all_close(y, make({n, c, 2, 2}, ref), 1e-10, 1e-12));
  const double unbias = double(n * hw) / double(n * hw - 1);
  std::vector<double> rm(c), rv(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    rm[ch] = 0.25 * mean[ch];
    rv[ch] = 0.75 + 0.25 * var[ch] * unbias;
  }
  EXPECT_TRUE(all_close(bn->running_mean, make({c}, rm), 1e-12, 1e-14));
  EXPECT_TRUE(all_close(bn->running_var, make({c}, rv), 1e-12, 1e-14));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);

  bn->eval();
  Tensor ye = bn(x);
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t ch = (i / hw) % c;
    ref[i] = (xv[i] - rm[ch]) / std::sqrt(rv[ch] + 1e-5);
  }
  EXPECT_TRUE(all_close(ye, make({n, c, 2, 2}, ref), 1e-10, 1e-12));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);  // eval does not count
  bn->reset_running_stats();
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 0);
  EXPECT_EQ(values(bn->running_var), std::vector<double>(2, 1.0));
}

TEST(BatchNormLayer, CumulativeAverageWithoutMomentum) {
  BatchNorm1d bn(BatchNorm1dOptions(1).momentum(std::nullopt).affine(false));
  bn->to(kFloat64);
  bn(make({2, 1}, {1.0, 3.0}));  // mean 2
  bn(make({2, 1}, {5.0, 7.0}));  // mean 6
  // Cumulative average of the batch means: (2 + 6) / 2.
  EXPECT_TRUE(all_close(bn->running_mean, make({1}, {4.0}), 1e-12, 1e-14));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 2);
  EXPECT_KILN_ERROR(bn(kiln::zeros({2, 1, 2, 2}, kFloat64)), "expected 2D or 3D input");
  BatchNorm2d bn2(2);
  EXPECT_KILN_ERROR(bn2(kiln::zeros({2, 2})), "expected 4D input (got 2D input");
}
