// native::conv2d and its backward products (and through them the CPU
// kernels: im2col GEMM, 1x1 direct GEMM, depthwise loops) against the naive
// float64 loop in conv_reference.h; unbatched, strided-view, empty and
// 16-bit cases; the argument errors.
#include <string>
#include <vector>

#include "conv_reference.h"
#include "kiln/core/native.h"
#include "kiln/core/parallel.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::all_close;
using kiln::testing::conv_ref_shape;
using kiln::testing::conv_reference;
using kiln::testing::ConvSpec;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

struct Case {
  std::string name;
  std::vector<int64_t> x, w;
  ConvSpec s;
  bool bias = true;
};

ConvSpec spec(std::vector<int64_t> stride, std::vector<int64_t> pad, std::vector<int64_t> dil = {1, 1},
              int64_t groups = 1) {
  ConvSpec s;
  for (int d = 0; d < 2; ++d) {
    s.stride[d] = stride[d];
    s.padding[d] = pad[d];
    s.dilation[d] = dil[d];
  }
  s.groups = groups;
  return s;
}

Conv2dParams params(const ConvSpec& s) {
  return native::conv2d_params({s.stride[0], s.stride[1]}, {s.padding[0], s.padding[1]},
                               {s.dilation[0], s.dilation[1]}, s.groups);
}

// Every path of the kernels: general GEMM (with several column tiles, some
// starting mid-row), 1x1 direct GEMM, depthwise loops, and on AVX-512 the
// packed float32 kernels (channel counts that fill some 8-row blocks and not
// the last, K not a multiple of 48); strides, padding and dilation per axis;
// groups; batch sizes that do and do not divide among threads.
std::vector<Case> cases() {
  return {
      {"3x3 pad1", {2, 3, 7, 6}, {4, 3, 3, 3}, spec({1, 1}, {1, 1})},
      {"3x3 stride2", {2, 3, 9, 8}, {5, 3, 3, 3}, spec({2, 2}, {1, 1})},
      {"stride(2,1) pad(0,2) 3x2", {1, 2, 8, 7}, {3, 2, 3, 2}, spec({2, 1}, {0, 2}), false},
      {"dilation(2,3)", {2, 2, 9, 10}, {3, 2, 3, 3}, spec({1, 1}, {2, 1}, {2, 3})},
      {"groups2", {2, 4, 6, 6}, {6, 2, 3, 3}, spec({1, 1}, {1, 1}, {1, 1}, 2)},
      {"groups3 stride2 dil2", {3, 6, 11, 9}, {3, 2, 3, 2}, spec({2, 2}, {1, 1}, {2, 2}, 3)},
      {"depthwise", {2, 5, 8, 8}, {5, 1, 3, 3}, spec({1, 1}, {1, 1}, {1, 1}, 5)},
      {"depthwise x2 stride2", {3, 4, 9, 7}, {8, 1, 3, 3}, spec({2, 2}, {1, 1}, {1, 1}, 4), false},
      {"depthwise 5x3 dil", {2, 3, 10, 9}, {3, 1, 5, 3}, spec({1, 2}, {2, 3}, {1, 2}, 3)},
      {"1x1", {3, 8, 5, 6}, {6, 8, 1, 1}, spec({1, 1}, {0, 0})},
      {"1x1 no bias", {2, 8, 5, 6}, {6, 8, 1, 1}, spec({1, 1}, {0, 0}), false},
      {"1x1 stride2", {2, 8, 7, 6}, {4, 8, 1, 1}, spec({2, 2}, {0, 0})},
      {"1x1 pad1", {2, 3, 4, 4}, {2, 3, 1, 1}, spec({1, 1}, {1, 1})},
      {"1x1 groups2", {2, 8, 5, 5}, {4, 4, 1, 1}, spec({1, 1}, {0, 0}, {1, 1}, 2)},
      {"kernel = input", {2, 3, 4, 5}, {2, 3, 4, 5}, spec({1, 1}, {0, 0})},
      {"batch1 1x3", {1, 3, 5, 7}, {4, 3, 1, 3}, spec({1, 1}, {0, 1})},
      {"stride3 tail unused", {2, 2, 10, 11}, {3, 2, 2, 2}, spec({3, 3}, {0, 0})},
      {"padding > kernel", {1, 2, 3, 3}, {2, 2, 2, 2}, spec({1, 1}, {3, 3})},
      {"20 channels, K = 63", {2, 7, 10, 9}, {20, 7, 3, 3}, spec({1, 1}, {1, 1})},
      {"20 channels stride2", {3, 7, 11, 10}, {20, 7, 3, 3}, spec({2, 2}, {1, 1})},
      {"column tiles", {2, 64, 20, 21}, {4, 64, 3, 3}, spec({1, 1}, {1, 1})},
      {"column tiles 1x1", {2, 80, 30, 30}, {24, 80, 1, 1}, spec({1, 1}, {0, 0})},
      {"column tiles N=3", {3, 16, 40, 37}, {8, 16, 3, 3}, spec({1, 1}, {1, 1})},
  };
}

struct Tensors {
  Tensor x, w, b, go;
  kiln::testing::ConvRef ref;
  std::vector<int64_t> y_shape;
};

// Inputs of dtype dt and the reference computed from their (rounded) values.
Tensors setup(const Case& c, DType dt) {
  Tensors t;
  t.x = make(c.x, sample(numel_of(c.x), -1, 1, 1), dt);
  t.w = make(c.w, sample(numel_of(c.w), -1, 1, 2), dt);
  if (c.bias) t.b = make({c.w[0]}, sample(c.w[0], -1, 1, 3), dt);
  t.y_shape = conv_ref_shape(c.x, c.w, c.s);
  t.go = make(t.y_shape, sample(numel_of(t.y_shape), -1, 1, 4), dt);
  t.ref = conv_reference(values(t.x), c.x, values(t.w), c.w, c.bias ? values(t.b) : std::vector<double>{},
                         values(t.go), c.s);
  return t;
}

void check_all(const Case& c, DType dt, double rtol, double atol) {
  SCOPED_TRACE(c.name + " " + dtype_name(dt));
  Tensors t = setup(c, dt);
  const Conv2dParams p = params(c.s);
  Tensor y = native::conv2d(t.x, t.w, t.b, p);
  EXPECT_EQ(y.dtype(), dt);
  EXPECT_TRUE(all_close(y, make(t.y_shape, t.ref.y), rtol, atol));
  EXPECT_TRUE(all_close(native::conv2d_backward_input(t.go, t.w, t.x.sizes(), p), make(c.x, t.ref.gx), rtol, atol));
  auto [gw, gb] = native::conv2d_backward_weight(t.go, t.x, t.w.sizes(), p, true);
  EXPECT_TRUE(all_close(gw, make(c.w, t.ref.gw), rtol, atol));
  EXPECT_TRUE(all_close(gb, make({c.w[0]}, t.ref.gb), rtol, atol));
  auto [gw2, none] = native::conv2d_backward_weight(t.go, t.x, t.w.sizes(), p);
  EXPECT_FALSE(none.defined());
  EXPECT_TRUE(all_close(gw2, gw, 0, 0));
}

}  // namespace

TEST(Conv2d, Float64AgainstReference) {
  for (const Case& c : cases()) check_all(c, kFloat64, 1e-12, 1e-12);
}

TEST(Conv2d, Float32AgainstReference) {
  for (const Case& c : cases()) check_all(c, kFloat32, 1e-5, 1e-4);
}

// Items split evenly among threads, items left over for BLAS's threads, and
// everything on one thread must all give the reference (float32 also takes
// the AVX-512 path where the build has it).
TEST(Conv2d, ThreadCounts) {
  const int saved = get_num_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (const Case& c : cases()) {
      check_all(c, kFloat64, 1e-12, 1e-12);
      check_all(c, kFloat32, 1e-5, 1e-4);
    }
  }
  set_num_threads(saved);
}

TEST(Conv2d, TorchStyleArguments) {
  Case c{"torch args", {2, 4, 7, 6}, {6, 2, 3, 2}, spec({2, 1}, {1, 0}, {1, 2}, 2)};
  Tensors t = setup(c, kFloat64);
  EXPECT_TRUE(all_close(native::conv2d(t.x, t.w, t.b, {2, 1}, {1, 0}, {1, 2}, 2), make(t.y_shape, t.ref.y)));
  // One value stands for both dims.
  Case d{"scalar args", {1, 2, 6, 6}, {3, 2, 3, 3}, spec({2, 2}, {1, 1})};
  Tensors u = setup(d, kFloat64);
  EXPECT_TRUE(all_close(native::conv2d(u.x, u.w, u.b, 2, 1), make(u.y_shape, u.ref.y)));
}

TEST(Conv2d, Unbatched) {
  for (const Case& c : {Case{"unbatched", {1, 3, 6, 5}, {4, 3, 3, 3}, spec({1, 2}, {1, 1})},
                        Case{"unbatched depthwise", {1, 4, 6, 5}, {4, 1, 3, 3}, spec({1, 1}, {1, 1}, {1, 1}, 4)}}) {
    SCOPED_TRACE(c.name);
    Tensors t = setup(c, kFloat64);
    const Conv2dParams p = params(c.s);
    Tensor x3 = native::squeeze(t.x, 0), go3 = native::squeeze(t.go, 0);
    Tensor y = native::conv2d(x3, t.w, t.b, p);
    std::vector<int64_t> y3(t.y_shape.begin() + 1, t.y_shape.end());
    EXPECT_TRUE(all_close(y, make(y3, t.ref.y)));
    std::vector<int64_t> x3s(c.x.begin() + 1, c.x.end());
    EXPECT_TRUE(all_close(native::conv2d_backward_input(go3, t.w, x3.sizes(), p), make(x3s, t.ref.gx)));
    auto [gw, gb] = native::conv2d_backward_weight(go3, x3, t.w.sizes(), p, true);
    EXPECT_TRUE(all_close(gw, make(c.w, t.ref.gw)));
    EXPECT_TRUE(all_close(gb, make({c.w[0]}, t.ref.gb)));
  }
}

// Channels-last memory, a strided weight, a transposed grad_out: made
// contiguous once by the native layer, same numbers.
TEST(Conv2d, NonContiguousOperands) {
  for (DType dt : {kFloat64, kFloat32}) {
    Case c{"views", {2, 6, 7, 8}, {4, 3, 3, 2}, spec({1, 2}, {1, 1}, {1, 1}, 2)};
    Tensors t = setup(c, dt);
    const Conv2dParams p = params(c.s);
    Tensor x_nhwc = native::contiguous(native::permute(t.x, {0, 2, 3, 1}));
    Tensor x = native::permute(x_nhwc, {0, 3, 1, 2});
    // Weight as every other row of a taller one, with its kernel dims swapped in memory.
    Tensor tall = native::zeros({8, 3, 2, 3}, dtype(dt));
    Tensor w_rows = native::slice(tall, 0, 0, std::nullopt, 2);
    native::copy_(w_rows, native::transpose(t.w, 2, 3));
    Tensor w = native::transpose(w_rows, 2, 3);
    Tensor go = native::transpose(native::contiguous(native::transpose(t.go, 2, 3)), 2, 3);
    ASSERT_FALSE(x.is_contiguous());
    ASSERT_FALSE(w.is_contiguous());
    ASSERT_FALSE(go.is_contiguous());
    const double rtol = dt == kFloat64 ? 1e-12 : 1e-5, atol = dt == kFloat64 ? 1e-12 : 1e-4;
    EXPECT_TRUE(all_close(native::conv2d(x, w, t.b, p), make(t.y_shape, t.ref.y), rtol, atol));
    EXPECT_TRUE(all_close(native::conv2d_backward_input(go, w, x.sizes(), p), make(c.x, t.ref.gx), rtol, atol));
    auto [gw, gb] = native::conv2d_backward_weight(go, x, w.sizes(), p, true);
    EXPECT_TRUE(all_close(gw, make(c.w, t.ref.gw), rtol, atol));
    EXPECT_TRUE(all_close(gb, make({c.w[0]}, t.ref.gb), rtol, atol));
  }
}

// 16-bit floats are computed in float32 and rounded once: the error is the
// final rounding (half an ulp of the result) plus float32 accumulation.
TEST(Conv2d, HalfAndBFloat16) {
  for (DType dt : {kFloat16, kBFloat16}) {
    const double rel = dt == kFloat16 ? 1e-3 : 8e-3;  // about one ulp at 1
    for (const Case& c : {Case{"3x3", {2, 3, 7, 6}, {4, 3, 3, 3}, spec({1, 1}, {1, 1})},
                          Case{"depthwise", {2, 4, 6, 6}, {4, 1, 3, 3}, spec({2, 1}, {1, 1}, {1, 1}, 4)},
                          Case{"1x1", {2, 8, 5, 5}, {6, 8, 1, 1}, spec({1, 1}, {0, 0})}}) {
      // Results are sums of up to 28 terms of size <= 1: allow an ulp of the
      // largest possible magnitude as absolute error.
      check_all(c, dt, rel, rel * 8);
    }
  }
}

TEST(Conv2d, EmptyBatch) {
  Tensor x = native::zeros({0, 3, 5, 5});
  Tensor w = native::ones({4, 3, 3, 3});
  Tensor b = native::ones({4});
  const Conv2dParams p = native::conv2d_params(1, 0, 1, 1);
  Tensor y = native::conv2d(x, w, b, p);
  EXPECT_EQ(y.sizes(), IntArrayRef({0, 4, 3, 3}));
  Tensor go = native::zeros({0, 4, 3, 3});
  EXPECT_EQ(native::conv2d_backward_input(go, w, x.sizes(), p).sizes(), IntArrayRef({0, 3, 5, 5}));
  auto [gw, gb] = native::conv2d_backward_weight(go, x, w.sizes(), p, true);
  EXPECT_TRUE(all_close(gw, native::zeros({4, 3, 3, 3})));
  EXPECT_TRUE(all_close(gb, native::zeros({4})));
}

// No input channels: every output is the bias (torch's own result for this
// case has 0 channels, an artefact of its empty-input shortcut; the output
// shape conv2d promises is kept instead).
TEST(Conv2d, ZeroInputChannels) {
  Tensor x = native::zeros({2, 0, 5, 5});
  Tensor w = native::zeros({4, 0, 3, 3});
  Tensor b = make({4}, {1, 2, 3, 4}, kFloat32);
  const Conv2dParams p = native::conv2d_params(1, 1, 1, 1);
  Tensor y = native::conv2d(x, w, b, p);
  ASSERT_EQ(y.sizes(), IntArrayRef({2, 4, 5, 5}));
  auto v = values(y);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], 1.0 + static_cast<double>(i / 25 % 4));
  EXPECT_TRUE(all_close(native::conv2d(x, w, Tensor(), p), native::zeros({2, 4, 5, 5})));
  Tensor go = native::ones({2, 4, 5, 5});
  auto [gw, gb] = native::conv2d_backward_weight(go, x, w.sizes(), p, true);
  EXPECT_EQ(gw.sizes(), IntArrayRef({4, 0, 3, 3}));
  EXPECT_TRUE(all_close(gb, native::full({4}, 50.0)));
  EXPECT_EQ(native::conv2d_backward_input(go, w, x.sizes(), p).sizes(), IntArrayRef({2, 0, 5, 5}));
}

TEST(Conv2d, Errors) {
  Tensor x = native::zeros({2, 3, 5, 5}), w = native::zeros({4, 3, 3, 3});
  auto p = [](int64_t s, int64_t pad, int64_t d, int64_t g) { return native::conv2d_params(s, pad, d, g); };
  EXPECT_KILN_ERROR(native::conv2d(native::zeros({2, 4, 5, 5}), w, Tensor(), p(1, 0, 1, 1)),
                    "weight of size [4, 3, 3, 3], expected input[2, 4, 5, 5] to have 3 channels, but got 4");
  EXPECT_KILN_ERROR(native::conv2d(native::zeros({2, 6, 5, 5}), native::zeros({3, 3, 3, 3}), Tensor(), p(1, 0, 1, 2)),
                    "expected weight to be divisible by 2 at dimension 0, but got weight of size [3, 3, 3, 3]");
  EXPECT_KILN_ERROR(native::conv2d(native::zeros({2, 6, 5, 5}), native::zeros({4, 2, 3, 3}), Tensor(), p(1, 0, 1, 2)),
                    "given groups=2, weight of size [4, 2, 3, 3], expected input[2, 6, 5, 5] to have 4 channels");
  EXPECT_KILN_ERROR(native::conv2d(native::zeros({2, 3, 2, 2}), w, Tensor(), p(1, 0, 1, 1)),
                    "padded input size per channel: (2 x 2). Kernel size: (3 x 3)");
  EXPECT_KILN_ERROR(native::conv2d(native::zeros({2, 3, 4, 4}), w, Tensor(), p(1, 0, 2, 1)),
                    "padded input size per channel: (4 x 4). Kernel size: (5 x 5)");
  EXPECT_KILN_ERROR(native::conv2d(x, native::zeros({0, 3, 3, 3}), Tensor(), p(1, 0, 1, 1)),
                    "expected weight to be at least 1 at dimension 0");
  EXPECT_KILN_ERROR(native::conv2d(x, native::zeros({4, 3, 0, 3}), Tensor(), p(1, 0, 1, 1)), "non-empty kernel");
  EXPECT_KILN_ERROR(p(0, 0, 1, 1), "non-positive stride");
  EXPECT_KILN_ERROR(p(1, 0, 0, 1), "non-positive dilation");
  EXPECT_KILN_ERROR(p(1, -1, 1, 1), "negative padding");
  EXPECT_KILN_ERROR(p(1, 0, 1, 0), "non-positive groups");
  EXPECT_KILN_ERROR(native::conv2d_params({1, 2, 3}, 0, 1, 1),
                    "stride to be a single integer value or a list of 2 values");
  EXPECT_KILN_ERROR(native::conv2d(x, native::zeros({4, 3, 3}), Tensor(), p(1, 0, 1, 1)),
                    "expected a 4-D weight [C_out, C_in/groups, kH, kW], got weight of size [4, 3, 3]");
  EXPECT_KILN_ERROR(native::conv2d(native::zeros({3, 5}), w, Tensor(), p(1, 0, 1, 1)),
                    "expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [3, 5]");
  EXPECT_KILN_ERROR(native::conv2d(native::zeros({1, 2, 3, 5, 5}), w, Tensor(), p(1, 0, 1, 1)),
                    "but got input of size: [1, 2, 3, 5, 5]");
  EXPECT_KILN_ERROR(native::conv2d(native::zeros({4, 5, 5}), w, Tensor(), p(1, 0, 1, 1)),
                    "expected input[1, 4, 5, 5] to have 3 channels");
  EXPECT_KILN_ERROR(native::conv2d(x, w, native::zeros({5}), p(1, 0, 1, 1)),
                    "expected bias to be 1-dimensional with 4 elements, but got bias of size [5]");
  EXPECT_KILN_ERROR(native::conv2d(x, native::zeros({4, 3, 3, 3}, dtype(kFloat64)), Tensor(), p(1, 0, 1, 1)),
                    "input type (float32) and weight type (float64) should be the same");
  EXPECT_KILN_ERROR(native::conv2d(x, w, native::zeros({4}, dtype(kFloat64)), p(1, 0, 1, 1)),
                    "input type (float32) and bias type (float64) should be the same");
  EXPECT_KILN_ERROR(native::conv2d(native::zeros({2, 3, 5, 5}, dtype(kInt64)), native::zeros({4, 3, 3, 3}, dtype(kInt64)),
                                   Tensor(), p(1, 0, 1, 1)),
                    "floating-point");
  EXPECT_KILN_ERROR(native::conv2d(native::zeros({2, 3, 0, 5}), native::zeros({4, 3, 1, 1}), Tensor(), p(1, 1, 1, 1)),
                    "only zero batch or zero channel inputs are supported, but got input shape: [2, 3, 0, 5]");
  EXPECT_KILN_ERROR(native::conv2d(x, Tensor(), Tensor(), p(1, 0, 1, 1)), "undefined weight");
  EXPECT_KILN_ERROR(native::conv2d_backward_input(native::zeros({2, 4, 4, 4}), w, x.sizes(), p(1, 0, 1, 1)),
                    "grad_out of size [2, 4, 4, 4] does not match the output size [2, 4, 3, 3]");
  EXPECT_KILN_ERROR(native::conv2d_backward_weight(native::zeros({2, 4, 3, 4}), x, w.sizes(), p(1, 0, 1, 1)),
                    "grad_out of size [2, 4, 3, 4] does not match the output size [2, 4, 3, 3]");
}
