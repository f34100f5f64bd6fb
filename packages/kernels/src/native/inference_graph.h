// A folded network's inference as one call (inference_graph.cc); oneDNN builds only.
#pragma once

#include <dnnl.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

namespace ns {

enum class GraphOp : int { kConv = 0, kGlobalAveragePool = 1, kDense = 2 };
enum class DenseActivation : int { kLinear = 0, kRelu = 1, kSoftmax = 2 };

// One layer. Tensor 0 is the graph's input (NHWC); node i writes tensor i + 1.
struct GraphNode {
  GraphOp op = GraphOp::kConv;
  int input = 0;
  // kConv: y = relu?(conv(x, weights) + bias + tensor[skip]); weights HWIO.
  int skip = -1;
  bool relu = false;
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  // kConv: channels; kDense: features.
  int in_channels = 0, out_channels = 0;
  // kDense: y = act(x · weights + bias); weights [in, out].
  DenseActivation activation = DenseActivation::kLinear;
  std::vector<float> weights, bias;
};

struct TensorShape {
  int height, width, channels;
  int features;  // > 0 for a plain [n, features] tensor (after pooling)
};

class InferenceGraph {
 public:
  // Checks every shape; throws std::invalid_argument naming the node at fault.
  InferenceGraph(int height, int width, int channels, std::vector<GraphNode> nodes);
  ~InferenceGraph();
  InferenceGraph(const InferenceGraph&) = delete;
  InferenceGraph& operator=(const InferenceGraph&) = delete;

  // input: batch × height × width × channels (NHWC); output: batch × output_width().
  void run(const float* input, int batch, float* output);
  int output_width() const;

 private:
  struct Plan;
  Plan& plan_for(int batch);
  std::pair<dnnl::memory, dnnl::memory> conv_weights(size_t index, const dnnl::memory::desc& desc);
  const float* winograd_filter_of(size_t index);

  int height_, width_, channels_;
  std::vector<GraphNode> nodes_;
  std::vector<TensorShape> shapes_;
  std::vector<int> last_use_;
  std::map<int, std::unique_ptr<Plan>> plans_;
  // Reordered convolution weights and biases by node, shared by every plan.
  struct Weights {
    size_t index;
    dnnl::memory weights, bias;
  };
  std::vector<Weights> weights_;
  // Filters transformed for Winograd, by node (winograd.h).
  std::map<size_t, std::vector<float>> winograd_filters_;
  // Activations of whichever plan runs (sized for the largest built so far).
  std::vector<uint8_t> arena_;
};

}  // namespace ns
