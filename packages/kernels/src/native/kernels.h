// Native CPU kernels over tensors that live in tfjs-backend-wasm's heap (NHWC, float32).
// Every function is plain C++ over raw pointers; addon.cc maps JavaScript calls onto them.
#pragma once

#include <cstddef>
#include <cstdint>

// Hot loops are compiled for several instruction sets and picked at load time (GCC ifunc),
// so one build runs on any x86-64 and uses AVX2/AVX-512 where the CPU has them.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NS_CLONES
#endif

namespace ns {

enum class Activation : int { kLinear = 0, kRelu = 1 };

struct Conv2DShape {
  int batch, in_height, in_width, in_channels;
  int filter_height, filter_width, out_channels;
  int out_height, out_width;
  int stride_height, stride_width;
  int dilation_height, dilation_width;
  int pad_top, pad_left;
};

// out[n,oy,ox,co] = act(Σ x[n, oy·s + kh·d − pad, …, ci] · w[kh,kw,ci,co] + bias[co])
void conv2d_forward(const Conv2DShape& s, const float* x, const float* filter, const float* bias,
                    Activation activation, float* out);
// dx = col2im(dy · wᵀ)
void conv2d_backprop_input(const Conv2DShape& s, const float* dy, const float* filter, float* dx);
// dw = Σ_n im2col(x)ᵀ · dy
void conv2d_backprop_filter(const Conv2DShape& s, const float* x, const float* dy, float* dw);

// The same three through oneDNN; false when oneDNN cannot run that shape (the caller falls back).
bool dnnl_available();
bool dnnl_conv2d_forward(const Conv2DShape& s, const float* x, const float* filter, const float* bias,
                         Activation activation, float* out);
bool dnnl_conv2d_backprop_input(const Conv2DShape& s, const float* dy, const float* filter, float* dx);
bool dnnl_conv2d_backprop_filter(const Conv2DShape& s, const float* x, const float* dy, float* dw);

// c[b] = op(a[b]) · op(b[b]) for b in batch; a_batch/b_batch of 1 broadcast.
void batch_matmul(const float* a, const float* b, float* c, int batch, int a_batch, int b_batch, int m, int n,
                  int k, bool transpose_a, bool transpose_b, const float* bias, int bias_size, Activation activation);

// Elementwise over `size` values; `b` repeats every `b_size` values (b_size == size: same shape).
void add(const float* a, const float* b, float* out, size_t size, size_t b_size);
void multiply(const float* a, const float* b, float* out, size_t size, size_t b_size);
void relu(const float* x, float* out, size_t size);
void relu_grad(const float* dy, const float* x, float* dx, size_t size);

// x viewed as [outer, reduced, inner] summed over its middle axis (× scale) into [outer, inner];
// outer = 1 sums leading axes, inner = 1 trailing ones.
void sum_axes(const float* x, float* out, size_t outer, size_t reduced, size_t inner, float scale);

// Batch normalisation in training over x = [rows, channels]: batch mean and biased variance.
void batch_norm_forward(const float* x, const float* gamma, const float* beta, float epsilon, size_t rows,
                        size_t channels, float* y, float* mean, float* variance);
// Inference: y = (x − mean)/√(var + ε)·γ + β with given statistics; γ/β may be null (1 and 0).
void batch_norm_inference(const float* x, const float* mean, const float* variance, const float* gamma,
                          const float* beta, float epsilon, size_t rows, size_t channels, float* y);
// Gradients of y = (x − mean)/√(var + ε)·γ + β with mean and var the batch statistics of x.
void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* variance,
                         const float* gamma, float epsilon, size_t rows, size_t channels, float* dx, float* dgamma,
                         float* dbeta);

// One Adam step for one variable (tfjs-core's formula), writing the new value and moments.
void adam_update(const float* value, const float* gradient, const float* first_moment, const float* second_moment,
                 size_t size, float learning_rate, float beta1, float beta2, float epsilon,
                 float one_minus_acc_beta1, float one_minus_acc_beta2, float* new_value, float* new_first_moment,
                 float* new_second_moment);

int thread_count();
// Threads for the kernels this thread calls from now on (OpenMP keeps the setting per thread).
void set_thread_count(int threads);
// "onednn" or "openblas": what the convolutions run on.
const char* conv_library();

}  // namespace ns
