// Batch normalisation in training as one forward and one backward kernel over x = [rows, channels],
// replacing the ~25 small ops per layer that tfjs-layers composes.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"

namespace ns {
namespace {

// Per-channel Σ f(row values) over all rows, split across threads and added in double.
template <typename RowFn>
void channel_sums(size_t rows, size_t channels, int sums_per_channel, std::vector<double>& out, RowFn row_fn) {
  const int threads = omp_get_max_threads();
  const size_t width = channels * static_cast<size_t>(sums_per_channel);
  std::vector<double> partials(static_cast<size_t>(threads) * width, 0.0);
#pragma omp parallel num_threads(threads)
  {
    const size_t count = static_cast<size_t>(omp_get_num_threads());
    const size_t thread = static_cast<size_t>(omp_get_thread_num());
    double* partial = partials.data() + thread * width;
    std::vector<float> block(width);
    constexpr size_t kRowsPerBlock = 256;
    const size_t begin = rows * thread / count, end = rows * (thread + 1) / count;
    for (size_t r0 = begin; r0 < end; r0 += kRowsPerBlock) {
      const size_t r1 = r0 + kRowsPerBlock < end ? r0 + kRowsPerBlock : end;
      std::fill(block.begin(), block.end(), 0.0f);
      for (size_t r = r0; r < r1; ++r) row_fn(r, block.data());
      for (size_t i = 0; i < width; ++i) partial[i] += block[i];
    }
  }
  out.assign(width, 0.0);
  for (int t = 0; t < threads; ++t) {
    for (size_t i = 0; i < width; ++i) out[i] += partials[static_cast<size_t>(t) * width + i];
  }
}

NS_CLONES void channel_affine_rows(const float* x, const float* scale, const float* shift, size_t begin, size_t end,
                                  size_t channels, float* y) {
  for (size_t r = begin; r < end; ++r) {
    const float* row = x + r * channels;
    float* out = y + r * channels;
    for (size_t c = 0; c < channels; ++c) out[c] = row[c] * scale[c] + shift[c];
  }
}

void channel_affine(const float* x, const float* scale, const float* shift, size_t rows, size_t channels, float* y) {
  const bool parallel = rows * channels >= (1 << 15);
#pragma omp parallel if (parallel)
  {
    const size_t count = static_cast<size_t>(omp_get_num_threads());
    const size_t thread = static_cast<size_t>(omp_get_thread_num());
    channel_affine_rows(x, scale, shift, rows * thread / count, rows * (thread + 1) / count, channels, y);
  }
}

}  // namespace

void batch_norm_forward(const float* x, const float* gamma, const float* beta, float epsilon, size_t rows,
                        size_t channels, float* y, float* mean, float* variance) {
  std::vector<double> sums;
  channel_sums(rows, channels, 1, sums, [&](size_t r, float* acc) {
    const float* row = x + r * channels;
    for (size_t c = 0; c < channels; ++c) acc[c] += row[c];
  });
  std::vector<float> mean_f(channels);
  for (size_t c = 0; c < channels; ++c) mean_f[c] = static_cast<float>(sums[c] / static_cast<double>(rows));
  // Two passes (mean, then squared deviations), as tf.moments computes the biased variance.
  channel_sums(rows, channels, 1, sums, [&](size_t r, float* acc) {
    const float* row = x + r * channels;
    for (size_t c = 0; c < channels; ++c) {
      const float centered = row[c] - mean_f[c];
      acc[c] += centered * centered;
    }
  });
  for (size_t c = 0; c < channels; ++c) {
    mean[c] = mean_f[c];
    variance[c] = static_cast<float>(sums[c] / static_cast<double>(rows));
  }
  batch_norm_inference(x, mean, variance, gamma, beta, epsilon, rows, channels, y);
}

void batch_norm_inference(const float* x, const float* mean, const float* variance, const float* gamma,
                          const float* beta, float epsilon, size_t rows, size_t channels, float* y) {
  // y = x·scale + shift per channel.
  std::vector<float> scale(channels), shift(channels);
  for (size_t c = 0; c < channels; ++c) {
    scale[c] = (gamma != nullptr ? gamma[c] : 1.0f) / std::sqrt(variance[c] + epsilon);
    shift[c] = (beta != nullptr ? beta[c] : 0.0f) - mean[c] * scale[c];
  }
  channel_affine(x, scale.data(), shift.data(), rows, channels, y);
}

void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* variance,
                         const float* gamma, float epsilon, size_t rows, size_t channels, float* dx, float* dgamma,
                         float* dbeta) {
  std::vector<float> inverse_std(channels);
  for (size_t c = 0; c < channels; ++c) inverse_std[c] = 1.0f / std::sqrt(variance[c] + epsilon);
  // sums[2c] = Σ dy, sums[2c + 1] = Σ dy·(x − mean)
  std::vector<double> sums;
  channel_sums(rows, channels, 2, sums, [&](size_t r, float* acc) {
    const float* dy_row = dy + r * channels;
    const float* x_row = x + r * channels;
    for (size_t c = 0; c < channels; ++c) {
      acc[2 * c] += dy_row[c];
      acc[2 * c + 1] += dy_row[c] * (x_row[c] - mean[c]);
    }
  });
  // dx = γ/σ · (dy − Σdy/R − x̂ · Σ(dy·x̂)/R) with x̂ = (x − mean)/σ
  std::vector<float> gain(channels), offset(channels), slope(channels);
  const double inverse_rows = 1.0 / static_cast<double>(rows);
  for (size_t c = 0; c < channels; ++c) {
    const double sum_dy = sums[2 * c];
    const double sum_dy_centered = sums[2 * c + 1];
    dbeta[c] = static_cast<float>(sum_dy);
    dgamma[c] = static_cast<float>(sum_dy_centered * inverse_std[c]);
    gain[c] = gamma[c] * inverse_std[c];
    slope[c] = static_cast<float>(sum_dy_centered * inverse_rows * inverse_std[c] * inverse_std[c]);
    offset[c] = static_cast<float>(sum_dy * inverse_rows);
  }
#pragma omp parallel for schedule(static)
  for (size_t r = 0; r < rows; ++r) {
    const float* dy_row = dy + r * channels;
    const float* x_row = x + r * channels;
    float* dx_row = dx + r * channels;
    for (size_t c = 0; c < channels; ++c) {
      dx_row[c] = gain[c] * (dy_row[c] - offset[c] - (x_row[c] - mean[c]) * slope[c]);
    }
  }
}

}  // namespace ns
