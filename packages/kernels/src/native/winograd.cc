// Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray's minimal filtering): each
// 4×4 input tile d and filter g are transformed (V = Bᵀ·d·B, U = G·g·Gᵀ), multiplied element-wise
// and summed over input channels (16 matrix products V[ξ]·U[ξ], one per tile position ξ), and
// transformed back (Y = Aᵀ·M·A) into 2×2 outputs. Work goes in blocks of kTiles tiles of one
// image, so a block's transformed tiles and products stay in the core's L2; the transforms are
// 8-channel AVX2 vectors, the products a 6 × 16 FMA micro-kernel.
//
// Only this file's kernels use AVX2: they are compiled for it (target attributes) and called
// only after winograd_enabled() has checked the CPU.
#include "winograd.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace ns {
namespace {

// Output tiles (2×2) per block: three passes of the micro-kernel's 6 rows.
constexpr int kTiles = 18;

struct Block {
  const float* src;
  ChannelBlockLayout src_layout;
  float* dst;
  ChannelBlockLayout dst_layout;
  int height, width, tiles_wide, first_tile, tiles;
  int in, out;
  const float* u;
  const float* bias;  // `out` values (zeros when the caller has none)
  bool add, relu;
  float* v;  // [16][kTiles][in]
  float* m;  // [16][kTiles][out]
};

#define NS_AVX2 __attribute__((target("avx2,fma")))

// c[r][0..16) (+)= Σ_d a(r, d) · b[d][0..16) for R rows, a(r, d) = a[r·row + d·step]: a row-major
// matrix (row = depth, step = 1) or the transpose of one (row = 1, step = its width).
template <int R, bool Accumulate>
NS_AVX2 inline void product_rows16(const float* a, size_t row, size_t step, int depth, const float* b, int ldb, float* c,
                                   int ldc) {
  __m256 low[R], high[R];
  for (int r = 0; r < R; ++r) {
    low[r] = Accumulate ? _mm256_loadu_ps(c + static_cast<size_t>(r) * ldc) : _mm256_setzero_ps();
    high[r] = Accumulate ? _mm256_loadu_ps(c + static_cast<size_t>(r) * ldc + 8) : _mm256_setzero_ps();
  }
  for (int d = 0; d < depth; ++d) {
    const __m256 b0 = _mm256_loadu_ps(b + static_cast<size_t>(d) * ldb);
    const __m256 b1 = _mm256_loadu_ps(b + static_cast<size_t>(d) * ldb + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 value = _mm256_broadcast_ss(a + r * row + d * step);
      low[r] = _mm256_fmadd_ps(value, b0, low[r]);
      high[r] = _mm256_fmadd_ps(value, b1, high[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(c + static_cast<size_t>(r) * ldc, low[r]);
    _mm256_storeu_ps(c + static_cast<size_t>(r) * ldc + 8, high[r]);
  }
}

// The same for 8 columns.
template <int R, bool Accumulate>
NS_AVX2 inline void product_rows8(const float* a, size_t row, size_t step, int depth, const float* b, int ldb, float* c,
                                  int ldc) {
  __m256 sum[R];
  for (int r = 0; r < R; ++r) sum[r] = Accumulate ? _mm256_loadu_ps(c + static_cast<size_t>(r) * ldc) : _mm256_setzero_ps();
  for (int d = 0; d < depth; ++d) {
    const __m256 b0 = _mm256_loadu_ps(b + static_cast<size_t>(d) * ldb);
    for (int r = 0; r < R; ++r) sum[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + r * row + d * step), b0, sum[r]);
  }
  for (int r = 0; r < R; ++r) _mm256_storeu_ps(c + static_cast<size_t>(r) * ldc, sum[r]);
}

template <int R, bool Accumulate>
NS_AVX2 inline void product_rows(const float* a, size_t row, size_t step, int depth, const float* b, int cols, float* c) {
  int k = 0;
  for (; k + 16 <= cols; k += 16) product_rows16<R, Accumulate>(a, row, step, depth, b + k, cols, c + k, cols);
  if (k < cols) product_rows8<R, Accumulate>(a, row, step, depth, b + k, cols, c + k, cols);
}

// c[rows][cols] (+)= a(rows × depth, strides as above) · b[depth][cols]; cols a multiple of 8.
template <bool Accumulate>
NS_AVX2 void product(const float* a, size_t row, size_t step, int rows, int depth, const float* b, int cols, float* c) {
  int r = 0;
  for (; r + 6 <= rows; r += 6) {
    product_rows<6, Accumulate>(a + r * row, row, step, depth, b, cols, c + static_cast<size_t>(r) * cols);
  }
  const float* a_rest = a + r * row;
  float* c_rest = c + static_cast<size_t>(r) * cols;
  switch (rows - r) {
    case 5: product_rows<5, Accumulate>(a_rest, row, step, depth, b, cols, c_rest); break;
    case 4: product_rows<4, Accumulate>(a_rest, row, step, depth, b, cols, c_rest); break;
    case 3: product_rows<3, Accumulate>(a_rest, row, step, depth, b, cols, c_rest); break;
    case 2: product_rows<2, Accumulate>(a_rest, row, step, depth, b, cols, c_rest); break;
    case 1: product_rows<1, Accumulate>(a_rest, row, step, depth, b, cols, c_rest); break;
    default: break;
  }
}

// V = Bᵀ·d·B for tiles [first, first + tiles) of one image, per group of 8 channels, over the
// 4×4 input pixels of each 2×2 output tile (zeros outside the image: the padding),
// Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]; v[ξ][t][c] with ξ's stride `v_stride`.
NS_AVX2 void transform_input(const float* src, ChannelBlockLayout layout, int height, int width, int tiles_wide,
                             int first, int tiles, int channels, float* v, size_t v_stride) {
  const __m256 zero = _mm256_setzero_ps();
  for (int t = 0; t < tiles; ++t) {
    const int tile = first + t;
    const int top = 2 * (tile / tiles_wide) - 1, left = 2 * (tile % tiles_wide) - 1;
    for (int group = 0; group < channels / 8; ++group) {
      const float* base = src + static_cast<size_t>(group) * layout.block;
      __m256 d[4][4];
      for (int i = 0; i < 4; ++i) {
        const int y = top + i;
        for (int j = 0; j < 4; ++j) {
          const int x = left + j;
          d[i][j] = y >= 0 && y < height && x >= 0 && x < width
                        ? _mm256_loadu_ps(base + (static_cast<size_t>(y) * width + x) * layout.pixel)
                        : zero;
        }
      }
      __m256 rows[4][4];
      for (int j = 0; j < 4; ++j) {
        rows[0][j] = _mm256_sub_ps(d[0][j], d[2][j]);
        rows[1][j] = _mm256_add_ps(d[1][j], d[2][j]);
        rows[2][j] = _mm256_sub_ps(d[2][j], d[1][j]);
        rows[3][j] = _mm256_sub_ps(d[1][j], d[3][j]);
      }
      float* out = v + static_cast<size_t>(t) * channels + group * 8;
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(out + (i * 4 + 0) * v_stride, _mm256_sub_ps(rows[i][0], rows[i][2]));
        _mm256_storeu_ps(out + (i * 4 + 1) * v_stride, _mm256_add_ps(rows[i][1], rows[i][2]));
        _mm256_storeu_ps(out + (i * 4 + 2) * v_stride, _mm256_sub_ps(rows[i][2], rows[i][1]));
        _mm256_storeu_ps(out + (i * 4 + 3) * v_stride, _mm256_sub_ps(rows[i][1], rows[i][3]));
      }
    }
  }
}

NS_AVX2 void run_block(const Block& b) {
  const __m256 zero = _mm256_setzero_ps();
  const size_t v_stride = static_cast<size_t>(kTiles) * b.in;
  transform_input(b.src, b.src_layout, b.height, b.width, b.tiles_wide, b.first_tile, b.tiles, b.in, b.v, v_stride);
  // M[ξ] = V[ξ] · U[ξ]: the sums over input channels.
  const size_t m_stride = static_cast<size_t>(kTiles) * b.out;
  for (int xi = 0; xi < 16; ++xi) {
    product<false>(b.v + xi * v_stride, b.in, 1, b.tiles, b.in, b.u + static_cast<size_t>(xi) * b.in * b.out, b.out,
                   b.m + xi * m_stride);
  }
  // Output transform, per tile and group of 8 output channels: Y = Aᵀ·M·A,
  // Aᵀ = [1 1 1 0; 0 1 −1 −1], then the bias, what dst holds (a residual), ReLU.
  for (int t = 0; t < b.tiles; ++t) {
    const int tile = b.first_tile + t;
    const int top = 2 * (tile / b.tiles_wide), left = 2 * (tile % b.tiles_wide);
    for (int group = 0; group < b.out / 8; ++group) {
      const float* m = b.m + static_cast<size_t>(t) * b.out + group * 8;
      __m256 rows[2][4];
      for (int j = 0; j < 4; ++j) {
        const __m256 m0 = _mm256_loadu_ps(m + j * m_stride), m1 = _mm256_loadu_ps(m + (4 + j) * m_stride);
        const __m256 m2 = _mm256_loadu_ps(m + (8 + j) * m_stride), m3 = _mm256_loadu_ps(m + (12 + j) * m_stride);
        rows[0][j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        rows[1][j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
      }
      const __m256 bias = _mm256_loadu_ps(b.bias + group * 8);
      float* channels = b.dst + static_cast<size_t>(group) * b.dst_layout.block;
      for (int i = 0; i < 2 && top + i < b.height; ++i) {
        const __m256 pair[2] = {
            _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(rows[i][0], rows[i][1]), rows[i][2]), bias),
            _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(rows[i][1], rows[i][2]), rows[i][3]), bias)};
        for (int j = 0; j < 2 && left + j < b.width; ++j) {
          float* pixel = channels + (static_cast<size_t>(top + i) * b.width + left + j) * b.dst_layout.pixel;
          __m256 value = pair[j];
          if (b.add) value = _mm256_add_ps(value, _mm256_loadu_ps(pixel));
          if (b.relu) value = _mm256_max_ps(value, zero);
          _mm256_storeu_ps(pixel, value);
        }
      }
    }
  }
}

// The filter gradient's share of tiles [first, first + tiles) of one image: du[ξ] += V[ξ]ᵀ · Ŷ[ξ],
// with Ŷ = A·dy·Aᵀ the output gradient of each 2×2 tile taken back to the 4×4 domain
// (A = [1 0; 1 1; 1 −1; 0 −1]; zeros for outputs outside the image).
struct GradientBlock {
  const float* x;
  ChannelBlockLayout x_layout;
  const float* dy;
  ChannelBlockLayout dy_layout;
  int height, width, tiles_wide, first_tile, tiles;
  int in, out;
  float* v;   // [16][kGradientTiles][in]
  float* y;   // [16][kGradientTiles][out]
  float* du;  // [16][in][out], summed into
};

// Tiles per block of the filter gradient: its products sum over tiles, so longer ones.
constexpr int kGradientTiles = 36;

NS_AVX2 void run_gradient_block(const GradientBlock& b) {
  const __m256 zero = _mm256_setzero_ps();
  const size_t v_stride = static_cast<size_t>(kGradientTiles) * b.in;
  const size_t y_stride = static_cast<size_t>(kGradientTiles) * b.out;
  transform_input(b.x, b.x_layout, b.height, b.width, b.tiles_wide, b.first_tile, b.tiles, b.in, b.v, v_stride);
  for (int t = 0; t < b.tiles; ++t) {
    const int tile = b.first_tile + t;
    const int top = 2 * (tile / b.tiles_wide), left = 2 * (tile % b.tiles_wide);
    for (int group = 0; group < b.out / 8; ++group) {
      const float* base = b.dy + static_cast<size_t>(group) * b.dy_layout.block;
      __m256 d[2][2];
      for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 2; ++j) {
          const int y = top + i, x = left + j;
          d[i][j] = y < b.height && x < b.width
                        ? _mm256_loadu_ps(base + (static_cast<size_t>(y) * b.width + x) * b.dy_layout.pixel)
                        : zero;
        }
      }
      __m256 rows[4][2];
      for (int j = 0; j < 2; ++j) {
        rows[0][j] = d[0][j];
        rows[1][j] = _mm256_add_ps(d[0][j], d[1][j]);
        rows[2][j] = _mm256_sub_ps(d[0][j], d[1][j]);
        rows[3][j] = _mm256_sub_ps(zero, d[1][j]);
      }
      float* out = b.y + static_cast<size_t>(t) * b.out + group * 8;
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(out + (i * 4 + 0) * y_stride, rows[i][0]);
        _mm256_storeu_ps(out + (i * 4 + 1) * y_stride, _mm256_add_ps(rows[i][0], rows[i][1]));
        _mm256_storeu_ps(out + (i * 4 + 2) * y_stride, _mm256_sub_ps(rows[i][0], rows[i][1]));
        _mm256_storeu_ps(out + (i * 4 + 3) * y_stride, _mm256_sub_ps(zero, rows[i][1]));
      }
    }
  }
  for (int xi = 0; xi < 16; ++xi) {
    product<true>(b.v + xi * v_stride, 1, b.in, b.in, b.tiles, b.y + xi * y_stride, b.out,
                  b.du + static_cast<size_t>(xi) * b.in * b.out);
  }
}

// dw[i][j][c][k..k+8) = (Gᵀ · du[·][c][k..k+8) · G)[i][j] for every c: from the 4×4 domain back
// to the 3×3 filter (HWIO), G as in transform_filter.
NS_AVX2 void transform_gradient(const float* du, int in, int out, int c_begin, int c_end, float* dw) {
  const __m256 half = _mm256_set1_ps(0.5f);
  for (int c = c_begin; c < c_end; ++c) {
    for (int k = 0; k < out; k += 8) {
      __m256 m[4][4];
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) m[i][j] = _mm256_loadu_ps(du + (static_cast<size_t>(i * 4 + j) * in + c) * out + k);
      }
      __m256 rows[3][4];
      for (int j = 0; j < 4; ++j) {
        rows[0][j] = _mm256_add_ps(m[0][j], _mm256_mul_ps(half, _mm256_add_ps(m[1][j], m[2][j])));
        rows[1][j] = _mm256_mul_ps(half, _mm256_sub_ps(m[1][j], m[2][j]));
        rows[2][j] = _mm256_add_ps(m[3][j], _mm256_mul_ps(half, _mm256_add_ps(m[1][j], m[2][j])));
      }
      for (int i = 0; i < 3; ++i) {
        const __m256 values[3] = {
            _mm256_add_ps(rows[i][0], _mm256_mul_ps(half, _mm256_add_ps(rows[i][1], rows[i][2]))),
            _mm256_mul_ps(half, _mm256_sub_ps(rows[i][1], rows[i][2])),
            _mm256_add_ps(rows[i][3], _mm256_mul_ps(half, _mm256_add_ps(rows[i][1], rows[i][2])))};
        for (int j = 0; j < 3; ++j) _mm256_storeu_ps(dw + ((static_cast<size_t>(i) * 3 + j) * in + c) * out + k, values[j]);
      }
    }
  }
}

NS_AVX2 void sum_into_first(float* const* partial, int count, size_t begin, size_t end) {
  for (size_t index = begin; index < end; index += 8) {
    __m256 total = _mm256_loadu_ps(partial[0] + index);
    for (int p = 1; p < count; ++p) total = _mm256_add_ps(total, _mm256_loadu_ps(partial[p] + index));
    _mm256_storeu_ps(partial[0] + index, total);
  }
}

// u[ξ][c][k..k+8) for every c and k, from g[i][j][c][k] (HWIO), G = [1 0 0;
// ½ ½ ½; ½ −½ ½; 0 0 1].
NS_AVX2 void transform_filter(const float* hwio, int in, int out, float* u) {
  const __m256 half = _mm256_set1_ps(0.5f);
  for (int c = 0; c < in; ++c) {
    for (int k = 0; k < out; k += 8) {
      __m256 g[3][3];
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) g[i][j] = _mm256_loadu_ps(hwio + ((static_cast<size_t>(i) * 3 + j) * in + c) * out + k);
      }
      __m256 gg[4][3];
      for (int j = 0; j < 3; ++j) {
        gg[0][j] = g[0][j];
        gg[1][j] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(g[0][j], g[1][j]), g[2][j]));
        gg[2][j] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(g[0][j], g[1][j]), g[2][j]));
        gg[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; ++i) {
        const __m256 row[4] = {
            gg[i][0], _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(gg[i][0], gg[i][1]), gg[i][2])),
            _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(gg[i][0], gg[i][1]), gg[i][2])), gg[i][2]};
        for (int j = 0; j < 4; ++j) _mm256_storeu_ps(u + (static_cast<size_t>(i * 4 + j) * in + c) * out + k, row[j]);
      }
    }
  }
}

}  // namespace

bool winograd_enabled() {
  static const bool enabled = [] {
    const char* choice = std::getenv("NS_WINOGRAD");
    if (choice != nullptr && std::strcmp(choice, "0") == 0) return false;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !__builtin_cpu_supports("avx512f");
#else
    return false;
#endif
  }();
  return enabled;
}

bool winograd_fits(const Conv2DShape& s) {
  return s.filter_height == 3 && s.filter_width == 3 && s.stride_height == 1 && s.stride_width == 1 &&
         s.dilation_height == 1 && s.dilation_width == 1 && s.pad_top == 1 && s.pad_left == 1 &&
         s.out_height == s.in_height && s.out_width == s.in_width && s.in_channels % 8 == 0 &&
         s.out_channels % 8 == 0;
}

void winograd_filter(const float* hwio, int in_channels, int out_channels, bool input_gradient, float* u) {
  if (!input_gradient) {
    transform_filter(hwio, in_channels, out_channels, u);
    return;
  }
  // The input gradient's filter: g'[i][j][k][c] = g[2−i][2−j][c][k].
  thread_local std::vector<float> flipped;
  flipped.resize(static_cast<size_t>(9) * in_channels * out_channels);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const float* from = hwio + static_cast<size_t>((2 - i) * 3 + (2 - j)) * in_channels * out_channels;
      float* to = flipped.data() + static_cast<size_t>(i * 3 + j) * in_channels * out_channels;
      for (int c = 0; c < in_channels; ++c) {
        for (int k = 0; k < out_channels; ++k) to[static_cast<size_t>(k) * in_channels + c] = from[static_cast<size_t>(c) * out_channels + k];
      }
    }
  }
  transform_filter(flipped.data(), out_channels, in_channels, u);
}

void winograd_conv3x3(const float* u, const float* bias, int in_channels, int out_channels, const float* src,
                      ChannelBlockLayout src_layout, float* dst, ChannelBlockLayout dst_layout, int batch, int height,
                      int width, bool add_to_dst, bool relu) {
  const int tiles_wide = (width + 1) / 2, tiles = (height + 1) / 2 * tiles_wide;
  const int blocks = (tiles + kTiles - 1) / kTiles;
  thread_local std::vector<float> zeros;
  if (bias == nullptr) {
    zeros.assign(out_channels, 0.0f);
    bias = zeros.data();
  }
#pragma omp parallel
  {
    // Each OpenMP thread's block buffers, kept between calls (the pool's threads persist).
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>(16) * kTiles * (in_channels + out_channels));
#pragma omp for schedule(static)
    for (long job = 0; job < static_cast<long>(batch) * blocks; ++job) {
      const int n = static_cast<int>(job / blocks), first = static_cast<int>(job % blocks) * kTiles;
      const Block block{src + n * src_layout.image, src_layout, dst + n * dst_layout.image, dst_layout,
                        height, width, tiles_wide, first, std::min(kTiles, tiles - first),
                        in_channels, out_channels, u, bias, add_to_dst, relu,
                        scratch.data(), scratch.data() + static_cast<size_t>(16) * kTiles * in_channels};
      run_block(block);
    }
  }
}

void winograd_filter_gradient(const float* x, ChannelBlockLayout x_layout, const float* dy, ChannelBlockLayout dy_layout,
                              int batch, int height, int width, int in_channels, int out_channels, float* dw) {
  const int tiles_wide = (width + 1) / 2, tiles = (height + 1) / 2 * tiles_wide;
  const int blocks = (tiles + kGradientTiles - 1) / kGradientTiles;
  const size_t transformed = static_cast<size_t>(16) * in_channels * out_channels;
  std::vector<float*> partial(static_cast<size_t>(omp_get_max_threads()));
#pragma omp parallel
  {
    const int team = omp_get_num_threads(), me = omp_get_thread_num();
    // Each thread sums its tiles' share into its own du, kept between calls; then the sums of
    // every thread are added (each range of du by one thread) and transformed back.
    thread_local std::vector<float> scratch, sums;
    scratch.resize(static_cast<size_t>(16) * kGradientTiles * (in_channels + out_channels));
    sums.assign(transformed, 0.0f);
    partial[me] = sums.data();
#pragma omp for schedule(static)
    for (long job = 0; job < static_cast<long>(batch) * blocks; ++job) {
      const int n = static_cast<int>(job / blocks), first = static_cast<int>(job % blocks) * kGradientTiles;
      const GradientBlock block{x + n * x_layout.image, x_layout, dy + n * dy_layout.image, dy_layout,
                                height, width, tiles_wide, first, std::min(kGradientTiles, tiles - first),
                                in_channels, out_channels, scratch.data(),
                                scratch.data() + static_cast<size_t>(16) * kGradientTiles * in_channels, sums.data()};
      run_gradient_block(block);
    }
    // (The loop's end is a barrier: every thread's sums are complete here.)
    const size_t groups = transformed / 8;
    sum_into_first(partial.data(), team, groups * me / team * 8, groups * (me + 1) / team * 8);
#pragma omp barrier
    transform_gradient(partial[0], in_channels, out_channels, in_channels * me / team, in_channels * (me + 1) / team, dw);
  }
}

}  // namespace ns
