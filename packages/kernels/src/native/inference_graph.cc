// A whole model's inference as one native call, for the serving path: the layers of a folded
// convolutional network (convolutions with bias, ReLU and a residual sum fused in, global average
// pooling, dense layers, softmax) run back to back on oneDNN with activations in the blocked
// layouts its convolutions prefer, instead of one tfjs kernel (and one NHWC round trip) per layer.
// The plan of primitives and buffers is built once per batch size and kept.
#include "inference_graph.h"

#include <dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "winograd.h"

namespace ns {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

struct Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

Engine& engine() {
  thread_local Engine instance;
  return instance;
}

// A oneDNN primitive and its arguments, or a kernel of our own (`own`).
struct Step {
  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
  std::function<void()> own;
};

// Whether Winograd F(2×2, 3×3) computes this convolution (winograd.h's rule), where this CPU takes it.
bool winograd_node(const GraphNode& node, const TensorShape& in, const TensorShape& out) {
  const Conv2DShape shape{1, in.height, in.width, node.in_channels, node.kernel_h, node.kernel_w, node.out_channels,
                          out.height, out.width, node.stride_h, node.stride_w, 1, 1, node.pad_top, node.pad_left};
  return winograd_enabled() && winograd_fits(shape);
}

}  // namespace

struct InferenceGraph::Plan {
  memory input;  // wraps the caller's NHWC buffer; its handle is set on every run
  std::vector<Step> steps;
  // Dense layers and softmax run after the oneDNN steps, in plain C++ on [n, features] values.
  struct DenseStep {
    const GraphNode* node;
    memory in, out;
  };
  std::vector<DenseStep> dense;
  memory result;
  // Every activation lives in the graph's one scratch arena, shared by the plans of all batch
  // sizes (one runs at a time): at `offset` bytes, pointed at on each run.
  std::vector<std::pair<memory, size_t>> scratch;
  size_t scratch_bytes = 0;
};

namespace {
constexpr size_t kAlignment = 64;
size_t aligned(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }
}  // namespace

InferenceGraph::InferenceGraph(int height, int width, int channels, std::vector<GraphNode> nodes)
    : height_(height), width_(width), channels_(channels), nodes_(std::move(nodes)) {
  if (nodes_.empty()) throw std::invalid_argument("nodes: expected at least one layer");
  // Shapes of every tensor (0 = the input), checked now so a run can never fail on them.
  shapes_.push_back({height, width, channels, 0});
  for (size_t index = 0; index < nodes_.size(); ++index) {
    GraphNode& node = nodes_[index];
    const std::string where = "nodes[" + std::to_string(index) + "]";
    const auto input_of = [&](int id) -> const TensorShape& {
      if (id < 0 || static_cast<size_t>(id) > index) throw std::invalid_argument(where + ": input " + std::to_string(id) + " is not computed before it");
      return shapes_[id];
    };
    const TensorShape& in = input_of(node.input);
    switch (node.op) {
      case GraphOp::kConv: {
        if (in.features != 0) throw std::invalid_argument(where + ": a convolution needs a feature map");
        if (in.channels != node.in_channels) {
          throw std::invalid_argument(where + ": expected " + std::to_string(node.in_channels) + " input channels, got " + std::to_string(in.channels));
        }
        const int out_h = (in.height + node.pad_top + node.pad_bottom - node.kernel_h) / node.stride_h + 1;
        const int out_w = (in.width + node.pad_left + node.pad_right - node.kernel_w) / node.stride_w + 1;
        if (out_h <= 0 || out_w <= 0) throw std::invalid_argument(where + ": the output would be empty");
        if (node.weights.size() != static_cast<size_t>(node.kernel_h) * node.kernel_w * node.in_channels * node.out_channels) {
          throw std::invalid_argument(where + ": weights: expected kernel_h·kernel_w·in·out values");
        }
        if (!node.bias.empty() && node.bias.size() != static_cast<size_t>(node.out_channels)) {
          throw std::invalid_argument(where + ": bias: expected one value per output channel");
        }
        shapes_.push_back({out_h, out_w, node.out_channels, 0});
        if (node.skip >= 0) {
          const TensorShape& skip = input_of(node.skip);
          if (skip.height != out_h || skip.width != out_w || skip.channels != node.out_channels || skip.features != 0) {
            throw std::invalid_argument(where + ": the residual input's shape differs from the convolution's output");
          }
        }
        break;
      }
      case GraphOp::kGlobalAveragePool:
        if (in.features != 0) throw std::invalid_argument(where + ": pooling needs a feature map");
        shapes_.push_back({0, 0, 0, in.channels});
        break;
      case GraphOp::kDense:
        if (in.features == 0) throw std::invalid_argument(where + ": a dense layer needs features (after pooling)");
        if (in.features != node.in_channels) throw std::invalid_argument(where + ": expected " + std::to_string(node.in_channels) + " input features");
        if (node.weights.size() != static_cast<size_t>(node.in_channels) * node.out_channels) {
          throw std::invalid_argument(where + ": weights: expected in·out values");
        }
        if (!node.bias.empty() && node.bias.size() != static_cast<size_t>(node.out_channels)) {
          throw std::invalid_argument(where + ": bias: expected one value per output");
        }
        shapes_.push_back({0, 0, 0, node.out_channels});
        break;
    }
  }
  if (shapes_.back().features == 0) throw std::invalid_argument("nodes: the last layer must give features (dense)");
  // Each tensor's last reader: a residual input read last by its convolution can be summed into in place.
  last_use_.assign(shapes_.size(), -1);
  for (size_t index = 0; index < nodes_.size(); ++index) {
    last_use_[nodes_[index].input] = static_cast<int>(index);
    if (nodes_[index].op == GraphOp::kConv && nodes_[index].skip >= 0) last_use_[nodes_[index].skip] = static_cast<int>(index);
  }
}

InferenceGraph::~InferenceGraph() = default;

// Node `index`'s weights in the layout `desc` (reordered from HWIO once per layout, shared by the
// plans of every batch size) and its bias.
std::pair<memory, memory> InferenceGraph::conv_weights(size_t index, const memory::desc& desc) {
  auto& eng = engine();
  const GraphNode& node = nodes_[index];
  for (const auto& [node_index, weights, bias] : weights_) {
    if (node_index == index && weights.get_desc() == desc) return {weights, bias};
  }
  memory weights(desc, eng.engine);
  const memory::dims dims{node.out_channels, node.in_channels, node.kernel_h, node.kernel_w};
  memory plain({dims, dt::f32, tag::hwio}, eng.engine, const_cast<float*>(node.weights.data()));
  dnnl::reorder(plain, weights).execute(eng.stream, plain, weights);
  eng.stream.wait();
  memory bias({{node.out_channels}, dt::f32, tag::x}, eng.engine);
  float* bias_data = static_cast<float*>(bias.get_data_handle());
  for (int c = 0; c < node.out_channels; ++c) bias_data[c] = node.bias.empty() ? 0.0f : node.bias[c];
  weights_.push_back({index, weights, bias});
  return {weights, bias};
}

// Node `index`'s filter transformed for Winograd (made once, shared by every plan).
const float* InferenceGraph::winograd_filter_of(size_t index) {
  std::vector<float>& u = winograd_filters_[index];
  if (u.empty()) {
    const GraphNode& node = nodes_[index];
    u.resize(static_cast<size_t>(16) * node.in_channels * node.out_channels);
    winograd_filter(node.weights.data(), node.in_channels, node.out_channels, false, u.data());
  }
  return u.data();
}

int InferenceGraph::output_width() const { return shapes_.back().features; }

InferenceGraph::Plan& InferenceGraph::plan_for(int batch) {
  auto found = plans_.find(batch);
  if (found != plans_.end()) return *found->second;
  auto& eng = engine();
  auto plan = std::make_unique<Plan>();
  // A buffer of `desc` in the scratch arena.
  const auto scratch = [&](const memory::desc& desc) {
    memory buffer(desc, eng.engine, nullptr);
    plan->scratch.emplace_back(buffer, plan->scratch_bytes);
    plan->scratch_bytes += aligned(desc.get_size());
    return buffer;
  };
  plan->input = memory({{batch, channels_, height_, width_}, dt::f32, tag::nhwc}, eng.engine, nullptr);
  // Each tensor's memory: a blocked 4-D layout, or plain [n, features] after pooling.
  std::vector<memory> values(shapes_.size());
  values[0] = plan->input;

  // A value in the layout `desc`: itself, or a reorder of it into a new buffer.
  const auto as_layout = [&](int id, const memory::desc& desc) -> memory {
    if (values[id].get_desc() == desc) return values[id];
    memory converted = scratch(desc);
    plan->steps.push_back({dnnl::reorder(values[id], converted), {{DNNL_ARG_FROM, values[id]}, {DNNL_ARG_TO, converted}}, {}});
    return converted;
  };

  for (size_t index = 0; index < nodes_.size(); ++index) {
    const GraphNode& node = nodes_[index];
    const TensorShape& in = shapes_[node.input];
    const TensorShape& out = shapes_[index + 1];
    memory& result = values[index + 1];
    switch (node.op) {
      case GraphOp::kConv: {
        const memory::dims src_dims{batch, in.channels, in.height, in.width};
        const memory::dims weight_dims{node.out_channels, node.in_channels, node.kernel_h, node.kernel_w};
        const memory::dims dst_dims{batch, out.channels, out.height, out.width};
        const bool winograd = winograd_node(node, in, out);
        std::optional<dnnl::convolution_forward::primitive_desc> pd;
        memory src;
        memory::desc dst_desc;
        if (winograd) {
          src = as_layout(node.input, memory::desc(src_dims, dt::f32, tag::nChw8c));
          dst_desc = memory::desc(dst_dims, dt::f32, tag::nChw8c);
        } else {
          const memory::desc src_any(src_dims, dt::f32, tag::any), weights_any(weight_dims, dt::f32, tag::any);
          const memory::desc dst_any(dst_dims, dt::f32, tag::any);
          const memory::desc bias_desc({node.out_channels}, dt::f32, tag::x);
          dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                               src_any, weights_any, bias_desc, dst_any, {node.stride_h, node.stride_w},
                                               {0, 0}, {node.pad_top, node.pad_left}, {node.pad_bottom, node.pad_right});
          dnnl::post_ops ops;
          if (node.skip >= 0) ops.append_sum(1.0f);
          if (node.relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
          dnnl::primitive_attr attr;
          attr.set_post_ops(ops);
          pd.emplace(desc, attr, eng.engine);
          src = as_layout(node.input, pd->src_desc());
          dst_desc = pd->dst_desc();
        }

        if (node.skip >= 0) {
          // The sum adds what dst holds: the residual, in place when nothing reads it later and
          // its layout is the output's, else copied (reordered) into a new buffer first.
          // Never the graph's input: that buffer is the caller's.
          const bool in_place = node.skip != 0 && node.skip != node.input &&
                                last_use_[node.skip] == static_cast<int>(index) &&
                                values[node.skip].get_desc() == dst_desc;
          if (in_place) {
            result = values[node.skip];
          } else {
            result = scratch(dst_desc);
            plan->steps.push_back({dnnl::reorder(values[node.skip], result),
                                   {{DNNL_ARG_FROM, values[node.skip]}, {DNNL_ARG_TO, result}}, {}});
          }
        } else {
          result = scratch(dst_desc);
        }
        if (winograd) {
          const float* u = winograd_filter_of(index);
          const float* bias = node.bias.empty() ? nullptr : node.bias.data();
          const memory dst = result;
          const bool add = node.skip >= 0, relu = node.relu;
          const int channels = in.channels, height = out.height, width = out.width;
          plan->steps.push_back({{}, {}, [=, &node] {
            winograd_conv3x3(u, bias, channels, node.out_channels, static_cast<const float*>(src.get_data_handle()),
                             nchw8c_layout(height, width, channels), static_cast<float*>(dst.get_data_handle()),
                             nchw8c_layout(height, width, node.out_channels), batch, height, width, add, relu);
          }});
        } else {
          const auto [weights, bias] = conv_weights(index, pd->weights_desc());
          plan->steps.push_back({dnnl::convolution_forward(*pd),
                                 {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, result}},
                                 {}});
        }
        break;
      }
      case GraphOp::kGlobalAveragePool: {
        const memory::desc& src_desc = values[node.input].get_desc();
        const memory::desc dst_any({batch, in.channels, 1, 1}, dt::f32, tag::any);
        dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_avg_exclude_padding,
                                         src_desc, dst_any, {1, 1}, {in.height, in.width}, {0, 0}, {0, 0});
        dnnl::pooling_forward::primitive_desc pd(desc, eng.engine);
        memory pooled = scratch(pd.dst_desc());
        plan->steps.push_back({dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, values[node.input]}, {DNNL_ARG_DST, pooled}}, {}});
        // Plain [n, c] for the dense layers.
        const memory::desc plain_desc({batch, in.channels, 1, 1}, dt::f32, tag::nchw);
        if (pooled.get_desc() == plain_desc) {
          result = pooled;
        } else {
          result = scratch(plain_desc);
          plan->steps.push_back({dnnl::reorder(pooled, result), {{DNNL_ARG_FROM, pooled}, {DNNL_ARG_TO, result}}, {}});
        }
        break;
      }
      case GraphOp::kDense: {
        result = scratch({{batch, node.out_channels}, dt::f32, tag::nc});
        plan->dense.push_back({&node, values[node.input], result});
        break;
      }
    }
  }
  plan->result = values.back();
  auto& stored = *plan;
  plans_.emplace(batch, std::move(plan));
  return stored;
}

void InferenceGraph::run(const float* input, int batch, float* output) {
  if (batch <= 0) throw std::invalid_argument("batch: expected a positive count");
  Plan& plan = plan_for(batch);
  auto& eng = engine();
  plan.input.set_data_handle(const_cast<float*>(input));
  if (arena_.size() < plan.scratch_bytes + kAlignment) arena_.resize(plan.scratch_bytes + kAlignment);
  uint8_t* base = arena_.data() + (kAlignment - reinterpret_cast<uintptr_t>(arena_.data()) % kAlignment) % kAlignment;
  for (auto& [buffer, offset] : plan.scratch) buffer.set_data_handle(base + offset);
  for (Step& step : plan.steps) {
    if (step.own) {
      eng.stream.wait();
      step.own();
    } else {
      step.primitive.execute(eng.stream, step.args);
    }
  }
  eng.stream.wait();
  for (const Plan::DenseStep& step : plan.dense) {
    const GraphNode& node = *step.node;
    const int in = node.in_channels, out = node.out_channels;
    const float* input_values = static_cast<const float*>(step.in.get_data_handle());
    float* output_values = static_cast<float*>(step.out.get_data_handle());
    for (int n = 0; n < batch; ++n) {
      const float* x = input_values + static_cast<size_t>(n) * in;
      float* y = output_values + static_cast<size_t>(n) * out;
      for (int o = 0; o < out; ++o) y[o] = node.bias.empty() ? 0.0f : node.bias[o];
      for (int i = 0; i < in; ++i) {
        const float value = x[i];
        const float* row = node.weights.data() + static_cast<size_t>(i) * out;
        for (int o = 0; o < out; ++o) y[o] += value * row[o];
      }
      if (node.activation == DenseActivation::kRelu) {
        for (int o = 0; o < out; ++o) y[o] = std::max(y[o], 0.0f);
      } else if (node.activation == DenseActivation::kSoftmax) {
        float largest = y[0];
        for (int o = 1; o < out; ++o) largest = std::max(largest, y[o]);
        double total = 0;
        for (int o = 0; o < out; ++o) {
          y[o] = std::exp(y[o] - largest);
          total += y[o];
        }
        for (int o = 0; o < out; ++o) y[o] = static_cast<float>(y[o] / total);
      }
    }
  }
  std::memcpy(output, plan.result.get_data_handle(), static_cast<size_t>(batch) * output_width() * sizeof(float));
}

}  // namespace ns
