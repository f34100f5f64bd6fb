// Convolutions through oneDNN (Debian's libdnnl, the library PyTorch's CPU convolutions use):
// activations stay NHWC in the wasm heap, filters HWIO; oneDNN picks its own blocked filter
// layout and we reorder into it (a filter is small next to its activations). Primitives are
// built once per shape and kept. Returns false for what it cannot express, so the caller
// falls back to the im2col + SGEMM path.
#include <dnnl.hpp>

#include <cstring>
#include <map>
#include <unordered_map>
#include <memory>
#include <string>
#include <vector>

#include "kernels.h"

namespace ns {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

enum class Direction { kForward, kBackwardData, kBackwardWeights };

struct Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

Context& context() {
  thread_local Context instance;  // per JS thread: model workers run convolutions concurrently
  return instance;
}

struct Geometry {
  memory::dims src, weights, bias, dst, strides, dilates, padding_l, padding_r;
};

bool geometry(Direction direction, const Conv2DShape& s, Geometry* g) {
  const int effective_h = (s.filter_height - 1) * s.dilation_height + 1;
  const int effective_w = (s.filter_width - 1) * s.dilation_width + 1;
  const int exact_bottom = (s.out_height - 1) * s.stride_height + effective_h - s.in_height - s.pad_top;
  const int exact_right = (s.out_width - 1) * s.stride_width + effective_w - s.in_width - s.pad_left;
  // TensorFlow's 'same' padding of a strided convolution can leave the last input rows unread
  // (a 1×1 stride-2 filter over an even size): the padding that balances is then negative, and
  // oneDNN, which rounds the output size down, gets the same output from no padding at all.
  // Except for the filter gradient: oneDNN 2.6.3's AVX2 backward-weights kernel gets it wrong
  // there (x 2×8×8×4, 1×1 stride 2: off by 0.69 on an AVX2-only CPU; right with AVX-512 or
  // SSE4.1), so that shape falls back to im2col + BLAS.
  if ((exact_bottom < 0 || exact_right < 0) && direction == Direction::kBackwardWeights) return false;
  const auto far_padding = [](int exact, int out, int stride, int effective, int in, int near) {
    return exact < 0 && (in + near - effective) / stride + 1 == out ? 0 : exact;
  };
  const int pad_bottom = far_padding(exact_bottom, s.out_height, s.stride_height, effective_h, s.in_height, s.pad_top);
  const int pad_right = far_padding(exact_right, s.out_width, s.stride_width, effective_w, s.in_width, s.pad_left);
  if (pad_bottom < 0 || pad_right < 0 || s.pad_top < 0 || s.pad_left < 0) return false;
  g->src = {s.batch, s.in_channels, s.in_height, s.in_width};
  g->weights = {s.out_channels, s.in_channels, s.filter_height, s.filter_width};
  g->bias = {s.out_channels};
  g->dst = {s.batch, s.out_channels, s.out_height, s.out_width};
  g->strides = {s.stride_height, s.stride_width};
  g->dilates = {s.dilation_height - 1, s.dilation_width - 1};
  g->padding_l = {s.pad_top, s.pad_left};
  g->padding_r = {pad_bottom, pad_right};
  return true;
}

struct Plan {
  dnnl::primitive primitive;
  memory::desc src, dst, weights_plain, weights_internal, bias;
  bool reorder_weights = false;
  dnnl::reorder weights_reorder;
  memory weights_buffer;  // the filter in oneDNN's layout, reused call to call
  // The plain filter weights_buffer was last reordered from: at inference the filter does not
  // change between calls, and comparing it costs far less than an OpenMP-parallel reorder.
  std::vector<float> reordered_from;
};

std::string plan_key(Direction direction, const Conv2DShape& s, int activation, bool has_bias) {
  const int values[] = {static_cast<int>(direction), s.batch, s.in_height, s.in_width, s.in_channels,
                        s.filter_height, s.filter_width, s.out_channels, s.out_height, s.out_width,
                        s.stride_height, s.stride_width, s.dilation_height, s.dilation_width, s.pad_top,
                        s.pad_left, activation, has_bias ? 1 : 0};
  return std::string(reinterpret_cast<const char*>(values), sizeof(values));
}

std::map<std::string, std::unique_ptr<Plan>>& plans() {
  thread_local std::map<std::string, std::unique_ptr<Plan>> cache;  // plans hold reused buffers: one cache per JS thread
  return cache;
}

dnnl::convolution_forward::primitive_desc forward_desc(const Geometry& g, bool has_bias, int activation,
                                                        dnnl::prop_kind kind) {
  auto& ctx = context();
  const memory::desc src(g.src, dt::f32, tag::nhwc), dst(g.dst, dt::f32, tag::nhwc);
  const memory::desc weights(g.weights, dt::f32, tag::any), bias(g.bias, dt::f32, tag::x);
  auto desc = has_bias ? dnnl::convolution_forward::desc(kind, dnnl::algorithm::convolution_direct, src, weights,
                                                         bias, dst, g.strides, g.dilates, g.padding_l, g.padding_r)
                       : dnnl::convolution_forward::desc(kind, dnnl::algorithm::convolution_direct, src, weights,
                                                         dst, g.strides, g.dilates, g.padding_l, g.padding_r);
  dnnl::primitive_attr attr;
  if (activation == static_cast<int>(Activation::kRelu)) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  return dnnl::convolution_forward::primitive_desc(desc, attr, ctx.engine);
}

Plan* plan_for(Direction direction, const Conv2DShape& s, int activation, bool has_bias) {
  const std::string key = plan_key(direction, s, activation, has_bias);
  auto found = plans().find(key);
  if (found != plans().end()) return found->second.get();
  Geometry g;
  if (!geometry(direction, s, &g)) return nullptr;
  auto& ctx = context();
  auto plan = std::make_unique<Plan>();
  plan->src = memory::desc(g.src, dt::f32, tag::nhwc);
  plan->dst = memory::desc(g.dst, dt::f32, tag::nhwc);
  plan->weights_plain = memory::desc(g.weights, dt::f32, tag::hwio);
  plan->bias = memory::desc(g.bias, dt::f32, tag::x);
  if (direction == Direction::kForward) {
    auto pd = forward_desc(g, has_bias, activation, dnnl::prop_kind::forward_inference);
    plan->weights_internal = pd.weights_desc();
    plan->primitive = dnnl::convolution_forward(pd);
  } else {
    auto hint = forward_desc(g, false, 0, dnnl::prop_kind::forward_training);
    const memory::desc weights_any(g.weights, dt::f32, tag::any);
    if (direction == Direction::kBackwardData) {
      dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, plan->src, weights_any,
                                                 plan->dst, g.strides, g.dilates, g.padding_l, g.padding_r);
      dnnl::convolution_backward_data::primitive_desc pd(desc, ctx.engine, hint);
      plan->weights_internal = pd.weights_desc();
      plan->primitive = dnnl::convolution_backward_data(pd);
    } else {
      dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, plan->src, weights_any,
                                                    plan->dst, g.strides, g.dilates, g.padding_l, g.padding_r);
      dnnl::convolution_backward_weights::primitive_desc pd(desc, ctx.engine, hint);
      plan->weights_internal = pd.diff_weights_desc();
      plan->primitive = dnnl::convolution_backward_weights(pd);
    }
  }
  plan->reorder_weights = plan->weights_internal != plan->weights_plain;
  if (plan->reorder_weights) {
    plan->weights_buffer = memory(plan->weights_internal, ctx.engine);
    // Filters go plain → internal before the forward and input-gradient passes; the filter
    // gradient comes out internal → plain.
    plan->weights_reorder = direction == Direction::kBackwardWeights
                                ? dnnl::reorder(plan->weights_buffer, memory(plan->weights_plain, ctx.engine, nullptr))
                                : dnnl::reorder(memory(plan->weights_plain, ctx.engine, nullptr), plan->weights_buffer);
  }
  Plan* result = plan.get();
  plans().emplace(key, std::move(plan));
  return result;
}

memory wrap(const memory::desc& desc, const float* data) {
  return memory(desc, context().engine, const_cast<float*>(data));
}

// The filter as the primitive wants it: reordered into the plan's buffer (unless it holds this
// very filter already), or as it is.
memory filter_for(Plan* plan, const float* filter) {
  memory plain = wrap(plan->weights_plain, filter);
  if (!plan->reorder_weights) return plain;
  const size_t count = plan->weights_plain.get_size() / sizeof(float);
  std::vector<float>& seen = plan->reordered_from;
  if (seen.size() == count && std::memcmp(seen.data(), filter, count * sizeof(float)) == 0) {
    return plan->weights_buffer;
  }
  plan->weights_reorder.execute(context().stream, plain, plan->weights_buffer);
  seen.assign(filter, filter + count);
  return plan->weights_buffer;
}

}  // namespace

bool dnnl_available() {
  try {
    context();
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

bool dnnl_conv2d_forward(const Conv2DShape& s, const float* x, const float* filter, const float* bias,
                         Activation activation, float* out) {
  try {
    Plan* plan = plan_for(Direction::kForward, s, static_cast<int>(activation), bias != nullptr);
    if (plan == nullptr) return false;
    auto& ctx = context();
    memory weights = filter_for(plan, filter);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, wrap(plan->src, x)}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, wrap(plan->dst, out)}};
    if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, wrap(plan->bias, bias));
    plan->primitive.execute(ctx.stream, args);
    ctx.stream.wait();
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

bool dnnl_conv2d_backprop_input(const Conv2DShape& s, const float* dy, const float* filter, float* dx) {
  try {
    Plan* plan = plan_for(Direction::kBackwardData, s, 0, false);
    if (plan == nullptr) return false;
    auto& ctx = context();
    memory weights = filter_for(plan, filter);
    plan->primitive.execute(ctx.stream, {{DNNL_ARG_DIFF_DST, wrap(plan->dst, dy)},
                                         {DNNL_ARG_WEIGHTS, weights},
                                         {DNNL_ARG_DIFF_SRC, wrap(plan->src, dx)}});
    ctx.stream.wait();
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

bool dnnl_conv2d_backprop_filter(const Conv2DShape& s, const float* x, const float* dy, float* dw) {
  try {
    Plan* plan = plan_for(Direction::kBackwardWeights, s, 0, false);
    if (plan == nullptr) return false;
    auto& ctx = context();
    memory plain = wrap(plan->weights_plain, dw);
    plan->primitive.execute(ctx.stream, {{DNNL_ARG_SRC, wrap(plan->src, x)},
                                         {DNNL_ARG_DIFF_DST, wrap(plan->dst, dy)},
                                         {DNNL_ARG_DIFF_WEIGHTS, plan->reorder_weights ? plan->weights_buffer : plain}});
    if (plan->reorder_weights) plan->weights_reorder.execute(ctx.stream, plan->weights_buffer, plain);
    ctx.stream.wait();
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

}  // namespace ns
