// CPU <-> CUDA parity of pooling, interpolation and indexing: Backend's
// max/avg/adaptive-avg pool2d and their backwards (padding, dilation,
// ceil-mode geometry, ties, NaN, count_include_pad, divisor_override),
// upsample2d nearest/bilinear (align_corners both ways, given scales, up and
// down) and its backward, index_select, gather, scatter (assign and add),
// index_add and flip, each called directly with poisoned outputs; then the
// public ops with backward.
//
// Backward kernels get the same forward results on both devices (max pool
// indices computed on the CPU in make()), so they are tested alone.
#include <random>

#include "cuda/parity_util.h"

namespace {

using namespace kiln;
using namespace kiln::testing::parity;
namespace F = kiln::nn::functional;

Backend& be(const Tensor& t) { return backend_of(t); }
std::string dn(DType d) { return short_name(d); }
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// ---- pooling ----

struct Pool {
  std::string name;
  std::vector<int64_t> in;  // N, C, H, W
  Pool2dParams p;
  bool ceil_mode = false;
};

Pool2dParams pool(std::array<int64_t, 2> k, std::array<int64_t, 2> s, std::array<int64_t, 2> pad,
                  std::array<int64_t, 2> dil = {1, 1}, bool count_include_pad = true, int64_t divisor = 0) {
  Pool2dParams p;
  for (int i = 0; i < 2; ++i) {
    p.kernel[i] = k[i];
    p.stride[i] = s[i];
    p.padding[i] = pad[i];
    p.dilation[i] = dil[i];
  }
  p.count_include_pad = count_include_pad;
  p.divisor_override = divisor;
  return p;
}

DimVector pool_out(const Pool& c, bool with_dilation) {
  DimVector o{c.in[0], c.in[1], 0, 0};
  for (int i = 0; i < 2; ++i) {
    o[2 + i] = native::pool_output_size(c.in[2 + i], c.p.kernel[i], c.p.stride[i], c.p.padding[i],
                                        with_dilation ? c.p.dilation[i] : 1, c.ceil_mode);
  }
  return o;
}

std::vector<Case> pool_cases() {
  const std::vector<Pool> maxes = {
      {"k3_s2_p1", {2, 3, 11, 10}, pool({3, 3}, {2, 2}, {1, 1})},
      {"k2_s2", {2, 3, 12, 10}, pool({2, 2}, {2, 2}, {0, 0})},
      {"k3_s1_p1_d2", {2, 3, 11, 10}, pool({3, 3}, {1, 1}, {1, 1}, {2, 2})},
      {"k3_s2_ceil", {2, 3, 10, 10}, pool({3, 3}, {2, 2}, {1, 1}), true},
      {"k2x3_s1x2_p1", {2, 3, 9, 13}, pool({2, 3}, {1, 2}, {1, 1})},
      {"overlapping_large", {4, 16, 56, 56}, pool({3, 3}, {2, 2}, {1, 1})},
  };
  const std::vector<Pool> avgs = {
      {"k3_s2_p1", {2, 3, 11, 10}, pool({3, 3}, {2, 2}, {1, 1})},
      {"k3_s2_p1_exclude_pad", {2, 3, 11, 10}, pool({3, 3}, {2, 2}, {1, 1}, {1, 1}, false)},
      {"k2_divisor5", {2, 3, 12, 10}, pool({2, 2}, {2, 2}, {0, 0}, {1, 1}, true, 5)},
      {"k3_s2_ceil_p1", {2, 3, 10, 10}, pool({3, 3}, {2, 2}, {1, 1}), true},
      {"k3_s2_ceil_exclude_pad", {2, 3, 10, 10}, pool({3, 3}, {2, 2}, {1, 1}, {1, 1}, false), true},
      {"k2x3_s1x2_p1", {2, 3, 9, 13}, pool({2, 3}, {1, 2}, {1, 1})},
  };
  std::vector<Case> cs;
  for (const Pool& c : maxes) {
    for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16}) {
      for (const std::string& values : {std::string("randn"), std::string("ties"), std::string("nan_inf")}) {
        if (values != "randn" && dt != kFloat32) continue;
        // x, grad_out, and the CPU's indices for the backward.
        auto make = [c, dt, values](Generator& g) {
          Tensor x = values == "ties" ? randint(g, 0, 3, c.in, dt) : randn(g, c.in, dt);
          if (values == "nan_inf") x = sprinkle(g, sprinkle(g, x, 0.1, -kInf), 0.02, kNaN);
          const DimVector o = pool_out(c, true);
          auto [y, idx] = native::max_pool2d_with_indices(x, {c.p.kernel[0], c.p.kernel[1]},
                                                          {c.p.stride[0], c.p.stride[1]},
                                                          {c.p.padding[0], c.p.padding[1]},
                                                          {c.p.dilation[0], c.p.dilation[1]}, c.ceil_mode);
          return TensorList{x, randn(g, o, dt), idx};
        };
        const std::string n = c.name + "_" + dn(dt) + (values == "randn" ? "" : "_" + values);
        cs.push_back({"max_pool2d_" + n, make, [c](const TensorList& in) {
                        const DimVector o = pool_out(c, true);
                        Tensor out = poisoned(o, in[0].dtype(), in[0].device());
                        Tensor idx = poisoned(o, kInt64, in[0].device());
                        be(in[0]).max_pool2d(in[0], c.p, out, idx);
                        return TensorList{out, idx};
                      }});
        if (values == "nan_inf") continue;
        // Overlapping windows add several outputs into one element; CUDA sums
        // them in the CPU's order, so the gradients are identical.
        cs.push_back({"max_pool2d_backward_" + n, make,
                      [](const TensorList& in) {
                        Tensor gi = poisoned_like(in[0]);
                        be(in[1]).max_pool2d_backward(in[1], in[2], gi);
                        return TensorList{gi};
                      },
                      false, 0.0});
      }
    }
  }
  for (const Pool& c : avgs) {
    for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
      auto make = [c, dt](Generator& g) { return TensorList{randn(g, c.in, dt), randn(g, pool_out(c, false), dt)}; };
      cs.push_back({"avg_pool2d_" + c.name + "_" + dn(dt), make, [c](const TensorList& in) {
                      Tensor out = poisoned(pool_out(c, false), in[0].dtype(), in[0].device());
                      be(in[0]).avg_pool2d(in[0], c.p, out);
                      return TensorList{out};
                    }});
      cs.push_back({"avg_pool2d_backward_" + c.name + "_" + dn(dt), make, [c](const TensorList& in) {
                      Tensor gi = poisoned_like(in[0]);
                      be(in[1]).avg_pool2d_backward(in[1], c.p, gi);
                      return TensorList{gi};
                    }});
    }
  }
  struct Adaptive {
    std::string name;
    std::vector<int64_t> in;
    int64_t oh, ow;
  };
  for (const Adaptive& a : std::vector<Adaptive>{{"11x9_to_3x5", {2, 3, 11, 9}, 3, 5},
                                                 {"global", {4, 16, 7, 7}, 1, 1},
                                                 {"identity", {2, 3, 7, 6}, 7, 6},
                                                 {"upsizing", {2, 3, 5, 4}, 13, 11}}) {
    for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
      auto make = [a, dt](Generator& g) {
        return TensorList{randn(g, a.in, dt), randn(g, {a.in[0], a.in[1], a.oh, a.ow}, dt)};
      };
      cs.push_back({"adaptive_avg_pool2d_" + a.name + "_" + dn(dt), make, [](const TensorList& in) {
                      Tensor out = poisoned_like(in[1]);
                      be(in[0]).adaptive_avg_pool2d(in[0], out);
                      return TensorList{out};
                    }});
      cs.push_back({"adaptive_avg_pool2d_backward_" + a.name + "_" + dn(dt), make, [](const TensorList& in) {
                      Tensor gi = poisoned_like(in[0]);
                      be(in[1]).adaptive_avg_pool2d_backward(in[1], gi);
                      return TensorList{gi};
                    }});
    }
  }
  for (DType dt : {kFloat32, kFloat64}) {
    cs.push_back({"pool_api_" + dn(dt), [dt](Generator& g) { return TensorList{randn(g, {2, 3, 11, 10}, dt)}; },
                  [](const TensorList& in) {
                    auto [y, idx] = F::max_pool2d_with_indices(in[0], F::MaxPool2dFuncOptions(3).stride(2).padding(1));
                    return TensorList{y, idx, F::avg_pool2d(in[0], F::AvgPool2dFuncOptions({2, 3}).ceil_mode(true)),
                                      F::adaptive_avg_pool2d(in[0], {3, 4}),
                                      F::max_pool2d(kiln::select(in[0], 0, 1), F::MaxPool2dFuncOptions(2))};
                  },
                  true});
  }
  return cs;
}

KILN_PARITY_SUITE(PoolParity, pool_cases);

// ---- interpolation ----

std::vector<Case> upsample_cases() {
  struct Up {
    std::string name;
    InterpolationMode mode;
    std::vector<int64_t> in;
    int64_t oh, ow;
    bool align;
    double sh = 0, sw = 0;
  };
  const auto N = InterpolationMode::Nearest, B = InterpolationMode::Bilinear;
  const std::vector<Up> ups = {
      {"nearest_up", N, {2, 3, 5, 7}, 11, 13, false},
      {"nearest_scale2", N, {2, 3, 5, 7}, 10, 14, false, 2.0, 2.0},
      {"nearest_scale1_7", N, {2, 3, 5, 7}, 8, 11, false, 1.7, 1.7},
      {"nearest_down", N, {2, 3, 12, 10}, 5, 4, false},
      {"bilinear_up", B, {2, 3, 5, 7}, 11, 13, false},
      {"bilinear_up_align", B, {2, 3, 5, 7}, 11, 13, true},
      {"bilinear_down", B, {2, 3, 12, 10}, 5, 4, false},
      {"bilinear_down_align", B, {2, 3, 12, 10}, 5, 4, true},
      {"bilinear_scale1_5", B, {2, 3, 6, 8}, 9, 12, false, 1.5, 1.5},
      {"bilinear_to_1x1_align", B, {2, 3, 6, 8}, 1, 1, true},
      {"bilinear_large", B, {4, 16, 28, 28}, 56, 56, false},
  };
  std::vector<Case> cs;
  for (const Up& u : ups) {
    for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
      auto make = [u, dt](Generator& g) {
        return TensorList{randn(g, u.in, dt), randn(g, {u.in[0], u.in[1], u.oh, u.ow}, dt)};
      };
      cs.push_back({"upsample2d_" + u.name + "_" + dn(dt), make, [u](const TensorList& in) {
                      Tensor out = poisoned_like(in[1]);
                      be(in[0]).upsample2d(u.mode, in[0], u.align, u.sh, u.sw, out);
                      return TensorList{out};
                    }});
      cs.push_back({"upsample2d_backward_" + u.name + "_" + dn(dt), make, [u](const TensorList& in) {
                      Tensor gi = poisoned_like(in[0]);
                      be(in[1]).upsample2d_backward(u.mode, in[1], u.align, u.sh, u.sw, gi);
                      return TensorList{gi};
                    }});
    }
  }
  for (DType dt : {kFloat32, kFloat64}) {
    cs.push_back({"interpolate_api_" + dn(dt), [dt](Generator& g) { return TensorList{randn(g, {2, 3, 6, 5}, dt)}; },
                  [](const TensorList& in) {
                    using O = F::InterpolateFuncOptions;
                    return TensorList{
                        F::interpolate(in[0], O().size(std::vector<int64_t>{13, 7})),
                        F::interpolate(in[0], O().scale_factor(std::vector<double>{1.5}).mode(F::InterpolateMode::Bilinear)),
                        F::interpolate(in[0], O().size(std::vector<int64_t>{4, 9})
                                                  .mode(F::InterpolateMode::Bilinear)
                                                  .align_corners(true))};
                  },
                  true});
  }
  return cs;
}

KILN_PARITY_SUITE(UpsampleParity, upsample_cases);

// ---- indexing ----

// Each row of an [rows, k] index a different subset of [0, n): scatter
// without duplicates, whose result is then defined.
Tensor unique_rows(Generator& g, int64_t rows, int64_t k, int64_t n) {
  std::mt19937_64 rng(g.seed() ^ static_cast<uint64_t>(rows * 1000003 + k));
  std::vector<double> v;
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t i = 0; i < k; ++i) v.push_back(static_cast<double>(perm[static_cast<size_t>(i)]));
  }
  return kiln::testing::make({rows, k}, v, kInt64);
}

Tensor values_of(Generator& g, IntArrayRef sizes, DType dt) {
  if (dt == kBool) return bools(g, sizes);
  if (!is_floating_point(dt)) return randint(g, -1000, 1000, sizes, dt);
  return randn(g, sizes, dt);
}

std::vector<Case> index_cases() {
  std::vector<Case> cs;
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kInt64, kInt32, kBool}) {
    // index_select: repeated indices, along either dim, from a transposed view too.
    for (int64_t dim : {0, 1}) {
      cs.push_back({"index_select_dim" + std::to_string(dim) + "_" + dn(dt),
                    [dt, dim](Generator& g) {
                      return TensorList{values_of(g, {37, 53}, dt), randint(g, 0, dim == 0 ? 37 : 53, {70})};
                    },
                    [dim](const TensorList& in) {
                      DimVector o = in[0].sizes().dims();
                      o[static_cast<size_t>(dim)] = 70;
                      return with_poisoned(o, in[0].dtype(), in[0].device(),
                                           [&](const Tensor& out) { be(in[0]).index_select(in[0], dim, in[1], out); });
                    }});
    }
    cs.push_back({"gather_dim1_" + dn(dt),
                  [dt](Generator& g) { return TensorList{values_of(g, {37, 53}, dt), randint(g, 0, 53, {37, 80})}; },
                  [](const TensorList& in) {
                    return with_poisoned(in[1].sizes(), in[0].dtype(), in[0].device(),
                                         [&](const Tensor& out) { be(in[0]).gather(in[0], 1, in[1], out); });
                  }});
    cs.push_back({"flip_" + dn(dt), [dt](Generator& g) { return TensorList{values_of(g, {5, 7, 9}, dt)}; },
                  [](const TensorList& in) {
                    TensorList r;
                    for (std::vector<int64_t> dims : {std::vector<int64_t>{0}, {2}, {0, 2}, {0, 1, 2}}) {
                      for (const Tensor& o : with_poisoned(in[0].sizes(), in[0].dtype(), in[0].device(),
                                                           [&](const Tensor& out) { be(in[0]).flip(in[0], dims, out); }))
                        r.push_back(o);
                    }
                    return r;
                  }});
    if (dt == kBool) continue;
    // scatter (assign): no duplicate targets within a row; 3 of out's 4 sides untouched.
    cs.push_back({"scatter_dim1_" + dn(dt),
                  [dt](Generator& g) {
                    return TensorList{values_of(g, {37, 53}, dt), unique_rows(g, 30, 20, 53), values_of(g, {30, 20}, dt)};
                  },
                  [](const TensorList& in) {
                    Tensor out = native::clone(in[0]);
                    be(out).scatter(out, 1, in[1], in[2], ScatterReduce::None);
                    return TensorList{out};
                  }});
    // scatter add and index_add: many duplicates. CUDA sorts by destination and
    // adds in the CPU's order with its roundings, so the results are identical.
    for (int64_t dim : {0, 1}) {
      cs.push_back({"scatter_add_dim" + std::to_string(dim) + "_" + dn(dt),
                    [dt, dim](Generator& g) {
                      return TensorList{values_of(g, {37, 53}, dt), randint(g, 0, dim == 0 ? 37 : 53, {37, 40}),
                                        values_of(g, {37, 40}, dt)};
                    },
                    [dim](const TensorList& in) {
                      Tensor out = native::clone(in[0]);
                      be(out).scatter(out, dim, in[1], in[2], ScatterReduce::Add);
                      return TensorList{out};
                    }, false, 0.0});
      cs.push_back({"index_add_dim" + std::to_string(dim) + "_" + dn(dt),
                    [dt, dim](Generator& g) {
                      return TensorList{values_of(g, {37, 53}, dt), randint(g, 0, dim == 0 ? 37 : 53, {30}),
                                        values_of(g, dim == 0 ? std::vector<int64_t>{30, 53} : std::vector<int64_t>{37, 30}, dt)};
                    },
                    [dim](const TensorList& in) {
                      Tensor out = native::clone(in[0]);
                      const Scalar alpha = is_floating_point(out.dtype()) ? Scalar(2.5) : Scalar(3);
                      be(out).index_add(out, dim, in[1], in[2], alpha);
                      return TensorList{out};
                    }, false, 0.0});
    }
  }
  // Strided operands: transposed inputs, a 0-stride scatter source, a strided in-place target.
  cs.push_back({"index_select_transposed_3d",
                [](Generator& g) { return TensorList{randn(g, {9, 7, 5}), randint(g, 0, 7, {11})}; },
                [](const TensorList& in) {
                  const Tensor x = native::transpose(in[0], 0, 2);  // [5, 7, 9]
                  return with_poisoned({5, 11, 9}, kFloat32, x.device(),
                                       [&](const Tensor& out) { be(x).index_select(x, 1, in[1], out); });
                }});
  cs.push_back({"gather_transposed_in",
                [](Generator& g) { return TensorList{randn(g, {53, 37}), randint(g, 0, 53, {20, 37})}; },
                [](const TensorList& in) {
                  const Tensor x = native::t(in[0]);                            // [37, 53], strided
                  const Tensor idx = native::contiguous(native::t(in[1]));      // [37, 20]
                  return with_poisoned({37, 20}, kFloat32, x.device(),
                                       [&](const Tensor& out) { be(x).gather(x, 1, idx, out); });
                }});
  cs.push_back({"scatter_scalar_src_into_transposed",
                [](Generator& g) { return TensorList{randn(g, {53, 37}), unique_rows(g, 37, 10, 53), randn(g, {})}; },
                [](const TensorList& in) {
                  const Tensor base = native::clone(in[0]);
                  const Tensor out = native::t(base);  // [37, 53], strided
                  be(out).scatter(out, 1, in[1], native::expand(in[2], {37, 10}), ScatterReduce::None);
                  return TensorList{base};
                }});
  // Accumulation into strided targets from strided sources, in 3-D, and an
  // embedding-like backward (few rows, one of them very frequent): exact.
  for (DType dt : {kFloat32, kBFloat16}) {
    cs.push_back({"index_add_3d_strided_" + dn(dt),
                  [dt](Generator& g) {
                    return TensorList{values_of(g, {9, 7, 5}, dt), randint(g, 0, 7, {23}), values_of(g, {9, 23, 5}, dt)};
                  },
                  [](const TensorList& in) {
                    const Tensor base = native::clone(in[0]);
                    const Tensor out = native::transpose(base, 0, 2);       // [5, 7, 9], strided
                    const Tensor src = native::transpose(in[2], 0, 2);      // [5, 23, 9], strided
                    be(out).index_add(out, 1, in[1], src, Scalar(-0.75));
                    return TensorList{base};
                  },
                  false, 0.0});
    cs.push_back({"scatter_add_3d_transposed_" + dn(dt),
                  [dt](Generator& g) {
                    return TensorList{values_of(g, {6, 11, 4}, dt), randint(g, 0, 11, {4, 30, 6}),
                                      values_of(g, {4, 30, 6}, dt)};
                  },
                  [](const TensorList& in) {
                    const Tensor base = native::clone(in[0]);
                    const Tensor out = native::transpose(base, 0, 2);                 // [4, 11, 6], strided
                    const Tensor idx = native::contiguous(native::transpose(in[1], 0, 2));  // [6, 30, 4]
                    const Tensor idx_t = native::transpose(idx, 0, 2);                 // [4, 30, 6], strided
                    be(out).scatter(out, 1, idx_t, in[2], ScatterReduce::Add);
                    return TensorList{base};
                  },
                  false, 0.0});
    cs.push_back({"embedding_backward_frequent_row_" + dn(dt),
                  [dt](Generator& g) {
                    // 600 tokens over a vocabulary of 50, about half of them id 1 (padding).
                    Tensor ids = randint(g, 0, 50, {600});
                    Tensor pad = randint(g, 0, 2, {600});
                    ids = native::masked_fill(ids, native::binary(BinaryOp::Eq, pad, Scalar(0)), Scalar(1));
                    return TensorList{native::zeros({50, 96}, TensorOptions().dtype(dt)), ids,
                                      values_of(g, {600, 96}, dt)};
                  },
                  [](const TensorList& in) {
                    Tensor out = native::clone(in[0]);
                    be(out).index_add(out, 0, in[1], in[2], Scalar(1));
                    return TensorList{out};
                  },
                  false, 0.0});
  }
  cs.push_back({"flip_transposed_in",
                [](Generator& g) { return TensorList{randn(g, {53, 37})}; },
                [](const TensorList& in) {
                  const Tensor x = native::t(in[0]);
                  return with_poisoned({37, 53}, kFloat32, x.device(),
                                       [&](const Tensor& out) { be(x).flip(x, {1}, out); });
                }});
  // The public ops with backward (index_add/scatter_add are the backwards of
  // index_select/gather; embedding's backward is index_add).
  for (DType dt : {kFloat32, kFloat64}) {
    cs.push_back({"index_api_" + dn(dt),
                  [dt](Generator& g) {
                    return TensorList{randn(g, {6, 8}, dt), randint(g, 0, 6, {10}), randint(g, 0, 8, {6, 5}),
                                      randn(g, {6, 5}, dt), randn(g, {10, 8}, dt), randint(g, 0, 6, {3, 4})};
                  },
                  [](const TensorList& in) {
                    const Tensor &x = in[0], &idx = in[1], &gidx = in[2], &src = in[3], &rows = in[4];
                    return TensorList{kiln::index_select(x, 0, idx), kiln::gather(x, 1, gidx),
                                      kiln::scatter_add(x, 1, gidx, src), kiln::index_add(x, 0, idx, rows, 0.5),
                                      kiln::flip(x, {0, 1}), F::embedding(in[5], x),
                                      kiln::one_hot(idx, 7)};
                  },
                  true});
    cs.push_back({"shape_api_" + dn(dt),
                  [dt](Generator& g) { return TensorList{randn(g, {4, 6}, dt), randn(g, {4, 3}, dt)}; },
                  [](const TensorList& in) {
                    const Tensor &a = in[0], &b = in[1];
                    auto parts = kiln::split(a, 4, 1);
                    return TensorList{kiln::cat({a, b}, 1), kiln::stack({b, b}, 2), parts[1],
                                      kiln::pad(a, {1, 2, 0, 1}, 0.5), kiln::repeat(b, {2, 1, 3}),
                                      kiln::roll(a, {1, -2}, {0, 1}), kiln::tril(a, 1), kiln::triu(a)};
                  },
                  true});
  }
  return cs;
}

KILN_PARITY_SUITE(IndexParity, index_cases);

}  // namespace
