// Convolutions: 3×3 stride-1 ones by Winograd where the CPU takes it (winograd.h), else oneDNN
// where the addon has it (dnnl_conv.cc), else im2col + SGEMM (OpenBLAS, one thread per call)
// with the work split across OpenMP threads: forward and filter gradient by ranges of output
// rows, input gradient by images.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "winograd.h"

namespace ns {
namespace {

int patch_size(const Conv2DShape& s) { return s.filter_height * s.filter_width * s.in_channels; }

bool is_pointwise(const Conv2DShape& s) {
  return s.filter_height == 1 && s.filter_width == 1 && s.stride_height == 1 && s.stride_width == 1 &&
         s.pad_top == 0 && s.pad_left == 0 && s.out_height == s.in_height && s.out_width == s.in_width;
}

// Rows per GEMM so that a thread's im2col buffer stays around 4 MiB.
size_t rows_per_chunk(const Conv2DShape& s) {
  const size_t by_memory = (size_t{1} << 20) / static_cast<size_t>(std::max(patch_size(s), 1));
  return std::clamp<size_t>(by_memory, 256, 16384);
}

// cols[r − row_begin, (kh·fw + kw)·ci + c] = x at the input pixel output row r's window reads
// (zero in the padding), for output rows r = (n·oh + oy)·ow + ox in [row_begin, row_end).
void im2col_rows(const Conv2DShape& s, const float* x, size_t row_begin, size_t row_end, float* cols) {
  const size_t k = static_cast<size_t>(patch_size(s));
  const size_t ci = static_cast<size_t>(s.in_channels);
  const size_t plane = static_cast<size_t>(s.out_height) * s.out_width;
  for (size_t r = row_begin; r < row_end; ++r) {
    const size_t n = r / plane;
    const int oy = static_cast<int>((r % plane) / s.out_width);
    const int ox = static_cast<int>(r % s.out_width);
    float* row = cols + (r - row_begin) * k;
    const float* image = x + n * s.in_height * s.in_width * ci;
    for (int kh = 0; kh < s.filter_height; ++kh) {
      const int iy = oy * s.stride_height + kh * s.dilation_height - s.pad_top;
      float* dst = row + static_cast<size_t>(kh) * s.filter_width * ci;
      if (iy < 0 || iy >= s.in_height) {
        std::memset(dst, 0, sizeof(float) * s.filter_width * ci);
        continue;
      }
      for (int kw = 0; kw < s.filter_width; ++kw, dst += ci) {
        const int ix = ox * s.stride_width + kw * s.dilation_width - s.pad_left;
        if (ix < 0 || ix >= s.in_width) {
          std::memset(dst, 0, sizeof(float) * ci);
        } else {
          std::memcpy(dst, image + (static_cast<size_t>(iy) * s.in_width + ix) * ci, sizeof(float) * ci);
        }
      }
    }
  }
}

// dx_image += the columns of one image scattered back to the pixels they were read from.
void col2im_image(const Conv2DShape& s, const float* cols, float* dx_image) {
  const size_t k = static_cast<size_t>(patch_size(s));
  const size_t ci = static_cast<size_t>(s.in_channels);
  for (int oy = 0; oy < s.out_height; ++oy) {
    for (int ox = 0; ox < s.out_width; ++ox) {
      const float* row = cols + (static_cast<size_t>(oy) * s.out_width + ox) * k;
      for (int kh = 0; kh < s.filter_height; ++kh) {
        const int iy = oy * s.stride_height + kh * s.dilation_height - s.pad_top;
        if (iy < 0 || iy >= s.in_height) continue;
        for (int kw = 0; kw < s.filter_width; ++kw) {
          const int ix = ox * s.stride_width + kw * s.dilation_width - s.pad_left;
          if (ix < 0 || ix >= s.in_width) continue;
          const float* src = row + (static_cast<size_t>(kh) * s.filter_width + kw) * ci;
          float* dst = dx_image + (static_cast<size_t>(iy) * s.in_width + ix) * ci;
          for (size_t c = 0; c < ci; ++c) dst[c] += src[c];
        }
      }
    }
  }
}

NS_CLONES void bias_activation(float* out, size_t rows, size_t cols, const float* bias, Activation activation) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = out + r * cols;
    if (bias != nullptr) {
      for (size_t c = 0; c < cols; ++c) row[c] += bias[c];
    }
    if (activation == Activation::kRelu) {
      for (size_t c = 0; c < cols; ++c) row[c] = row[c] > 0.0f ? row[c] : 0.0f;
    }
  }
}

// The contiguous share [begin, end) of `total` items that thread `index` of `count` takes.
void share(size_t total, int index, int count, size_t* begin, size_t* end) {
  *begin = total * static_cast<size_t>(index) / static_cast<size_t>(count);
  *end = total * static_cast<size_t>(index + 1) / static_cast<size_t>(count);
}

thread_local std::vector<float> scratch;

// oneDNN when the addon was built with it, unless NS_CONV=blas asks for im2col + SGEMM.
bool use_dnnl() {
#ifdef NS_HAVE_DNNL
  static const bool enabled = [] {
    const char* choice = std::getenv("NS_CONV");
    return (choice == nullptr || std::string(choice) != "blas") && dnnl_available();
  }();
  return enabled;
#else
  return false;
#endif
}

float* scratch_floats(size_t count) {
  if (scratch.size() < count) scratch.resize(count);
  return scratch.data();
}

// The im2col rows [r, r + count) as a matrix: x itself for a pointwise convolution, else the
// thread's scratch buffer filled by im2col.
const float* patch_rows(const Conv2DShape& s, const float* x, size_t r, size_t count, bool pointwise) {
  const size_t k = static_cast<size_t>(patch_size(s));
  if (pointwise) return x + r * k;
  float* buffer = scratch_floats(count * k);
  im2col_rows(s, x, r, r + count, buffer);
  return buffer;
}

// The transformed filter of a Winograd convolution (16 × in × out floats), reused call to call.
float* winograd_scratch(const Conv2DShape& s) {
  thread_local std::vector<float> transformed;
  transformed.resize(static_cast<size_t>(16) * s.in_channels * s.out_channels);
  return transformed.data();
}

}  // namespace

const char* conv_library() {
  if (winograd_enabled()) return use_dnnl() ? "winograd 3×3 + onednn" : "winograd 3×3 + openblas";
  return use_dnnl() ? "onednn" : "openblas";
}

void conv2d_forward(const Conv2DShape& s, const float* x, const float* filter, const float* bias,
                    Activation activation, float* out) {
  if (winograd_enabled() && winograd_fits(s)) {
    float* u = winograd_scratch(s);
    winograd_filter(filter, s.in_channels, s.out_channels, false, u);
    winograd_conv3x3(u, bias, s.in_channels, s.out_channels, x, nhwc_layout(s.in_height, s.in_width, s.in_channels), out,
                     nhwc_layout(s.out_height, s.out_width, s.out_channels), s.batch, s.out_height, s.out_width, false,
                     activation == Activation::kRelu);
    return;
  }
#ifdef NS_HAVE_DNNL
  if (use_dnnl() && dnnl_conv2d_forward(s, x, filter, bias, activation, out)) return;
#endif
  const size_t k = static_cast<size_t>(patch_size(s));
  const size_t co = static_cast<size_t>(s.out_channels);
  const size_t rows = static_cast<size_t>(s.batch) * s.out_height * s.out_width;
  const size_t chunk = rows_per_chunk(s);
  const bool pointwise = is_pointwise(s);
#pragma omp parallel
  {
    size_t begin, end;
    share(rows, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
    for (size_t r = begin; r < end; r += chunk) {
      const size_t count = std::min(chunk, end - r);
      const float* cols = patch_rows(s, x, r, count, pointwise);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(count), static_cast<int>(co),
                  static_cast<int>(k), 1.0f, cols, static_cast<int>(k), filter, static_cast<int>(co), 0.0f,
                  out + r * co, static_cast<int>(co));
      if (bias != nullptr || activation != Activation::kLinear) {
        bias_activation(out + r * co, count, co, bias, activation);
      }
    }
  }
}

void conv2d_backprop_input(const Conv2DShape& s, const float* dy, const float* filter, float* dx) {
  if (winograd_enabled() && winograd_fits(s)) {
    // With stride 1 and padding 1 the input gradient is itself a 3×3 convolution of dy.
    float* u = winograd_scratch(s);
    winograd_filter(filter, s.in_channels, s.out_channels, true, u);
    winograd_conv3x3(u, nullptr, s.out_channels, s.in_channels, dy, nhwc_layout(s.out_height, s.out_width, s.out_channels),
                     dx, nhwc_layout(s.in_height, s.in_width, s.in_channels), s.batch, s.in_height, s.in_width, false,
                     false);
    return;
  }
#ifdef NS_HAVE_DNNL
  if (use_dnnl() && dnnl_conv2d_backprop_input(s, dy, filter, dx)) return;
#endif
  const size_t k = static_cast<size_t>(patch_size(s));
  const size_t co = static_cast<size_t>(s.out_channels);
  const size_t image_rows = static_cast<size_t>(s.out_height) * s.out_width;
  const size_t image_size = static_cast<size_t>(s.in_height) * s.in_width * s.in_channels;
  if (is_pointwise(s)) {
    // dx = dy · wᵀ row for row: no scatter needed.
    const size_t rows = static_cast<size_t>(s.batch) * image_rows;
#pragma omp parallel
    {
      size_t begin, end;
      share(rows, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
      if (end > begin) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(end - begin), static_cast<int>(k),
                    static_cast<int>(co), 1.0f, dy + begin * co, static_cast<int>(co), filter, static_cast<int>(co),
                    0.0f, dx + begin * k, static_cast<int>(k));
      }
    }
    return;
  }
  // Images are split across threads: windows of one image overlap, those of two never do.
#pragma omp parallel
  {
    size_t begin, end;
    share(static_cast<size_t>(s.batch), omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
    float* cols = scratch_floats(image_rows * k);
    for (size_t n = begin; n < end; ++n) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(image_rows), static_cast<int>(k),
                  static_cast<int>(co), 1.0f, dy + n * image_rows * co, static_cast<int>(co), filter,
                  static_cast<int>(co), 0.0f, cols, static_cast<int>(k));
      float* dx_image = dx + n * image_size;
      std::memset(dx_image, 0, sizeof(float) * image_size);
      col2im_image(s, cols, dx_image);
    }
  }
}

void conv2d_backprop_filter(const Conv2DShape& s, const float* x, const float* dy, float* dw) {
  if (winograd_enabled() && winograd_fits(s)) {
    winograd_filter_gradient(x, nhwc_layout(s.in_height, s.in_width, s.in_channels), dy,
                             nhwc_layout(s.out_height, s.out_width, s.out_channels), s.batch, s.in_height, s.in_width,
                             s.in_channels, s.out_channels, dw);
    return;
  }
#ifdef NS_HAVE_DNNL
  if (use_dnnl() && dnnl_conv2d_backprop_filter(s, x, dy, dw)) return;
#endif
  const size_t k = static_cast<size_t>(patch_size(s));
  const size_t co = static_cast<size_t>(s.out_channels);
  const size_t rows = static_cast<size_t>(s.batch) * s.out_height * s.out_width;
  const size_t chunk = rows_per_chunk(s);
  const bool pointwise = is_pointwise(s);
  const int threads = omp_get_max_threads();
  // Each thread sums its rows into its own partial gradient; the partials are added at the end.
  std::vector<float> partials(static_cast<size_t>(threads) * k * co, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    const int thread = omp_get_thread_num();
    size_t begin, end;
    share(rows, thread, omp_get_num_threads(), &begin, &end);
    float* partial = partials.data() + static_cast<size_t>(thread) * k * co;
    for (size_t r = begin; r < end; r += chunk) {
      const size_t count = std::min(chunk, end - r);
      const float* cols = patch_rows(s, x, r, count, pointwise);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(k), static_cast<int>(co),
                  static_cast<int>(count), 1.0f, cols, static_cast<int>(k), dy + r * co, static_cast<int>(co), 1.0f,
                  partial, static_cast<int>(co));
    }
  }
  const size_t size = k * co;
  std::memcpy(dw, partials.data(), sizeof(float) * size);
  for (int t = 1; t < threads; ++t) {
    const float* partial = partials.data() + static_cast<size_t>(t) * size;
    for (size_t i = 0; i < size; ++i) dw[i] += partial[i];
  }
}

}  // namespace ns
