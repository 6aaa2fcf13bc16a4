// CPU <-> CUDA parity of the matmul and convolution kernels: Backend::bmm
// (float32 with and without TF32, float64, bfloat16/float16, transposed and
// sliced operands, broadcast batches, beta/alpha, degenerate sizes) and
// conv2d with both backward products (groups, stride, padding, dilation,
// bias, asymmetric kernels), each called directly with poisoned outputs;
// the public matmul/linear/conv ops with backward; and autocast (a linear
// and a layer norm in bfloat16 on CUDA against the same casts on the CPU).
//
// float32 cases turn TF32 off explicitly: they must agree to 1e-5.
#include "cuda/parity_util.h"

#if __has_include("kiln/autograd/autocast.h")
#include "kiln/autograd/autocast.h"
#define KILN_PARITY_HAVE_AUTOCAST 1
#endif

namespace {

using namespace kiln;
using namespace kiln::testing::parity;
namespace F = kiln::nn::functional;

Backend& be(const Tensor& t) { return backend_of(t); }
std::string dn(DType d) { return short_name(d); }

// ---- bmm ----

struct Bmm {
  std::string name;
  int64_t B, M, K, N;
  DType dt = kFloat32;
  bool ta = false, tb = false;      // operands stored transposed ([B, K, M] / [B, N, K] memory)
  bool bcast_a = false, bcast_b = false;  // batch stride 0
  double beta = 0.0, alpha = 1.0;
  bool tf32 = false;
  bool transposed_out = false, sliced_a = false;
};

TensorList bmm_inputs(const Bmm& c, Generator& g) {
  const int64_t ba = c.bcast_a ? 1 : c.B, bb = c.bcast_b ? 1 : c.B;
  Tensor a = c.ta ? randn(g, {ba, c.K, c.M}, c.dt) : randn(g, {ba, c.M, c.sliced_a ? 2 * c.K : c.K}, c.dt);
  Tensor b = c.tb ? randn(g, {bb, c.N, c.K}, c.dt) : randn(g, {bb, c.K, c.N}, c.dt);
  return {a, b, randn(g, {c.B, c.M, c.N}, c.dt)};  // the last: out's contents when beta != 0
}

TensorList bmm_run(const Bmm& c, const TensorList& in) {
  const Device dev = in[0].device();
  Tf32Guard tf32(dev, c.tf32);
  Tensor a = c.ta ? native::transpose(in[0], 1, 2) : in[0];
  if (c.sliced_a) a = native::slice(a, 2, 0, std::nullopt, 2);  // neither last stride is 1
  Tensor b = c.tb ? native::transpose(in[1], 1, 2) : in[1];
  if (c.bcast_a) a = native::expand(a, {c.B, c.M, c.K});
  if (c.bcast_b) b = native::expand(b, {c.B, c.K, c.N});
  Tensor base = c.transposed_out ? poisoned({c.B, c.N, c.M}, c.dt, dev) : poisoned({c.B, c.M, c.N}, c.dt, dev);
  Tensor out = c.transposed_out ? native::transpose(base, 1, 2) : base;
  if (c.beta != 0.0) native::copy_(out, in[2]);
  if (is_reduced_float(c.dt) && dev.is_cpu()) {
    // The CPU backend has no 16-bit matmul: the reference is the native
    // op's float32 computation rounded once, which cuBLASLt also does.
    native::copy_(out, native::baddbmm(c.beta != 0.0 ? native::clone(out) : native::zeros_like(out), a, b, c.beta,
                                        c.alpha));
  } else {
    be(out).bmm(a, b, out, c.beta, c.alpha);
  }
  return {base};
}

std::vector<Case> bmm_cases() {
  const std::vector<Bmm> bs = {
      {"f32", 3, 33, 47, 29},
      {"f32_ta", 3, 33, 47, 29, kFloat32, true},
      {"f32_tb", 3, 33, 47, 29, kFloat32, false, true},
      {"f32_ta_tb", 3, 33, 47, 29, kFloat32, true, true},
      {"f32_bcast_a", 3, 33, 47, 29, kFloat32, false, false, true},
      {"f32_bcast_b_tb", 3, 33, 47, 29, kFloat32, false, true, false, true},
      {"f32_beta_alpha", 3, 33, 47, 29, kFloat32, false, false, false, false, 0.5, 2.0},
      {"f32_beta0_alpha_neg", 3, 33, 47, 29, kFloat32, false, false, false, false, 0.0, -1.5},
      {"f32_m1", 4, 1, 64, 40},
      {"f32_n1", 4, 40, 64, 1},
      {"f32_k1", 4, 20, 1, 30},
      {"f32_square_256", 2, 256, 256, 256},
      {"f32_transposed_out", 3, 33, 47, 29, kFloat32, false, false, false, false, 0.0, 1.0, false, true},
      {"f32_sliced_a", 3, 33, 47, 29, kFloat32, false, false, false, false, 0.0, 1.0, false, false, true},
      {"f64", 3, 33, 47, 29, kFloat64},
      {"f64_ta_tb_beta", 3, 33, 47, 29, kFloat64, true, true, false, false, 0.25, 3.0},
      {"bf16", 3, 33, 47, 29, kBFloat16},
      {"bf16_ta_bcast_b", 3, 64, 96, 32, kBFloat16, true, false, false, true},
      {"f16_tb", 3, 33, 47, 29, kFloat16, false, true},
      {"tf32", 2, 128, 256, 128, kFloat32, false, false, false, false, 0.0, 1.0, true},
      {"tf32_ta_tb", 2, 128, 256, 128, kFloat32, true, true, false, false, 0.0, 1.0, true},
  };
  std::vector<Case> cs;
  for (const Bmm& c : bs) {
    cs.push_back({"bmm_" + c.name, [c](Generator& g) { return bmm_inputs(c, g); },
                  [c](const TensorList& in) { return bmm_run(c, in); }, false,
                  c.tf32 ? std::optional<double>(kTF32Tol) : std::nullopt});
  }
  // The public ops: broadcasting, vectors, bias, beta/alpha; backward through them.
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    cs.push_back({"matmul_api_" + dn(dt),
                  [dt](Generator& g) {
                    return TensorList{randn(g, {2, 3, 9, 17}, dt), randn(g, {17, 11}, dt), randn(g, {17}, dt),
                                      randn(g, {3, 17, 5}, dt)};
                  },
                  [](const TensorList& in) {
                    Tf32Guard tf32(in[0].device(), false);
                    return TensorList{kiln::matmul(in[0], in[1]), kiln::matmul(in[0], in[2]),
                                      kiln::matmul(in[2], in[1]), kiln::matmul(in[0], in[3])};
                  },
                  true});
    // linear's [N] bias in the matmul (CUDA: cuBLASLt's BIAS epilogue), called
    // directly into poisoned outputs: row-major and transposed operands, one
    // and several batches.
    cs.push_back({"bmm_bias_" + dn(dt),
                  [dt](Generator& g) {
                    return TensorList{randn(g, {3, 37, 24}, dt), randn(g, {3, 24, 45}, dt), randn(g, {45}, dt),
                                      randn(g, {45, 24}, dt)};
                  },
                  [](const TensorList& in) {
                    Tf32Guard tf32(in[0].device(), false);
                    TensorList outs;
                    for (const Tensor& b : {in[1], native::unsqueeze(native::t(in[3]), 0)}) {
                      const Tensor a = b.size(0) == 1 ? native::narrow(in[0], 0, 0, 1) : in[0];
                      outs.push_back(with_poisoned({a.size(0), 37, 45}, a.dtype(), a.device(), [&](const Tensor& out) {
                        if (is_reduced_float(out.dtype()) && out.is_cpu()) {
                          // No 16-bit CPU matmul: the native op's float32 result rounded once.
                          native::copy_(out, native::baddbmm(native::expand(in[2], out.sizes()), a, b, 1, 1));
                        } else {
                          be(out).bmm_bias(a, b, in[2], out);
                        }
                      })[0]);
                    }
                    return outs;
                  }});
    cs.push_back({"linear_addmm_api_" + dn(dt),
                  [dt](Generator& g) {
                    return TensorList{randn(g, {4, 6, 24}, dt), randn(g, {10, 24}, dt), randn(g, {10}, dt),
                                      randn(g, {24, 10}, dt), randn(g, {5, 10}, dt), randn(g, {5, 24}, dt),
                                      randn(g, {3, 5, 24}, dt)};
                  },
                  [](const TensorList& in) {
                    Tf32Guard tf32(in[0].device(), false);
                    return TensorList{kiln::linear(in[0], in[1], in[2]), kiln::linear(in[0], in[1]),
                                      kiln::addmm(in[4], in[5], in[3], 0.5, 2.0),
                                      kiln::baddbmm(in[4], in[6], kiln::expand(in[3], {3, 24, 10}), 1.5, -1.0),
                                      kiln::mm(in[5], kiln::t(in[1]))};
                  },
                  true});
  }
  return cs;
}

KILN_PARITY_SUITE(BmmParity, bmm_cases);

// ---- conv2d ----

struct Conv {
  std::string name;
  int64_t n, cin, h, w, cout, kh, kw;
  Conv2dParams p;
  bool bias = true;
};

Conv2dParams params(std::array<int64_t, 2> stride, std::array<int64_t, 2> pad, std::array<int64_t, 2> dil,
                    int64_t groups) {
  Conv2dParams p;
  for (int i = 0; i < 2; ++i) {
    p.stride[i] = stride[i];
    p.padding[i] = pad[i];
    p.dilation[i] = dil[i];
  }
  p.groups = groups;
  return p;
}

const std::vector<Conv>& convs() {
  static const std::vector<Conv> cs = {
      {"3x3_pad1", 2, 4, 11, 9, 6, 3, 3, params({1, 1}, {1, 1}, {1, 1}, 1)},
      {"3x3_stride2_nobias", 2, 4, 11, 9, 6, 3, 3, params({2, 2}, {0, 0}, {1, 1}, 1), false},
      {"3x3_dilation2", 2, 4, 13, 12, 5, 3, 3, params({1, 1}, {2, 2}, {2, 2}, 1)},
      {"groups2", 2, 4, 10, 10, 6, 3, 3, params({1, 1}, {1, 1}, {1, 1}, 2)},
      {"depthwise", 2, 8, 12, 9, 8, 3, 3, params({1, 1}, {1, 1}, {1, 1}, 8)},
      {"1x1_stride2", 3, 16, 8, 8, 24, 1, 1, params({2, 2}, {0, 0}, {1, 1}, 1)},
      {"stem_7x7_s2", 2, 3, 32, 32, 8, 7, 7, params({2, 2}, {3, 3}, {1, 1}, 1)},
      {"3x5_asymmetric", 2, 3, 10, 13, 4, 3, 5, params({2, 1}, {1, 2}, {1, 2}, 1)},
      {"wide_64ch", 1, 64, 14, 14, 64, 3, 3, params({1, 1}, {1, 1}, {1, 1}, 1), false},
  };
  return cs;
}

// input, weight, bias, grad_out (all contiguous, as the kernels take them).
TensorList conv_inputs(const Conv& c, DType dt, Generator& g) {
  const DimVector out = native::conv2d_output_size({c.n, c.cin, c.h, c.w}, {c.cout, c.cin / c.p.groups, c.kh, c.kw}, c.p);
  return {randn(g, {c.n, c.cin, c.h, c.w}, dt), randn(g, {c.cout, c.cin / c.p.groups, c.kh, c.kw}, dt),
          c.bias ? randn(g, {c.cout}, dt) : Tensor(), randn(g, out, dt)};
}

enum class ConvPart { Forward, BackwardInput, BackwardWeight };

TensorList conv_run(const Conv& c, ConvPart part, bool tf32, const TensorList& in) {
  const Tensor &x = in[0], &w = in[1], &bias = in[2], &gout = in[3];
  const Device dev = x.device();
  Tf32Guard guard(dev, tf32);
  // The CPU backend convolves 16-bit floats in float32: there the reference
  // is the native op (float32, rounded once), as cuDNN computes them.
  const bool reference = is_reduced_float(x.dtype()) && dev.is_cpu();
  switch (part) {
    case ConvPart::Forward: {
      if (reference) return {native::conv2d(x, w, bias, c.p)};
      Tensor out = poisoned_like(gout);
      be(x).conv2d(x, w, bias, c.p, out);
      return {out};
    }
    case ConvPart::BackwardInput: {
      if (reference) return {native::conv2d_backward_input(gout, w, x.sizes(), c.p)};
      Tensor gi = poisoned_like(x);
      be(x).conv2d_backward_input(gout, w, c.p, gi);
      return {gi};
    }
    case ConvPart::BackwardWeight: {
      if (reference) {
        auto [gw, gb] = native::conv2d_backward_weight(gout, x, w.sizes(), c.p, c.bias);
        return {gw, gb};
      }
      Tensor gw = poisoned_like(w), gb = c.bias ? poisoned_like(bias) : Tensor();
      be(x).conv2d_backward_weight(gout, x, c.p, gw, gb);
      return {gw, gb};
    }
  }
  return {};
}

std::vector<Case> conv_cases() {
  std::vector<Case> cs;
  const std::vector<std::pair<ConvPart, std::string>> parts = {
      {ConvPart::Forward, "fwd"}, {ConvPart::BackwardInput, "bwd_input"}, {ConvPart::BackwardWeight, "bwd_weight"}};
  for (const Conv& c : convs()) {
    for (const auto& [part, pn] : parts) {
      for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
        cs.push_back({"conv2d_" + c.name + "_" + pn + "_" + dn(dt), [c, dt](Generator& g) { return conv_inputs(c, dt, g); },
                      [c, part](const TensorList& in) { return conv_run(c, part, false, in); }});
      }
      if (c.name == "3x3_pad1" || c.name == "stem_7x7_s2") {
        cs.push_back({"conv2d_" + c.name + "_" + pn + "_tf32", [c](Generator& g) { return conv_inputs(c, kFloat32, g); },
                      [c, part](const TensorList& in) { return conv_run(c, part, true, in); }, false, kTF32Tol});
      }
    }
  }
  // The public op with backward: strided (channels-last memory) and unbatched inputs.
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    cs.push_back({"conv2d_api_" + dn(dt),
                  [dt](Generator& g) {
                    return TensorList{randn(g, {2, 9, 10, 4}, dt), randn(g, {6, 2, 3, 3}, dt), randn(g, {6}, dt),
                                      randn(g, {4, 7, 8}, dt)};
                  },
                  [](const TensorList& in) {
                    Tf32Guard tf32(in[0].device(), false);
                    const Tensor nhwc = kiln::permute(in[0], {0, 3, 1, 2});  // [2, 4, 9, 10], channels last
                    return TensorList{F::conv2d(nhwc, in[1], in[2], 2, 1, 1, 2),
                                      F::conv2d(in[3], in[1], Tensor(), 1, {2, 0}, {1, 2}, 2)};
                  },
                  true});
  }
  return cs;
}

KILN_PARITY_SUITE(ConvParity, conv_cases);

// ---- autocast ----

#ifdef KILN_PARITY_HAVE_AUTOCAST
// Under autocast(cuda, bf16) a linear runs in bf16 and a layer norm in f32;
// the CPU reference spells those casts out.
TEST(CudaAutocast, LinearLayerNormMatchCpuCasts) {
  KILN_SKIP_WITHOUT_CUDA();
  Generator g(case_seed("autocast_linear_layer_norm"));
  const Tensor x = randn(g, {8, 16, 64}), w = randn(g, {96, 64}), b = randn(g, {96});
  const Tensor gamma = randn(g, {96}), beta = randn(g, {96});

  const Tensor y_ref = kiln::linear(x.to(kBFloat16), w.to(kBFloat16), b.to(kBFloat16));
  const Tensor z_ref = F::layer_norm(y_ref.to(kFloat32), {96}, gamma, beta);

  Tensor y, z;
  {
    AutocastGuard guard(gpu().type(), kBFloat16);
    y = kiln::linear(to_gpu(x), to_gpu(w), to_gpu(b));
    z = F::layer_norm(y, {96}, to_gpu(gamma), to_gpu(beta));
  }
  EXPECT_EQ(y.dtype(), kBFloat16) << "autocast runs linear in bf16";
  EXPECT_TRUE(parity_close(y, y_ref, 1e-2));
  EXPECT_TRUE(parity_close(z.to(kFloat32), z_ref, 1e-2));
}
#endif

}  // namespace
