// Philox4x32-10 and the random factories: known-answer vectors, seeding,
// generator state save/restore, independence from the thread count, and
// distribution sanity on 1M draws (bounds at 5 standard errors).
#include <cmath>
#include <map>

#include "kiln/core/native.h"
#include "kiln/core/parallel.h"
#include "kiln/core/philox.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::values;

namespace {
constexpr int64_t kDraws = 1000000;

struct Moments {
  double mean = 0, var = 0;
};
Moments moments(const std::vector<double>& v) {
  Moments m;
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= static_cast<double>(v.size() - 1);
  return m;
}

// Restores the thread count a test changes.
struct ThreadsGuard {
  int saved = get_num_threads();
  ~ThreadsGuard() { set_num_threads(saved); }
};
}  // namespace

TEST(Random, PhiloxKnownAnswers) {
  // Random123's kat_vectors for philox4x32 with 10 rounds.
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    const PhiloxBlock b = philox4x32_10(k.ctr, k.key);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(b.v[i], k.out[i]) << "word " << i;
  }
  // The (seed, counter) form puts the counter in words 0-1 and zeros in 2-3.
  const PhiloxBlock z = philox4x32_10(uint64_t{0}, uint64_t{0});
  EXPECT_EQ(z.v[0], 0x6627e8d5u);
  EXPECT_EQ(z.v[3], 0x9b00dbd8u);
  const uint64_t seed = 0x0123456789abcdefull, counter = 0xfedcba9876543210ull;
  const uint32_t ctr[4] = {0x76543210u, 0xfedcba98u, 0, 0}, key[2] = {0x89abcdefu, 0x01234567u};
  const PhiloxBlock a = philox4x32_10(seed, counter), b = philox4x32_10(ctr, key);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a.v[i], b.v[i]);
}

TEST(Random, ManualSeedReproduces) {
  auto draw_all = [] {
    std::vector<std::vector<double>> out;
    out.push_back(values(native::rand({100})));
    out.push_back(values(native::randn({101}, dtype(kFloat64))));
    out.push_back(values(native::randint(-5, 7, {99})));
    out.push_back(values(native::bernoulli({50}, 0.3)));
    out.push_back(values(native::bernoulli(native::full({3, 7}, 0.6))));
    out.push_back(values(native::rand({10}, dtype(kFloat16))));
    return out;
  };
  manual_seed(42);
  auto first = draw_all();
  manual_seed(42);
  EXPECT_EQ(draw_all(), first);
  manual_seed(43);
  EXPECT_NE(draw_all()[0], first[0]);
  // Consecutive draws come from fresh blocks.
  manual_seed(42);
  auto a = values(native::rand({100}));
  auto b = values(native::rand({100}));
  EXPECT_NE(a, b);
  EXPECT_EQ(a, first[0]);
}

TEST(Random, GeneratorStateSaveRestore) {
  Generator g(7);
  EXPECT_EQ(g.offset(), 0u);
  native::rand({10}, {}, &g);
  // 10 floats at 4 per block: 3 blocks.
  EXPECT_EQ(g.offset(), 3u);
  native::randn({5}, dtype(kFloat64), &g);  // 2 per block
  EXPECT_EQ(g.offset(), 6u);
  const uint64_t seed = g.seed(), offset = g.offset();
  auto x = values(native::randn({33}, {}, &g));
  auto y = values(native::randint(0, 1000, {17}, {}, &g));
  g.set_state(seed, offset);
  EXPECT_EQ(values(native::randn({33}, {}, &g)), x);
  EXPECT_EQ(values(native::randint(0, 1000, {17}, {}, &g)), y);
  // A generator with the same seed reproduces a fresh one; a default-seeded
  // generator is independent of the global one.
  Generator h(7);
  Generator h2(7);
  EXPECT_EQ(values(native::rand({20}, {}, &h)), values(native::rand({20}, {}, &h2)));
  manual_seed(7);
  Generator h3(7);
  EXPECT_EQ(values(native::rand({20})), values(native::rand({20}, {}, &h3)));
}

TEST(Random, IndependentOfThreadCount) {
  ThreadsGuard guard;
  auto draw = [] {
    Generator g(2024);
    std::vector<std::vector<double>> out;
    out.push_back(values(native::rand({200001}, {}, &g)));
    out.push_back(values(native::randn({100003}, dtype(kFloat64), &g)));
    out.push_back(values(native::randint(0, 10, {70001}, {}, &g)));
    out.push_back(values(native::bernoulli({90001}, 0.25, {}, &g)));
    return out;
  };
  set_num_threads(1);
  auto one = draw();
  set_num_threads(2);
  EXPECT_EQ(draw(), one);
  // A non-contiguous target gets the same values in row-major order.
  Generator g1(5), g2(5);
  Tensor c = native::rand({30, 40}, {}, &g1);
  Tensor nc = native::t(native::empty({40, 30}));
  native::random_(nc, RandomSpec{RandomKind::Uniform, 0.0, 1.0, {}}, &g2);
  EXPECT_EQ(values(nc), values(c));
}

TEST(Random, UniformMoments) {
  Generator g(11);
  for (DType dt : {kFloat32, kFloat64}) {
    auto v = values(native::rand({kDraws}, dtype(dt), &g));
    for (double x : v) ASSERT_TRUE(x >= 0.0 && x < 1.0) << x;
    Moments m = moments(v);
    EXPECT_NEAR(m.mean, 0.5, 5 * std::sqrt(1.0 / 12 / kDraws));
    EXPECT_NEAR(m.var, 1.0 / 12, 5 * std::sqrt((1.0 / 80 - 1.0 / 144) / kDraws));
  }
  // A [from, to) range.
  Tensor t = native::empty({kDraws}, dtype(kFloat64));
  native::random_(t, RandomSpec{RandomKind::Uniform, -2.0, 3.0, {}}, &g);
  auto v = values(t);
  for (double x : v) ASSERT_TRUE(x >= -2.0 && x < 3.0) << x;
  EXPECT_NEAR(moments(v).mean, 0.5, 5 * 5 * std::sqrt(1.0 / 12 / kDraws));
  // 16-bit floats: never rounded up to 1.
  for (DType dt : {kFloat16, kBFloat16}) {
    auto h = values(native::rand({kDraws}, dtype(dt), &g));
    for (double x : h) ASSERT_TRUE(x >= 0.0 && x < 1.0) << dtype_name(dt) << " " << x;
    EXPECT_NEAR(moments(h).mean, 0.5, 0.01);
  }
}

TEST(Random, NormalMoments) {
  Generator g(12);
  for (DType dt : {kFloat32, kFloat64}) {
    auto v = values(native::randn({kDraws}, dtype(dt), &g));
    Moments m = moments(v);
    EXPECT_NEAR(m.mean, 0.0, 5 * std::sqrt(1.0 / kDraws));
    EXPECT_NEAR(m.var, 1.0, 5 * std::sqrt(2.0 / kDraws));
    // Shape: the mass within one standard deviation.
    int64_t inside = 0;
    for (double x : v) inside += std::fabs(x) < 1.0;
    const double p = std::erf(1.0 / std::sqrt(2.0));
    EXPECT_NEAR(static_cast<double>(inside) / kDraws, p, 5 * std::sqrt(p * (1 - p) / kDraws));
  }
  Tensor t = native::empty({kDraws}, dtype(kFloat64));
  native::random_(t, RandomSpec{RandomKind::Normal, 3.0, 0.5, {}}, &g);
  Moments m = moments(values(t));
  EXPECT_NEAR(m.mean, 3.0, 5 * 0.5 / std::sqrt(kDraws));
  EXPECT_NEAR(m.var, 0.25, 5 * 0.25 * std::sqrt(2.0 / kDraws));
}

TEST(Random, RandintRangeAndFrequencies) {
  Generator g(13);
  Tensor r = native::randint(-3, 5, {kDraws}, {}, &g);
  EXPECT_EQ(r.dtype(), kInt64);
  std::map<int64_t, int64_t> counts;
  for (double x : values(r)) ++counts[static_cast<int64_t>(x)];
  EXPECT_EQ(counts.size(), 8u);
  const double p = 1.0 / 8;
  for (auto [k, c] : counts) {
    EXPECT_GE(k, -3);
    EXPECT_LT(k, 5);
    EXPECT_NEAR(static_cast<double>(c) / kDraws, p, 5 * std::sqrt(p * (1 - p) / kDraws)) << k;
  }
  Tensor r32 = native::randint(0, 3, {1000}, dtype(kInt32), &g);
  EXPECT_EQ(r32.dtype(), kInt32);
  for (double x : values(r32)) ASSERT_TRUE(x == 0 || x == 1 || x == 2);
  // Bounds beyond 32 bits.
  const int64_t lo = int64_t{1} << 40;
  for (double x : values(native::randint(lo, lo + 5, {100}, {}, &g))) {
    ASSERT_GE(x, static_cast<double>(lo));
    ASSERT_LT(x, static_cast<double>(lo + 5));
  }
  EXPECT_KILN_ERROR(native::randint(5, 5, {3}), "low < high");
}

TEST(Random, BernoulliRates) {
  Generator g(14);
  for (double p : {0.0, 0.3, 1.0}) {
    auto v = values(native::bernoulli({kDraws}, p, {}, &g));
    double ones = 0;
    for (double x : v) {
      ASSERT_TRUE(x == 0.0 || x == 1.0);
      ones += x;
    }
    EXPECT_NEAR(ones / kDraws, p, 5 * std::sqrt(p * (1 - p) / kDraws) + 1e-12) << p;
  }
  // Per-element probabilities: first half 0.1, second half 0.9, float64 output.
  Tensor probs = native::cat({native::full({kDraws / 2}, 0.1, dtype(kFloat64)), native::full({kDraws / 2}, 0.9, dtype(kFloat64))});
  Tensor b = native::bernoulli(probs, &g);
  EXPECT_EQ(b.dtype(), kFloat64);
  auto v = values(b);
  double lo = 0, hi = 0;
  for (int64_t i = 0; i < kDraws / 2; ++i) lo += v[i];
  for (int64_t i = kDraws / 2; i < kDraws; ++i) hi += v[i];
  const double n = kDraws / 2.0;
  EXPECT_NEAR(lo / n, 0.1, 5 * std::sqrt(0.09 / n));
  EXPECT_NEAR(hi / n, 0.9, 5 * std::sqrt(0.09 / n));
  EXPECT_KILN_ERROR(native::bernoulli({3}, 1.5), "p must be in [0, 1]");
  EXPECT_KILN_ERROR(native::bernoulli(native::ones({3}, dtype(kInt64))), "floating point");
  EXPECT_KILN_ERROR(native::rand({3}, dtype(kInt64)), "floating-point");
}
