// CPU <-> CUDA parity of the multi-tensor kernels behind gradient clipping
// and loss scaling: Backend::foreach_norm (p = 1, 2, inf; called directly
// with a poisoned output, and through native::foreach_norm), foreach_mul
// and amp_unscale (the scaled tensors bit for bit, and the found_inf flag),
// over lists mixing contiguous, transposed, permuted, sliced (not dense),
// 0-dim and empty tensors, with inf/NaN sprinkled in, in f32, f64, bf16 and
// f16; lists longer than one launch's table (more than 64 tensors, more
// than 320 chunks of 65536 elements). Then the device rules of the native
// entry points and gradient clipping across devices.
#include "cuda/parity_util.h"

namespace {

using namespace kiln;
using namespace kiln::testing::parity;

std::string dn(DType d) { return short_name(d); }
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Base shapes of the standard list; views() turns them into the layouts.
const std::vector<std::vector<int64_t>> kShapes = {{33, 20}, {20, 33}, {3, 5, 7}, {12, 40}, {}, {1}, {0, 3}, {70000}};

TensorList list_inputs(Generator& g, DType dt, double p_special) {
  TensorList in;
  for (const auto& s : kShapes) {
    Tensor t = randn(g, s, dt);
    if (p_special > 0) {
      t = sprinkle(g, t, p_special, kInf);
      t = sprinkle(g, t, p_special / 2, kNaN);
    }
    in.push_back(t);
  }
  return in;
}

// The layouts the kernels see: as is, transposed (dense, read flat),
// permuted 3-D, every other row of columns 5..29 (not dense: a copy), 0-dim,
// one element, empty (norm 0 from the backends), and a 70000-element vector
// (two chunks).
TensorList views(const TensorList& in) {
  return {in[0],
          native::t(in[1]),
          native::permute(in[2], {2, 0, 1}),
          native::slice(native::slice(in[3], 0, 1, std::nullopt, 2), 1, 5, 30),
          in[4],
          in[5],
          in[6],
          in[7]};
}

// Many tensors: 80 small ones (past the 64 tensors one table holds) and one
// of 330 chunks (past the 320 blocks of a table).
TensorList many_inputs(Generator& g, DType dt) {
  TensorList in;
  for (int i = 0; i < 80; ++i) in.push_back(randn(g, {1 + (i * 37) % 300}, dt));
  in.push_back(randn(g, {330 * 65536 + 17}, dt));
  return in;
}

DType stat_of(DType d) { return d == kFloat64 ? kFloat64 : kFloat32; }

TensorList norm_direct(const TensorList& ts, double p) {
  return with_poisoned({static_cast<int64_t>(ts.size())}, stat_of(ts[0].dtype()), ts[0].device(),
                       [&](const Tensor& out) { backend_of(ts[0]).foreach_norm(ts, p, out); });
}

// Clones of the bases (the inputs stay as they were), their views scaled in place.
template <typename F>
TensorList scaled(const TensorList& in, const F& scale_views) {
  TensorList bases;
  for (const Tensor& t : in) bases.push_back(native::clone(t));
  scale_views(views(bases));
  return bases;
}

std::vector<Case> foreach_cases() {
  std::vector<Case> cs;
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16}) {
    for (double p : {1.0, 2.0, kInf}) {
      const std::string pn = p == kInf ? "inf" : std::to_string(static_cast<int>(p));
      cs.push_back({"norm_p" + pn + "_" + dn(dt), [dt](Generator& g) { return list_inputs(g, dt, 0); },
                    [p](const TensorList& in) { return norm_direct(views(in), p); }});
      cs.push_back({"norm_special_p" + pn + "_" + dn(dt), [dt](Generator& g) { return list_inputs(g, dt, 0.01); },
                    [p](const TensorList& in) { return norm_direct(views(in), p); }});
    }
    // With empty tensors (norm 0), through the native entry point.
    cs.push_back({"native_norm_with_empty_" + dn(dt), [dt](Generator& g) { return list_inputs(g, dt, 0); },
                  [](const TensorList& in) {
                    return TensorList{native::foreach_norm(views(in), 2), native::foreach_norm(views(in), 1)};
                  }});
    cs.push_back({"mul_" + dn(dt), [dt](Generator& g) { return list_inputs(g, dt, 0.01); },
                  [](const TensorList& in) {
                    const TensorOptions f64 = TensorOptions().dtype(kFloat64).device(in[0].device());
                    const Tensor s = native::scalar_tensor(0.1234567, f64);
                    return scaled(in, [&](const TensorList& v) { backend_of(v[0]).foreach_mul(v, s); });
                  },
                  false, 0.0});
    for (double start : {0.0, 0.5}) {
      for (double p_special : {0.0, 0.002}) {
        const std::string name = std::string("unscale_") + (p_special > 0 ? "nonfinite_" : "finite_") +
                                 (start > 0 ? "flag_set_" : "") + dn(dt);
        cs.push_back({name, [dt, p_special](Generator& g) { return list_inputs(g, dt, p_special); },
                      [start](const TensorList& in) {
                        const TensorOptions f32 = TensorOptions().dtype(kFloat32).device(in[0].device());
                        Tensor found = native::full({1}, start, f32);
                        const Tensor inv = native::scalar_tensor(1.0 / 65536.0 * 3.0, f32);
                        TensorList out = scaled(in, [&](const TensorList& v) {
                          backend_of(v[0]).amp_unscale(v, inv, found);
                        });
                        out.push_back(found);
                        return out;
                      },
                      false, 0.0});
      }
    }
  }
  for (DType dt : {kFloat32, kBFloat16}) {
    for (double p : {2.0, kInf}) {
      cs.push_back({std::string("norm_many_chunks_p") + (p == kInf ? "inf_" : "2_") + dn(dt),
                    [dt](Generator& g) { return many_inputs(g, dt); },
                    [p](const TensorList& in) { return norm_direct(in, p); }});
    }
    cs.push_back({"mul_many_chunks_" + dn(dt), [dt](Generator& g) { return many_inputs(g, dt); },
                  [](const TensorList& in) {
                    TensorList out;
                    for (const Tensor& t : in) out.push_back(native::clone(t));
                    // A float32 scale on the device, then a 0-dim CPU one (moved as a number).
                    const TensorOptions f32 = TensorOptions().dtype(kFloat32).device(in[0].device());
                    native::foreach_mul_(out, native::scalar_tensor(0.75, f32));
                    native::foreach_mul_(out, native::scalar_tensor(1.5));
                    return out;
                  },
                  false, 0.0});
  }
  // Mixed dtypes through the native entry points: one kernel per dtype, results in list order.
  cs.push_back({"native_mixed_dtypes",
                [](Generator& g) {
                  return TensorList{randn(g, {300}, kFloat32), randn(g, {7, 9}, kBFloat16), randn(g, {65537}, kFloat64),
                                    randn(g, {5}, kFloat32)};
                },
                [](const TensorList& in) {
                  TensorList out = {native::foreach_norm(in, 2), native::foreach_norm(in, kInf),
                                    native::foreach_norm(in, 3.0)};
                  const TensorOptions f32 = TensorOptions().dtype(kFloat32).device(in[0].device());
                  TensorList work;
                  for (const Tensor& t : in) work.push_back(native::clone(t));
                  Tensor found = native::zeros({}, f32);
                  native::amp_unscale_(work, native::scalar_tensor(0.5, f32), found);
                  for (const Tensor& t : work) out.push_back(t);
                  out.push_back(found);
                  return out;
                },
                false, 1e-5});  // float32 tensors' norms, promoted to float64
  return cs;
}

KILN_PARITY_SUITE(ForeachParity, foreach_cases);

// ---- device rules (need a GPU; not parity) ----

#ifndef KILN_PARITY_CPU_SELFTEST
TEST(ForeachDevices, MixedDevicesInOneCall) {
  KILN_SKIP_WITHOUT_CUDA();
  const Device cuda(kCUDA);
  const TensorOptions f32 = TensorOptions().dtype(kFloat32);
  const Tensor on_cpu = native::full({3}, 2.0, f32), on_gpu = native::full({4}, 3.0, f32.device(cuda));
  // Norms group by device; the result is on the first tensor's device.
  const Tensor n = native::foreach_norm({on_gpu, on_cpu}, 2);
  EXPECT_TRUE(n.device().is_cuda());
  EXPECT_TRUE(kiln::testing::all_close(n, kiln::testing::make({2}, {6.0, std::sqrt(12.0)}), 1e-6, 0));
  // A scale on the GPU cannot scale CPU tensors (a 0-dim CPU scale can scale GPU ones).
  EXPECT_KILN_ERROR(native::foreach_mul_({on_gpu, on_cpu}, native::scalar_tensor(2.0, f32.device(cuda))),
                    "expected all tensors to be on the same device");
  native::foreach_mul_({on_gpu}, native::scalar_tensor(2.0, f32));
  EXPECT_EQ(kiln::testing::values(on_gpu)[0], 6.0);
  // amp_unscale_: the tensors, inv_scale and found_inf share one device.
  const Tensor found = native::zeros({1}, f32.device(cuda)), inv = native::ones({1}, f32.device(cuda));
  EXPECT_KILN_ERROR(native::amp_unscale_({on_gpu, on_cpu}, inv, found),
                    "expected all tensors to be on the same device");
  EXPECT_KILN_ERROR(native::amp_unscale_({on_gpu}, native::ones({1}, f32), found), "inv_scale is on");
}

TEST(ForeachDevices, ClipGradNormAcrossDevices) {
  KILN_SKIP_WITHOUT_CUDA();
  const Device cuda(kCUDA);
  Tensor a = native::zeros({2}).requires_grad_(true);
  a.set_grad(kiln::testing::make({2}, {3.0, 0.0}, kFloat32));
  Tensor b = native::zeros({1}, TensorOptions().device(cuda)).requires_grad_(true);
  b.set_grad(native::to(kiln::testing::make({1}, {4.0}, kFloat32), cuda));
  const Tensor total = optim::clip_grad_norm_({a, b}, 1.0);
  EXPECT_TRUE(total.device().is_cpu());
  EXPECT_NEAR(total.item<double>(), 5.0, 1e-6);
  EXPECT_NEAR(kiln::testing::values(a.grad())[0], 0.6, 1e-6);
  EXPECT_NEAR(kiln::testing::values(b.grad())[0], 0.8, 1e-6);
}
#endif

}  // namespace
