// N-API bindings: every function takes the wasm heap (an ArrayBuffer) and byte offsets of the
// tensors in it, checks each range against the heap, and runs the kernel in place.
#include <cblas.h>
#include <napi.h>

#include <string>

#include "kernels.h"

#ifdef NS_HAVE_DNNL
namespace ns {
// graph_binding.cc: the InferenceGraph class (whole-model inference on oneDNN).
void register_inference_graph(Napi::Env env, Napi::Object exports);
}  // namespace ns
#endif

namespace {

class Heap {
 public:
  explicit Heap(const Napi::Value& value) {
    if (!value.IsArrayBuffer()) throw Napi::TypeError::New(value.Env(), "heap: expected an ArrayBuffer");
    auto buffer = value.As<Napi::ArrayBuffer>();
    base_ = static_cast<uint8_t*>(buffer.Data());
    length_ = buffer.ByteLength();
  }

  float* floats(const Napi::CallbackInfo& info, size_t arg, size_t count, const char* name) const {
    const double offset = info[arg].As<Napi::Number>().DoubleValue();
    if (offset < 0 || offset + count * sizeof(float) > static_cast<double>(length_) ||
        static_cast<size_t>(offset) % alignof(float) != 0) {
      throw Napi::RangeError::New(info.Env(), std::string(name) + ": " + std::to_string(count) +
                                                  " floats at byte offset " + std::to_string(static_cast<long long>(offset)) +
                                                  " do not fit in the " + std::to_string(length_) + "-byte heap");
    }
    return reinterpret_cast<float*>(base_ + static_cast<size_t>(offset));
  }

  // An optional tensor: a negative offset means "absent".
  float* optional_floats(const Napi::CallbackInfo& info, size_t arg, size_t count, const char* name) const {
    return info[arg].As<Napi::Number>().DoubleValue() < 0 ? nullptr : floats(info, arg, count, name);
  }

 private:
  uint8_t* base_ = nullptr;
  size_t length_ = 0;
};

size_t size_arg(const Napi::CallbackInfo& info, size_t arg) {
  const double value = info[arg].As<Napi::Number>().DoubleValue();
  if (!(value >= 0)) throw Napi::RangeError::New(info.Env(), "expected a non-negative size");
  return static_cast<size_t>(value);
}

int int_arg(const Napi::CallbackInfo& info, size_t arg) { return info[arg].As<Napi::Number>().Int32Value(); }
float float_arg(const Napi::CallbackInfo& info, size_t arg) { return info[arg].As<Napi::Number>().FloatValue(); }

void require_args(const Napi::CallbackInfo& info, size_t count, const char* name) {
  if (info.Length() < count) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected " + std::to_string(count) + " arguments");
  }
}

// dims: batch, inHeight, inWidth, inChannels, filterHeight, filterWidth, outChannels, outHeight,
//       outWidth, strideHeight, strideWidth, dilationHeight, dilationWidth, padTop, padLeft
ns::Conv2DShape conv_shape(const Napi::CallbackInfo& info, size_t arg) {
  if (!info[arg].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "dims: expected an Int32Array of 15");
  auto dims = info[arg].As<Napi::Int32Array>();
  if (dims.ElementLength() != 15) throw Napi::TypeError::New(info.Env(), "dims: expected an Int32Array of 15");
  ns::Conv2DShape s{dims[0], dims[1], dims[2],  dims[3],  dims[4],  dims[5],  dims[6], dims[7],
                    dims[8], dims[9], dims[10], dims[11], dims[12], dims[13], dims[14]};
  for (size_t i = 0; i < 13; ++i) {
    if (dims[i] <= 0) throw Napi::RangeError::New(info.Env(), "dims: sizes, strides and dilations must be positive");
  }
  return s;
}

size_t input_size(const ns::Conv2DShape& s) {
  return static_cast<size_t>(s.batch) * s.in_height * s.in_width * s.in_channels;
}
size_t output_size(const ns::Conv2DShape& s) {
  return static_cast<size_t>(s.batch) * s.out_height * s.out_width * s.out_channels;
}
size_t filter_size(const ns::Conv2DShape& s) {
  return static_cast<size_t>(s.filter_height) * s.filter_width * s.in_channels * s.out_channels;
}

ns::Activation activation_arg(const Napi::CallbackInfo& info, size_t arg) {
  const int value = int_arg(info, arg);
  if (value != 0 && value != 1) throw Napi::RangeError::New(info.Env(), "activation: expected 0 (linear) or 1 (relu)");
  return static_cast<ns::Activation>(value);
}

// conv2dForward(heap, dims, x, filter, bias | -1, out, activation)
Napi::Value Conv2DForward(const Napi::CallbackInfo& info) {
  require_args(info, 7, "conv2dForward");
  Heap heap(info[0]);
  const auto s = conv_shape(info, 1);
  ns::conv2d_forward(s, heap.floats(info, 2, input_size(s), "x"), heap.floats(info, 3, filter_size(s), "filter"),
                     heap.optional_floats(info, 4, static_cast<size_t>(s.out_channels), "bias"),
                     activation_arg(info, 6), heap.floats(info, 5, output_size(s), "out"));
  return info.Env().Undefined();
}

// conv2dBackpropInput(heap, dims, dy, filter, dx)
Napi::Value Conv2DBackpropInput(const Napi::CallbackInfo& info) {
  require_args(info, 5, "conv2dBackpropInput");
  Heap heap(info[0]);
  const auto s = conv_shape(info, 1);
  ns::conv2d_backprop_input(s, heap.floats(info, 2, output_size(s), "dy"),
                            heap.floats(info, 3, filter_size(s), "filter"), heap.floats(info, 4, input_size(s), "dx"));
  return info.Env().Undefined();
}

// conv2dBackpropFilter(heap, dims, x, dy, dw)
Napi::Value Conv2DBackpropFilter(const Napi::CallbackInfo& info) {
  require_args(info, 5, "conv2dBackpropFilter");
  Heap heap(info[0]);
  const auto s = conv_shape(info, 1);
  ns::conv2d_backprop_filter(s, heap.floats(info, 2, input_size(s), "x"), heap.floats(info, 3, output_size(s), "dy"),
                             heap.floats(info, 4, filter_size(s), "dw"));
  return info.Env().Undefined();
}

// batchMatMul(heap, a, b, c, batch, aBatch, bBatch, m, n, k, transposeA, transposeB, bias | -1, biasSize, activation)
Napi::Value BatchMatMul(const Napi::CallbackInfo& info) {
  require_args(info, 15, "batchMatMul");
  Heap heap(info[0]);
  const int batch = int_arg(info, 4), a_batch = int_arg(info, 5), b_batch = int_arg(info, 6);
  const int m = int_arg(info, 7), n = int_arg(info, 8), k = int_arg(info, 9);
  if (batch <= 0 || m <= 0 || n <= 0 || k <= 0 || (a_batch != 1 && a_batch != batch) ||
      (b_batch != 1 && b_batch != batch)) {
    throw Napi::RangeError::New(info.Env(), "batchMatMul: inconsistent batch or matrix sizes");
  }
  const int bias_size = int_arg(info, 13);
  ns::batch_matmul(heap.floats(info, 1, static_cast<size_t>(a_batch) * m * k, "a"),
                   heap.floats(info, 2, static_cast<size_t>(b_batch) * k * n, "b"),
                   heap.floats(info, 3, static_cast<size_t>(batch) * m * n, "c"), batch, a_batch, b_batch, m, n, k,
                   info[10].ToBoolean(), info[11].ToBoolean(),
                   heap.optional_floats(info, 12, static_cast<size_t>(bias_size), "bias"), bias_size,
                   activation_arg(info, 14));
  return info.Env().Undefined();
}

// add / multiply(heap, a, b, out, size, bSize)
template <void (*Op)(const float*, const float*, float*, size_t, size_t)>
Napi::Value Binary(const Napi::CallbackInfo& info) {
  require_args(info, 6, "binary op");
  Heap heap(info[0]);
  const size_t size = size_arg(info, 4), b_size = size_arg(info, 5);
  if (b_size == 0 || size % b_size != 0) throw Napi::RangeError::New(info.Env(), "bSize: must divide size");
  Op(heap.floats(info, 1, size, "a"), heap.floats(info, 2, b_size, "b"), heap.floats(info, 3, size, "out"), size,
     b_size);
  return info.Env().Undefined();
}

// relu(heap, x, out, size)
Napi::Value Relu(const Napi::CallbackInfo& info) {
  require_args(info, 4, "relu");
  Heap heap(info[0]);
  const size_t size = size_arg(info, 3);
  ns::relu(heap.floats(info, 1, size, "x"), heap.floats(info, 2, size, "out"), size);
  return info.Env().Undefined();
}

// reluGrad(heap, dy, x, dx, size)
Napi::Value ReluGrad(const Napi::CallbackInfo& info) {
  require_args(info, 5, "reluGrad");
  Heap heap(info[0]);
  const size_t size = size_arg(info, 4);
  ns::relu_grad(heap.floats(info, 1, size, "dy"), heap.floats(info, 2, size, "x"), heap.floats(info, 3, size, "dx"),
                size);
  return info.Env().Undefined();
}

// sumAxes(heap, x, out, outer, reduced, inner, scale): x as [outer, reduced, inner] → out [outer, inner]
Napi::Value SumAxes(const Napi::CallbackInfo& info) {
  require_args(info, 7, "sumAxes");
  Heap heap(info[0]);
  const size_t outer = size_arg(info, 3), reduced = size_arg(info, 4), inner = size_arg(info, 5);
  ns::sum_axes(heap.floats(info, 1, outer * reduced * inner, "x"), heap.floats(info, 2, outer * inner, "out"), outer,
               reduced, inner, float_arg(info, 6));
  return info.Env().Undefined();
}

// batchNormForward(heap, x, gamma, beta, epsilon, rows, channels, y, mean, variance)
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  require_args(info, 10, "batchNormForward");
  Heap heap(info[0]);
  const size_t rows = size_arg(info, 5), channels = size_arg(info, 6);
  ns::batch_norm_forward(heap.floats(info, 1, rows * channels, "x"), heap.floats(info, 2, channels, "gamma"),
                         heap.floats(info, 3, channels, "beta"), float_arg(info, 4), rows, channels,
                         heap.floats(info, 7, rows * channels, "y"), heap.floats(info, 8, channels, "mean"),
                         heap.floats(info, 9, channels, "variance"));
  return info.Env().Undefined();
}

// batchNormInference(heap, x, mean, variance, gamma | -1, beta | -1, epsilon, rows, channels, y)
Napi::Value BatchNormInference(const Napi::CallbackInfo& info) {
  require_args(info, 10, "batchNormInference");
  Heap heap(info[0]);
  const size_t rows = size_arg(info, 7), channels = size_arg(info, 8);
  ns::batch_norm_inference(heap.floats(info, 1, rows * channels, "x"), heap.floats(info, 2, channels, "mean"),
                           heap.floats(info, 3, channels, "variance"), heap.optional_floats(info, 4, channels, "gamma"),
                           heap.optional_floats(info, 5, channels, "beta"), float_arg(info, 6), rows, channels,
                           heap.floats(info, 9, rows * channels, "y"));
  return info.Env().Undefined();
}

// batchNormBackward(heap, dy, x, mean, variance, gamma, epsilon, rows, channels, dx, dgamma, dbeta)
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  require_args(info, 12, "batchNormBackward");
  Heap heap(info[0]);
  const size_t rows = size_arg(info, 7), channels = size_arg(info, 8);
  ns::batch_norm_backward(heap.floats(info, 1, rows * channels, "dy"), heap.floats(info, 2, rows * channels, "x"),
                          heap.floats(info, 3, channels, "mean"), heap.floats(info, 4, channels, "variance"),
                          heap.floats(info, 5, channels, "gamma"), float_arg(info, 6), rows, channels,
                          heap.floats(info, 9, rows * channels, "dx"), heap.floats(info, 10, channels, "dgamma"),
                          heap.floats(info, 11, channels, "dbeta"));
  return info.Env().Undefined();
}

// adamUpdate(heap, value, gradient, m, v, size, lr, beta1, beta2, epsilon, oneMinusAccBeta1, oneMinusAccBeta2,
//            newValue, newM, newV)
Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  require_args(info, 15, "adamUpdate");
  Heap heap(info[0]);
  const size_t size = size_arg(info, 5);
  ns::adam_update(heap.floats(info, 1, size, "value"), heap.floats(info, 2, size, "gradient"),
                  heap.floats(info, 3, size, "firstMoment"), heap.floats(info, 4, size, "secondMoment"), size,
                  float_arg(info, 6), float_arg(info, 7), float_arg(info, 8), float_arg(info, 9), float_arg(info, 10),
                  float_arg(info, 11), heap.floats(info, 12, size, "newValue"),
                  heap.floats(info, 13, size, "newFirstMoment"), heap.floats(info, 14, size, "newSecondMoment"));
  return info.Env().Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ns::thread_count()); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "setThreads: expected 1 argument, a thread count");
  }
  const int threads = info[0].As<Napi::Number>().Int32Value();
  if (threads < 1) throw Napi::RangeError::New(info.Env(), "threads: expected a count of at least 1");
  ns::set_thread_count(threads);
  return Napi::Number::New(info.Env(), ns::thread_count());
}

Napi::Value ConvLibrary(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), ns::conv_library()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Threads come from OpenMP around each kernel; every GEMM inside runs on the calling thread.
  openblas_set_num_threads(1);
  exports.Set("conv2dForward", Napi::Function::New(env, Conv2DForward));
  exports.Set("conv2dBackpropInput", Napi::Function::New(env, Conv2DBackpropInput));
  exports.Set("conv2dBackpropFilter", Napi::Function::New(env, Conv2DBackpropFilter));
  exports.Set("batchMatMul", Napi::Function::New(env, BatchMatMul));
  exports.Set("add", Napi::Function::New(env, Binary<ns::add>));
  exports.Set("multiply", Napi::Function::New(env, Binary<ns::multiply>));
  exports.Set("relu", Napi::Function::New(env, Relu));
  exports.Set("reluGrad", Napi::Function::New(env, ReluGrad));
  exports.Set("sumAxes", Napi::Function::New(env, SumAxes));
  exports.Set("batchNormForward", Napi::Function::New(env, BatchNormForward));
  exports.Set("batchNormInference", Napi::Function::New(env, BatchNormInference));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackward));
  exports.Set("adamUpdate", Napi::Function::New(env, AdamUpdate));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("convLibrary", Napi::Function::New(env, ConvLibrary));
#ifdef NS_HAVE_DNNL
  ns::register_inference_graph(env, exports);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(ns_kernels, Init)
