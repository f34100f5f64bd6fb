// Large elementwise kernels, split across threads; small tensors stay on wasm (see native-kernels.ts).
#include <omp.h>

#include <algorithm>

#include "kernels.h"

namespace ns {
namespace {

// Below this many values a parallel region costs more than it saves.
constexpr size_t kParallelMinimum = 1 << 15;

template <typename Body>
void parallel_rows(size_t rows, size_t row_size, Body body) {
  if (rows * row_size < kParallelMinimum || rows < 2) {
    body(size_t{0}, rows);
    return;
  }
#pragma omp parallel
  {
    const size_t threads = static_cast<size_t>(omp_get_num_threads());
    const size_t thread = static_cast<size_t>(omp_get_thread_num());
    body(rows * thread / threads, rows * (thread + 1) / threads);
  }
}

NS_CLONES void add_rows(const float* a, const float* b, float* out, size_t begin, size_t end, size_t width) {
  for (size_t r = begin; r < end; ++r) {
    const float* ar = a + r * width;
    float* outr = out + r * width;
    for (size_t c = 0; c < width; ++c) outr[c] = ar[c] + b[c];
  }
}

NS_CLONES void multiply_rows(const float* a, const float* b, float* out, size_t begin, size_t end, size_t width) {
  for (size_t r = begin; r < end; ++r) {
    const float* ar = a + r * width;
    float* outr = out + r * width;
    for (size_t c = 0; c < width; ++c) outr[c] = ar[c] * b[c];
  }
}

NS_CLONES void add_same(const float* a, const float* b, float* out, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) out[i] = a[i] + b[i];
}

NS_CLONES void multiply_same(const float* a, const float* b, float* out, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) out[i] = a[i] * b[i];
}

NS_CLONES void relu_range(const float* x, float* out, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) out[i] = x[i] > 0.0f ? x[i] : (x[i] != x[i] ? x[i] : 0.0f);
}

NS_CLONES void relu_grad_range(const float* dy, const float* x, float* dx, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

constexpr size_t kBlock = 4096;

}  // namespace

void add(const float* a, const float* b, float* out, size_t size, size_t b_size) {
  if (b_size == size) {
    parallel_rows((size + kBlock - 1) / kBlock, kBlock, [&](size_t begin, size_t end) {
      add_same(a, b, out, begin * kBlock, std::min(end * kBlock, size));
    });
  } else {
    parallel_rows(size / b_size, b_size, [&](size_t begin, size_t end) { add_rows(a, b, out, begin, end, b_size); });
  }
}

void multiply(const float* a, const float* b, float* out, size_t size, size_t b_size) {
  if (b_size == size) {
    parallel_rows((size + kBlock - 1) / kBlock, kBlock, [&](size_t begin, size_t end) {
      multiply_same(a, b, out, begin * kBlock, std::min(end * kBlock, size));
    });
  } else {
    parallel_rows(size / b_size, b_size,
                  [&](size_t begin, size_t end) { multiply_rows(a, b, out, begin, end, b_size); });
  }
}

void relu(const float* x, float* out, size_t size) {
  parallel_rows((size + kBlock - 1) / kBlock, kBlock, [&](size_t begin, size_t end) {
    relu_range(x, out, begin * kBlock, std::min(end * kBlock, size));
  });
}

void relu_grad(const float* dy, const float* x, float* dx, size_t size) {
  parallel_rows((size + kBlock - 1) / kBlock, kBlock, [&](size_t begin, size_t end) {
    relu_grad_range(dy, x, dx, begin * kBlock, std::min(end * kBlock, size));
  });
}

int thread_count() { return omp_get_max_threads(); }

void set_thread_count(int threads) { omp_set_num_threads(threads); }

}  // namespace ns
