// Float32 convolutions on AVX-512 without BLAS. An im2col GEMM through BLAS
// writes the columns once and BLAS then copies them again into its own
// panel layout; here im2col writes that panel layout directly, the weights
// are packed once per call instead of once per GEMM, the bias is where the
// accumulators start, and an 8 x 48 register-blocked kernel (24 zmm
// accumulators, one broadcast times three vectors per step) does the
// multiply-adds. Measured 1.2-1.5x BLAS's throughput on ResNet shapes.
//
// Forward (MR = 8 output channels, NR = 48 output positions):
//   weights: per group, per block of MR channels, [K][MR] (zero rows past Cog)
//   columns: per block of NR positions of a tile, [K][NR] (zero past the tile)
// so the kernel reads both operands sequentially. The stride-1 input
// gradient is the same forward on grad_out with transformed weights.
// Weight gradient (MR = 8 output channels, NR = 48 of the K rows, summed
// over positions): grad_out as [positions][MR] and the im2col rows
// transposed to [positions][NR], both through 16 x 16 register transposes.
#include <algorithm>
#include <vector>

#include "cpu/cpu_conv.h"
#include "cpu/strided_loop.h"
#include "kiln/core/native/factory.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#include <omp.h>
#endif

namespace kiln::cpu {

#if defined(__AVX512F__)

namespace {

constexpr int64_t MR = 8, NR = 48;
// Column tile budget: the tile's panels plus the packed weights stay in the
// core's L2 while every weight block passes over them.
constexpr int64_t kTileBytes = int64_t{768} << 10;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Floats from one column block to the next: K rows of NR, plus a skew so
// the blocks (written together, row by row) do not all start at the same
// offset modulo 4 KiB and compete for the same cache sets.
int64_t block_stride(int64_t K) { return K * NR + 2 * 16; }

// C[rows x cols] (row stride ldc) = start + A · B over k < K, A a [K][MR]
// block, B a [K][NR] block; start is C itself (accumulate), bias[row]
// (bias non-null) or zero. rows <= MR, cols <= NR. With c2, the columns
// from `split` on belong to the next image: column j >= split is stored at
// c2 + (j - split) instead (same row stride).
void kernel(int64_t K, const float* a, const float* b, float* c, int64_t ldc, const float* bias, int64_t rows,
            int64_t cols, bool accumulate = false, float* c2 = nullptr, int64_t split = NR) {
  // lo[v]: lanes of vector v stored at c; hi[v]: lanes stored through c2
  // shifted back by `split` (empty without c2). Masked-off lanes never touch
  // memory, whatever their address.
  __mmask16 lo[3], hi[3];
  for (int v = 0; v < 3; ++v) {
    const int64_t n = std::clamp<int64_t>(cols - 16 * v, 0, 16);
    const int64_t first = c2 != nullptr ? std::clamp<int64_t>(split - 16 * v, 0, 16) : 16;
    const auto all = static_cast<__mmask16>((1u << n) - 1);
    lo[v] = static_cast<__mmask16>(all & ((1u << first) - 1));
    hi[v] = static_cast<__mmask16>(all & ~lo[v]);
  }
  float* shifted = c2 != nullptr ? c2 - split : c;
  __m512 acc[MR][3];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    if (accumulate && r < rows) {
      for (int v = 0; v < 3; ++v)
        acc[r][v] = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(lo[v], c + r * ldc + 16 * v), hi[v],
                                         shifted + r * ldc + 16 * v);
    } else {
      const __m512 init = bias != nullptr && r < rows ? _mm512_set1_ps(bias[r]) : _mm512_setzero_ps();
      acc[r][0] = acc[r][1] = acc[r][2] = init;
    }
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(ar, b2, acc[r][2]);
    }
    a += MR;
    b += NR;
  }
  if (rows == MR && cols == NR && c2 == nullptr) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      _mm512_storeu_ps(c + r * ldc, acc[r][0]);
      _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
      _mm512_storeu_ps(c + r * ldc + 32, acc[r][2]);
    }
    return;
  }
  for (int r = 0; r < MR && r < rows; ++r) {
    for (int v = 0; v < 3; ++v) {
      _mm512_mask_storeu_ps(c + r * ldc + 16 * v, lo[v], acc[r][v]);
      if (hi[v]) _mm512_mask_storeu_ps(shifted + r * ldc + 16 * v, hi[v], acc[r][v]);
    }
  }
}

// Weights [Cout, Cg, kH, kW] as blocks of MR output channels, [K][MR] each,
// group after group.
void pack_weights(const float* w, const ConvGeom& g, float* packed) {
  const int64_t K = g.K(), blocks = ceil_div(g.Cog, MR);
  parallel_for(g.groups * blocks, std::max<int64_t>(1, kParallelGrain / (K * MR)), [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t gi = blk / blocks, row0 = (blk % blocks) * MR;
      float* dst = packed + blk * K * MR;
      for (int64_t r = 0; r < MR; ++r) {
        const int64_t row = row0 + r;
        const float* src = w + (gi * g.Cog + row) * K;
        for (int64_t k = 0; k < K; ++k) dst[k * MR + r] = row < g.Cog ? src[k] : 0.0f;
      }
    }
  });
}

// A stretch of output positions in one output row and one column block:
// output row oh, columns [ow, ow + len), at tile position q.
struct Segment {
  int64_t oh, ow, len, q;
  const float* image;  // the image's group planes
};

// im2col of output positions [p0, p0 + np) of one group, written as blocks
// of NR positions, [K][NR] each, zero past np. Positions run over the
// images one after the other (position n * P + p is image n's p), so a
// tile may span images: `in` points at image 0's group planes, the next
// image's `image_stride` floats on. The tile's segments are found once;
// each row k of the columns then copies them with masked loads (lanes
// outside the input read as zero, and masked-off lanes never touch memory).
void pack_columns(const float* in, int64_t image_stride, const ConvGeom& g, int64_t p0, int64_t np, float* buf) {
  const int64_t K = g.K(), kk = g.kh * g.kw, blocks = ceil_div(np, NR), tail = np - (blocks - 1) * NR;
  const int64_t bs = block_stride(K), P = g.P();
  thread_local std::vector<Segment> segments;
  segments.clear();
  for (int64_t q = 0; q < np;) {
    const int64_t pos = p0 + q, n = pos / P, oh = pos % P / g.Wo, ow = pos % P % g.Wo;
    const int64_t len = std::min({g.Wo - ow, NR - q % NR, np - q});
    segments.push_back({oh, ow, len, q, in + n * image_stride});
    q += len;
  }
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t c = k / kk, i = (k / g.kw) % g.kh, j = k % g.kw;
    const int64_t plane_offset = c * g.H * g.W;
    const int64_t off = j * g.dw - g.pw;
    const OwRange valid = valid_ow(g, off);
    float* row = buf + k * NR;  // block b's row k is at row + b * bs
    for (const Segment& sg : segments) {
      const float* plane = sg.image + plane_offset;
      float* d = row + (sg.q / NR) * bs + sg.q % NR;
      const int64_t ih = sg.oh * g.sh - g.ph + i * g.dh;
      if (ih < 0 || ih >= g.H) {
        for (int64_t x = 0; x < sg.len; x += 16) {
          _mm512_mask_storeu_ps(d + x, _cvtu32_mask16((1u << std::min<int64_t>(16, sg.len - x)) - 1),
                                _mm512_setzero_ps());
        }
        continue;
      }
      const float* src = plane + ih * g.W;
      if (g.sw == 1) {
        // Lane x of the vector at column ow + x reads src[ow + x + off] when
        // ow + x is in [valid.lo, valid.hi).
        for (int64_t x = 0; x < sg.len; x += 16) {
          const int64_t ow = sg.ow + x;
          const __m512i col = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(ow)), lane);
          const __mmask16 in_tile = _cvtu32_mask16((1u << std::min<int64_t>(16, sg.len - x)) - 1);
          const __mmask16 readable =
              in_tile & _mm512_cmpge_epi32_mask(col, _mm512_set1_epi32(static_cast<int>(valid.lo))) &
              _mm512_cmplt_epi32_mask(col, _mm512_set1_epi32(static_cast<int>(valid.hi)));
          const __m512 v = _mm512_maskz_loadu_ps(readable, src + ow + off);
          _mm512_mask_storeu_ps(d + x, in_tile, v);
        }
      } else {
        const int64_t a = std::clamp(valid.lo, sg.ow, sg.ow + sg.len), b = std::clamp(valid.hi, a, sg.ow + sg.len);
        float* dd = d - sg.ow;  // dd[x] for x in [sg.ow, sg.ow + sg.len)
        for (int64_t x = sg.ow; x < a; ++x) dd[x] = 0.0f;
        for (int64_t x = a; x < b; ++x) dd[x] = src[x * g.sw + off];
        for (int64_t x = b; x < sg.ow + sg.len; ++x) dd[x] = 0.0f;
      }
    }
    if (tail < NR) std::fill_n(row + (blocks - 1) * bs + tail, NR - tail, 0.0f);
  }
}

int64_t tile_positions(const ConvGeom& g, int64_t span) {
  const int64_t budget = std::max<int64_t>(NR, kTileBytes / (g.K() * 4) / NR * NR);
  return std::min(budget, ceil_div(span, NR) * NR);
}

}  // namespace

bool packed_conv_available() { return true; }

void packed_conv_forward(const float* in, const float* w, const float* bias, const ConvGeom& g, float* out) {
  const int64_t K = g.K(), P = g.P(), HW = g.H * g.W;
  const int64_t blocks = ceil_div(g.Cog, MR);
  Tensor weights = native::empty({g.groups * blocks * K * MR}, kFloat32);
  float* packed_w = weights.data_ptr<float>();
  pack_weights(w, g, packed_w);

  // Tiles run over the positions of all images together (a tile may end
  // in one image and go on in the next): small late-stage planes (7 x 7)
  // then fill whole column blocks and each pass over the weights serves
  // more positions. A column block spans at most two images when P >= NR;
  // smaller planes keep tiles within one image.
  const bool joined = P >= NR;
  const int64_t span = joined ? g.N * P : P;  // positions per (item) below
  const int64_t items = joined ? g.groups : g.N * g.groups;
  const int64_t tile = tile_positions(g, span), tiles = ceil_div(span, tile);
  const int64_t units = items * tiles;
  const int threads = static_cast<int>(std::min<int64_t>(omp_in_parallel() ? 1 : get_num_threads(), units));
  const int64_t per_thread = tile / NR * block_stride(K);
  Tensor cols = native::empty({threads * per_thread}, kFloat32);
  float* col_base = cols.data_ptr<float>();

  auto unit_work = [&](int64_t unit, float* buf) {
    const int64_t item = unit / tiles;
    const int64_t n0 = joined ? 0 : item / g.groups, gi = joined ? item : item % g.groups;
    const int64_t p0 = unit % tiles * tile, np = std::min(tile, span - p0);
    const float* in_g = in + (n0 * g.C + gi * g.Cg) * HW;
    const float* w_g = packed_w + gi * blocks * K * MR;
    const float* b_g = bias != nullptr ? bias + gi * g.Cog : nullptr;
    pack_columns(in_g, g.C * HW, g, p0, np, buf);
    for (int64_t jb = 0; jb * NR < np; ++jb) {
      // Where this column block's outputs go: image n at position pp, and
      // past `split` columns the next image from position 0.
      const int64_t cols_here = std::min(NR, np - jb * NR), pos = p0 + jb * NR;
      const int64_t n = n0 + pos / P, pp = pos % P, split = std::min(cols_here, P - pp);
      float* c1 = out + (n * g.Cout + gi * g.Cog) * P + pp;
      float* c2 = split < cols_here ? out + ((n + 1) * g.Cout + gi * g.Cog) * P : nullptr;
      const float* b = buf + jb * block_stride(K);
      for (int64_t ib = 0; ib < blocks; ++ib) {
        const int64_t rows = std::min(MR, g.Cog - ib * MR);
        kernel(K, w_g + ib * K * MR, b, c1 + ib * MR * P, P, b_g != nullptr ? b_g + ib * MR : nullptr, rows,
               cols_here, false, c2 != nullptr ? c2 + ib * MR * P : nullptr, split);
      }
    }
  };
  if (threads <= 1) {
    for (int64_t unit = 0; unit < units; ++unit) unit_work(unit, col_base);
    return;
  }
  // Units are handed out one at a time, so a thread that the OS delays
  // (other processes on the machine) leaves its share to the others; each
  // unit writes its own outputs, so the result does not depend on who ran it.
  int64_t next = 0;
#pragma omp parallel num_threads(threads)
  {
    float* buf = col_base + omp_get_thread_num() * per_thread;
    for (;;) {
      int64_t unit;
#pragma omp atomic capture
      unit = next++;
      if (unit >= units) break;
      unit_work(unit, buf);
    }
  }
}

bool packed_conv_backward_input(const float* grad_out, const float* w, const ConvGeom& g, float* grad_in) {
  // A stride-1 convolution's input gradient is itself a stride-1
  // convolution: of grad_out, with each group's weights transposed (in and
  // out channels swapped) and the kernel flipped, padded by d*(k-1) - p.
  const int64_t ph = g.dh * (g.kh - 1) - g.ph, pw = g.dw * (g.kw - 1) - g.pw;
  if (g.sh != 1 || g.sw != 1 || ph < 0 || pw < 0) return false;
  ConvGeom t = g;
  t.C = g.Cout;
  t.H = g.Ho;
  t.W = g.Wo;
  t.Cout = g.C;
  t.Cg = g.Cog;
  t.Cog = g.Cg;
  t.Ho = g.H;
  t.Wo = g.W;
  t.ph = ph;
  t.pw = pw;
  const int64_t kk = g.kh * g.kw;
  Tensor flipped = native::empty({g.C * g.Cog * kk}, kFloat32);
  float* fw = flipped.data_ptr<float>();
  for (int64_t gi = 0; gi < g.groups; ++gi)
    for (int64_t o = 0; o < g.Cog; ++o)
      for (int64_t c = 0; c < g.Cg; ++c) {
        const float* src = w + ((gi * g.Cog + o) * g.Cg + c) * kk;
        float* dst = fw + ((gi * g.Cg + c) * g.Cog + o) * kk;
        for (int64_t x = 0; x < kk; ++x) dst[x] = src[kk - 1 - x];
      }
  packed_conv_forward(grad_out, fw, nullptr, t, grad_in);
  return true;
}

namespace {

// dst row i = column i of the 16 x 16 block at src (rows ld apart).
// (GCC 12's unpack/shuffle intrinsics start from an "undefined" vector that
// -Wuninitialized reports once inlined here.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
// With `half`, only the first 8 rows are read (the rest taken as zero),
// through `mask` (columns to load), and only the first 8 floats of each
// output row are written.
inline void transpose16(const float* src, int64_t ld, float* dst, int64_t ldd, bool half = false,
                        __mmask16 mask = 0xFFFF) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i)
    r[i] = !half ? _mm512_loadu_ps(src + i * ld) : i < 8 ? _mm512_maskz_loadu_ps(mask, src + i * ld) : _mm512_setzero_ps();
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int h = 0; h < 2; ++h) {
    for (int j = 0; j < 4; ++j) {
      t[8 * h + j] = _mm512_shuffle_f32x4(r[8 * h + j], r[8 * h + 4 + j], 0x88);
      t[8 * h + 4 + j] = _mm512_shuffle_f32x4(r[8 * h + j], r[8 * h + 4 + j], 0xdd);
    }
  }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
  }
  for (int i = 0; i < 16; ++i) {
    if (half) {
      _mm256_storeu_ps(dst + i * ldd, _mm512_castps512_ps256(r[i]));
    } else {
      _mm512_storeu_ps(dst + i * ldd, r[i]);
    }
  }
}
#pragma GCC diagnostic pop

// Rows [k0, k0 + NR) of the im2col of positions [p0, p0 + np), transposed
// into out[q][x] = column(k0 + x, p0 + q) for q < np16 (np rounded up to
// 16), zero past K and past np. `rows` is scratch for NR x np16 floats.
void pack_columns_transposed(const float* in, const ConvGeom& g, int64_t k0, int64_t p0, int64_t np, float* rows,
                             float* out) {
  const int64_t K = g.K(), kk = g.kh * g.kw, np16 = ceil_div(np, 16) * 16;
  for (int64_t x = 0; x < NR; ++x) {
    float* dst = rows + x * np16;
    const int64_t k = k0 + x;
    if (k >= K) {
      std::fill_n(dst, np16, 0.0f);
      continue;
    }
    const int64_t c = k / kk, i = (k / g.kw) % g.kh, j = k % g.kw;
    const float* plane = in + c * g.H * g.W;
    const int64_t off = j * g.dw - g.pw;
    const OwRange valid = valid_ow(g, off);
    int64_t oh = p0 / g.Wo, ow = p0 % g.Wo;
    for (int64_t q = 0; q < np;) {
      const int64_t len = std::min(g.Wo - ow, np - q), end = ow + len;
      float* d = dst + q - ow;  // d[x] for x in [ow, end)
      const int64_t ih = oh * g.sh - g.ph + i * g.dh;
      if (ih < 0 || ih >= g.H) {
        std::fill(d + ow, d + end, 0.0f);
      } else {
        const float* src = plane + ih * g.W;
        const int64_t a = std::clamp(valid.lo, ow, end), b = std::clamp(valid.hi, a, end);
        std::fill(d + ow, d + a, 0.0f);
        for (int64_t y = a; y < b; ++y) d[y] = src[y * g.sw + off];
        std::fill(d + b, d + end, 0.0f);
      }
      q += len;
      oh += 1;
      ow = 0;
    }
    std::fill(dst + np, dst + np16, 0.0f);
  }
  for (int64_t q = 0; q < np16; q += 16) {
    for (int64_t x = 0; x < NR; x += 16) transpose16(rows + x * np16 + q, np16, out + q * NR + x, NR);
  }
}

}  // namespace

void packed_conv_backward_weight(const float* grad_out, const float* in, const ConvGeom& g, float* grad_weight) {
  const int64_t K = g.K(), P = g.P(), HW = g.H * g.W;
  const int64_t oblocks = ceil_div(g.Cog, MR), kblocks = ceil_div(K, NR);
  // Positions per tile: the transposed column blocks of a tile fill the L2 budget.
  const int64_t tile = std::min(ceil_div(P, 16) * 16, std::max<int64_t>(16, kTileBytes / (kblocks * NR * 4) / 16 * 16));
  const int64_t tiles = ceil_div(P, tile);
  const int64_t units = g.N * g.groups * tiles;
  const int threads = static_cast<int>(std::min<int64_t>(omp_in_parallel() ? 1 : get_num_threads(), units));
  const int64_t wnumel = g.Cout * K;
  // Per thread: its partial gradient, the column blocks, grad_out's blocks, im2col rows.
  const int64_t col_elems = kblocks * (tile * NR + 32), go_elems = oblocks * tile * MR, row_elems = NR * tile;
  const int64_t per_thread = wnumel + col_elems + go_elems + row_elems;
  Tensor scratch = native::empty({threads * per_thread}, kFloat32);
  float* base = scratch.data_ptr<float>();

  auto run = [&](int64_t begin, int64_t end, float* mine) {
    float* partial = mine;
    float* cols = partial + wnumel;
    float* gos = cols + col_elems;
    float* rows = gos + go_elems;
    std::fill_n(partial, wnumel, 0.0f);
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t item = unit / tiles, n = item / g.groups, gi = item % g.groups;
      const int64_t p0 = unit % tiles * tile, np = std::min(tile, P - p0);
      const float* in_ng = in + (n * g.C + gi * g.Cg) * HW;
      const float* go_ng = grad_out + (n * g.Cout + gi * g.Cog) * P + p0;
      for (int64_t kb = 0; kb < kblocks; ++kb) {
        pack_columns_transposed(in_ng, g, kb * NR, p0, np, rows, cols + kb * (tile * NR + 32));
      }
      // grad_out's rows, MR channels at a time, as [q][MR] (rows past Cog zero).
      for (int64_t ob = 0; ob < oblocks; ++ob) {
        float* dst = gos + ob * tile * MR;
        if (ob * MR + MR <= g.Cog) {
          for (int64_t q = 0; q < np; q += 16) {
            const __mmask16 m = static_cast<__mmask16>((1u << std::min<int64_t>(16, np - q)) - 1);
            transpose16(go_ng + ob * MR * P + q, P, dst + q * MR, MR, true, m);
          }
          continue;
        }
        for (int64_t r = 0; r < MR; ++r) {
          const int64_t o = ob * MR + r;
          const float* src = go_ng + o * P;
          for (int64_t q = 0; q < np; ++q) dst[q * MR + r] = o < g.Cog ? src[q] : 0.0f;
        }
      }
      float* part_g = partial + gi * g.Cog * K;
      for (int64_t ob = 0; ob < oblocks; ++ob) {
        for (int64_t kb = 0; kb < kblocks; ++kb) {
          kernel(np, gos + ob * tile * MR, cols + kb * (tile * NR + 32), part_g + ob * MR * K + kb * NR, K, nullptr,
                 std::min(MR, g.Cog - ob * MR), std::min(NR, K - kb * NR), true);
        }
      }
    }
  };
  if (threads <= 1) {
    run(0, units, base);
  } else {
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      run(units * t / nt, units * (t + 1) / nt, base + t * per_thread);
    }
  }
  for (int64_t i = 0; i < wnumel; ++i) {
    float total = 0.0f;
    for (int t = 0; t < threads; ++t) total += base[t * per_thread + i];
    grad_weight[i] = total;
  }
}

#else  // no AVX-512: the BLAS path does everything

bool packed_conv_available() { return false; }
void packed_conv_forward(const float*, const float*, const float*, const ConvGeom&, float*) {}
bool packed_conv_backward_input(const float*, const float*, const ConvGeom&, float*) { return false; }
void packed_conv_backward_weight(const float*, const float*, const ConvGeom&, float*) {}

#endif

}  // namespace kiln::cpu
