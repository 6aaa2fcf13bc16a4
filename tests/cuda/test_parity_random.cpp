// CPU <-> CUDA parity of the counter-based random fills. Philox is keyed by
// (seed, offset), so the same call gives the same numbers on both devices:
// uniform, Bernoulli and randint draws must be bit-identical, normal draws
// equal to 1e-6 (float32) / 1e-12 (float64) (Box-Muller's log/sin/cos may
// round differently on the GPU); dropout and drop_path masks bit-identical.
// Backend::random is called directly with poisoned outputs (every kind,
// dtypes, sizes that are not a whole number of Philox blocks, nonzero
// offsets); the public factories run through the default generator, which
// the harness reseeds before each device's run.
#include "cuda/parity_util.h"

namespace {

using namespace kiln;
using namespace kiln::testing::parity;
namespace F = kiln::nn::functional;

Backend& be(const Tensor& t) { return backend_of(t); }
std::string dn(DType d) { return short_name(d); }

constexpr double kNormalTolF32 = 1e-6;
constexpr double kNormalTolF64 = 1e-12;

std::optional<double> tol_for(RandomKind kind, DType dt) {
  if (kind != RandomKind::Normal) return 0.0;  // identical bits
  if (dt == kFloat32) return kNormalTolF32;
  if (dt == kFloat64) return kNormalTolF64;
  return std::nullopt;  // 16-bit: by dtype
}

struct Draw {
  std::string name;
  RandomKind kind;
  DType dt;
  double a, b;
  int64_t n = 1001;  // not a multiple of 2 or 4 elements per block
  uint64_t seed = 12345, offset = 7;
  bool per_element_p = false;
};

std::vector<Case> random_cases() {
  const auto U = RandomKind::Uniform, N = RandomKind::Normal, B = RandomKind::Bernoulli, R = RandomKind::RandInt;
  const std::vector<Draw> draws = {
      {"uniform_f32_unit", U, kFloat32, 0.0, 1.0},
      {"uniform_f32_shifted", U, kFloat32, -2.0, 3.0},
      {"uniform_f64", U, kFloat64, -2.0, 3.0},
      {"uniform_bf16", U, kBFloat16, -2.0, 3.0},
      {"uniform_f16", U, kFloat16, -2.0, 3.0},
      {"uniform_f32_large", U, kFloat32, 0.0, 1.0, (1 << 20) + 1, 99, 0},
      {"uniform_f32_offset0", U, kFloat32, 0.0, 1.0, 1001, 1, 0},
      {"uniform_f64_big_seed_offset", U, kFloat64, 0.0, 1.0, 1001, 0xFEDCBA9876543210ull, (uint64_t{1} << 33) + 5},
      {"normal_f32", N, kFloat32, 1.0, 2.0},
      {"normal_f64", N, kFloat64, 1.0, 2.0},
      {"normal_bf16", N, kBFloat16, 0.0, 1.0},
      {"normal_f16", N, kFloat16, 0.0, 1.0},
      {"normal_f32_large", N, kFloat32, 0.0, 1.0, (1 << 20) + 3, 4242, 3},
      {"normal_f32_odd_count", N, kFloat32, 0.0, 1.0, 3},
      {"bernoulli_f32", B, kFloat32, 0.3, 0.0},
      {"bernoulli_f64", B, kFloat64, 0.3, 0.0},
      {"bernoulli_bf16", B, kBFloat16, 0.7, 0.0},
      {"bernoulli_bool", B, kBool, 0.5, 0.0},
      {"bernoulli_i64", B, kInt64, 0.3, 0.0},
      {"bernoulli_u8", B, kUInt8, 0.9, 0.0},
      {"bernoulli_f32_per_element_p", B, kFloat32, 0.0, 0.0, 1001, 12345, 7, true},
      {"bernoulli_bool_per_element_p", B, kBool, 0.0, 0.0, 4099, 77, 1, true},
      {"randint_i64", R, kInt64, -5, 17},
      {"randint_i64_wide", R, kInt64, -static_cast<double>(int64_t{1} << 40), static_cast<double>(int64_t{1} << 40)},
      {"randint_i32", R, kInt32, -1000, 1000},
      {"randint_u8", R, kUInt8, 0, 256},
      {"randint_f32", R, kFloat32, 0, 10},
      {"randint_i64_large", R, kInt64, 0, 1000003, (1 << 20) + 1, 5, 11},
  };
  std::vector<Case> cs;
  for (const Draw& d : draws) {
    cs.push_back({"random_" + d.name,
                  [d](Generator& g) {
                    // Probabilities (float64, contiguous, out's shape) when per element; else a device token.
                    return d.per_element_p ? TensorList{uniform(g, {d.n}, 0.0, 1.0, kFloat64)} : device_token();
                  },
                  [d](const TensorList& in) {
                    RandomSpec spec{d.kind, d.a, d.b, d.per_element_p ? in[0] : Tensor()};
                    return with_poisoned({d.n}, d.dt, in[0].device(),
                                         [&](const Tensor& out) { be(out).random(out, spec, d.seed, d.offset); });
                  },
                  false, tol_for(d.kind, d.dt)});
  }
  // The public factories through the default generator: consecutive draws
  // advance it the same way on both devices.
  auto opts = [](const TensorList& in, DType dt = kFloat32) { return TensorOptions().dtype(dt).device(in[0].device()); };
  cs.push_back({"api_uniform", [](Generator&) { return device_token(); },
                [opts](const TensorList& in) {
                  Tensor t = kiln::empty({53, 37}, opts(in));
                  Tensor tv = kiln::t(t);
                  tv.uniform_(-1.0, 4.0);  // a transposed view: drawn row-major in the view's order
                  return TensorList{kiln::rand({37, 53}, opts(in)), kiln::rand({5}, opts(in, kFloat64)), t,
                                    kiln::rand_like(t), kiln::rand({7, 3}, opts(in, kBFloat16))};
                },
                false, 0.0});
  cs.push_back({"api_integers_and_masks", [](Generator& g) { return TensorList{uniform(g, {37, 53}, 0.0, 1.0)}; },
                [opts](const TensorList& in) {
                  Tensor b = kiln::empty({37, 53}, opts(in));
                  b.bernoulli_(0.25);
                  return TensorList{kiln::randint(-3, 9, {37, 53}, opts(in, kInt64)), kiln::bernoulli(in[0]),
                                    kiln::bernoulli({37, 53}, 0.6, opts(in, kBool)), b};
                },
                false, 0.0});
  cs.push_back({"api_normal_f32", [](Generator&) { return device_token(); },
                [opts](const TensorList& in) {
                  Tensor t = kiln::empty({37, 53}, opts(in));
                  t.normal_(2.0, 0.5);
                  return TensorList{kiln::randn({37, 53}, opts(in)), t, kiln::randn_like(t)};
                },
                false, kNormalTolF32});
  cs.push_back({"api_normal_f64_own_generator", [](Generator&) { return device_token(); },
                [opts](const TensorList& in) {
                  Generator gen(31337);
                  return TensorList{kiln::randn({1001}, opts(in, kFloat64), &gen), kiln::randn({7}, opts(in, kFloat64), &gen)};
                },
                false, kNormalTolF64});
  // Dropout and drop_path: identical masks; the gradient is the same mask.
  for (DType dt : {kFloat32, kBFloat16}) {
    cs.push_back({"dropout_" + dn(dt), [dt](Generator& g) { return TensorList{randn(g, {64, 129}, dt)}; },
                  [](const TensorList& in) {
                    const Tensor y = F::dropout(in[0], 0.3, true), y2 = F::dropout(in[0], 0.5, true);
                    return TensorList{y, kiln::eq(y, 0), kiln::eq(y2, 0), F::dropout(in[0], 0.3, false)};
                  },
                  true});
  }
  cs.push_back({"drop_path_f32", [](Generator& g) { return TensorList{randn(g, {16, 5, 7})}; },
                [](const TensorList& in) {
                  const Tensor y = F::drop_path(in[0], 0.25, true), z = F::drop_path(in[0], 0.5, true, false);
                  return TensorList{y, z, kiln::eq(y, 0), kiln::eq(z, 0)};
                },
                true});
  return cs;
}

KILN_PARITY_SUITE(RandomParity, random_cases);

// The mask is a pure function of (seed, offset): the same bits again on
// the same device, and other bits from the next offset.
TEST(CudaRandom, SameSeedAndOffsetRepeatsOtherOffsetDiffers) {
  KILN_SKIP_WITHOUT_CUDA();
  auto draw = [](uint64_t offset) {
    Tensor out = poisoned({4096}, kFloat32, gpu());
    backend(gpu()).random(out, RandomSpec{RandomKind::Uniform, 0.0, 1.0, Tensor()}, 2024, offset);
    return kiln::testing::values(out);
  };
  EXPECT_EQ(draw(10), draw(10));
  EXPECT_NE(draw(10), draw(11));
}

}  // namespace
