// Batched matrix products through OpenBLAS, batches split across threads, with bias + ReLU fused.
#include <cblas.h>
#include <omp.h>

#include "kernels.h"

namespace ns {

void batch_matmul(const float* a, const float* b, float* c, int batch, int a_batch, int b_batch, int m, int n,
                  int k, bool transpose_a, bool transpose_b, const float* bias, int bias_size, Activation activation) {
  const size_t a_stride = static_cast<size_t>(m) * k;
  const size_t b_stride = static_cast<size_t>(k) * n;
  const size_t c_stride = static_cast<size_t>(m) * n;
  const int lda = transpose_a ? m : k;
  const int ldb = transpose_b ? k : n;
  // One product: split its rows across threads. Several: one product per thread at a time.
  const bool split_rows = batch == 1;
#pragma omp parallel
  {
    const int threads = omp_get_num_threads();
    const int thread = omp_get_thread_num();
    for (int i = split_rows ? 0 : thread; i < batch; i += split_rows ? 1 : threads) {
      const float* ai = a + (a_batch == 1 ? 0 : static_cast<size_t>(i) * a_stride);
      const float* bi = b + (b_batch == 1 ? 0 : static_cast<size_t>(i) * b_stride);
      float* ci = c + static_cast<size_t>(i) * c_stride;
      int row_begin = 0, row_end = m;
      if (split_rows) {
        row_begin = static_cast<int>(static_cast<long>(m) * thread / threads);
        row_end = static_cast<int>(static_cast<long>(m) * (thread + 1) / threads);
      }
      const int rows = row_end - row_begin;
      if (rows <= 0) continue;
      // Rows of op(a) start at row_begin: a row of a, or a column when a is transposed.
      const float* a_rows = transpose_a ? ai + row_begin : ai + static_cast<size_t>(row_begin) * k;
      float* c_rows = ci + static_cast<size_t>(row_begin) * n;
      cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
                  rows, n, k, 1.0f, a_rows, lda, bi, ldb, 0.0f, c_rows, n);
      if (bias != nullptr || activation == Activation::kRelu) {
        for (int r = 0; r < rows; ++r) {
          float* row = c_rows + static_cast<size_t>(r) * n;
          for (int j = 0; j < n; ++j) {
            float value = row[j] + (bias != nullptr ? bias[bias_size == 1 ? 0 : j] : 0.0f);
            row[j] = activation == Activation::kRelu && value < 0.0f ? 0.0f : value;
          }
        }
      }
    }
  }
}

}  // namespace ns
