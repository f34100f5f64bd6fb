// Sums over a contiguous block of axes (leading, middle or trailing) of a row-major tensor,
// accumulated in double.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels.h"

namespace ns {
namespace {
constexpr size_t kParallelMinimum = 1 << 15;

NS_CLONES void accumulate_rows(const float* x, size_t begin, size_t end, size_t cols, double* total) {
  // Rows are added in float blocks, then into double: vectorised and still accurate.
  constexpr size_t kRowsPerBlock = 256;
  std::vector<float> block(cols);
  for (size_t r0 = begin; r0 < end; r0 += kRowsPerBlock) {
    const size_t r1 = r0 + kRowsPerBlock < end ? r0 + kRowsPerBlock : end;
    for (size_t c = 0; c < cols; ++c) block[c] = 0.0f;
    for (size_t r = r0; r < r1; ++r) {
      const float* row = x + r * cols;
      for (size_t c = 0; c < cols; ++c) block[c] += row[c];
    }
    for (size_t c = 0; c < cols; ++c) total[c] += block[c];
  }
}

NS_CLONES double sum_range(const float* x, size_t size) {
  double total = 0.0;
  for (size_t i = 0; i < size; ++i) total += x[i];
  return total;
}

// x as [rows, cols] summed over its rows: cols values, split across threads by rows.
void sum_rows(const float* x, float* out, size_t rows, size_t cols, float scale) {
  const int threads = rows * cols < kParallelMinimum ? 1 : omp_get_max_threads();
  std::vector<double> partials(static_cast<size_t>(threads) * cols, 0.0);
#pragma omp parallel num_threads(threads)
  {
    const size_t count = static_cast<size_t>(omp_get_num_threads());
    const size_t thread = static_cast<size_t>(omp_get_thread_num());
    accumulate_rows(x, rows * thread / count, rows * (thread + 1) / count, cols, partials.data() + thread * cols);
  }
  for (size_t c = 0; c < cols; ++c) {
    double total = 0.0;
    for (int t = 0; t < threads; ++t) total += partials[static_cast<size_t>(t) * cols + c];
    out[c] = static_cast<float>(total * scale);
  }
}
}  // namespace

void sum_axes(const float* x, float* out, size_t outer, size_t reduced, size_t inner, float scale) {
  const bool parallel = outer * reduced * inner >= kParallelMinimum && outer > 1;
  if (outer == 1) {
    sum_rows(x, out, reduced, inner, scale);
  } else if (inner == 1) {
#pragma omp parallel for if (parallel) schedule(static)
    for (size_t o = 0; o < outer; ++o) out[o] = static_cast<float>(sum_range(x + o * reduced, reduced) * scale);
  } else {
    // e.g. global average pooling of NHWC over H, W: one [reduced, inner] column sum per image.
#pragma omp parallel if (parallel)
    {
      std::vector<double> total(inner);
#pragma omp for schedule(static)
      for (size_t o = 0; o < outer; ++o) {
        std::fill(total.begin(), total.end(), 0.0);
        accumulate_rows(x + o * reduced * inner, 0, reduced, inner, total.data());
        for (size_t i = 0; i < inner; ++i) out[o * inner + i] = static_cast<float>(total[i] * scale);
      }
    }
  }
}

}  // namespace ns
