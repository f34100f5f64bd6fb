// N-API binding of InferenceGraph: `new InferenceGraph(spec)` copies the layers' weights into
// native memory; `run(input, batch, output)` reads and writes caller-owned Float32Arrays.
#include <napi.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "inference_graph.h"

namespace ns {
namespace {

int int_field(const Napi::Object& object, const char* name, const std::string& where, int fallback = -1, bool required = true) {
  const Napi::Value value = object.Get(name);
  if (value.IsUndefined() && !required) return fallback;
  if (!value.IsNumber()) throw std::invalid_argument(where + "." + name + ": expected a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (number != static_cast<int>(number)) throw std::invalid_argument(where + "." + name + ": expected an integer");
  return static_cast<int>(number);
}

std::vector<float> floats_field(const Napi::Object& object, const char* name, const std::string& where, bool required) {
  const Napi::Value value = object.Get(name);
  if (value.IsUndefined() && !required) return {};
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw std::invalid_argument(where + "." + name + ": expected a Float32Array");
  }
  auto array = value.As<Napi::Float32Array>();
  return std::vector<float>(array.Data(), array.Data() + array.ElementLength());
}

std::vector<int> ints_field(const Napi::Object& object, const char* name, const std::string& where, size_t count) {
  const Napi::Value value = object.Get(name);
  if (!value.IsArray() || value.As<Napi::Array>().Length() != count) {
    throw std::invalid_argument(where + "." + name + ": expected " + std::to_string(count) + " integers");
  }
  std::vector<int> result;
  auto array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < count; ++i) {
    const Napi::Value entry = array.Get(i);
    if (!entry.IsNumber()) throw std::invalid_argument(where + "." + name + ": expected integers");
    result.push_back(entry.As<Napi::Number>().Int32Value());
  }
  return result;
}

GraphNode parse_node(const Napi::Object& object, const std::string& where) {
  GraphNode node;
  const Napi::Value op = object.Get("op");
  const std::string kind = op.IsString() ? op.As<Napi::String>().Utf8Value() : "";
  node.input = int_field(object, "input", where);
  node.in_channels = int_field(object, "inChannels", where, 0, kind != "pool");
  node.out_channels = int_field(object, "outChannels", where, 0, kind != "pool");
  if (kind == "conv") {
    node.op = GraphOp::kConv;
    node.skip = int_field(object, "skip", where, -1, false);
    node.relu = object.Get("relu").ToBoolean().Value();
    const auto kernel = ints_field(object, "kernel", where, 2);
    const auto strides = ints_field(object, "strides", where, 2);
    const auto pads = ints_field(object, "pads", where, 4);
    node.kernel_h = kernel[0];
    node.kernel_w = kernel[1];
    node.stride_h = strides[0];
    node.stride_w = strides[1];
    node.pad_top = pads[0];
    node.pad_left = pads[1];
    node.pad_bottom = pads[2];
    node.pad_right = pads[3];
    if (node.kernel_h < 1 || node.kernel_w < 1 || node.stride_h < 1 || node.stride_w < 1 || node.pad_top < 0 ||
        node.pad_left < 0 || node.pad_bottom < 0 || node.pad_right < 0 || node.in_channels < 1 || node.out_channels < 1) {
      throw std::invalid_argument(where + ": kernel, strides and channels must be positive, pads not negative");
    }
  } else if (kind == "pool") {
    node.op = GraphOp::kGlobalAveragePool;
  } else if (kind == "dense") {
    node.op = GraphOp::kDense;
    const Napi::Value activation = object.Get("activation");
    const std::string name = activation.IsString() ? activation.As<Napi::String>().Utf8Value() : "linear";
    if (name == "linear") node.activation = DenseActivation::kLinear;
    else if (name == "relu") node.activation = DenseActivation::kRelu;
    else if (name == "softmax") node.activation = DenseActivation::kSoftmax;
    else throw std::invalid_argument(where + ".activation: expected linear, relu or softmax, got " + name);
    if (node.in_channels < 1 || node.out_channels < 1) throw std::invalid_argument(where + ": features must be positive");
  } else {
    throw std::invalid_argument(where + ".op: expected conv, pool or dense, got '" + kind + "'");
  }
  if (node.op != GraphOp::kGlobalAveragePool) {
    node.weights = floats_field(object, "weights", where, true);
    node.bias = floats_field(object, "bias", where, false);
  }
  return node;
}

class GraphWrap : public Napi::ObjectWrap<GraphWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "InferenceGraph",
                       {InstanceMethod("run", &GraphWrap::Run), InstanceAccessor("outputWidth", &GraphWrap::OutputWidth, nullptr)});
  }

  explicit GraphWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GraphWrap>(info) {
    if (info.Length() != 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "InferenceGraph: expected a spec object");
    const auto spec = info[0].As<Napi::Object>();
    try {
      const auto input = ints_field(spec, "input", "spec", 3);
      const Napi::Value nodes_value = spec.Get("nodes");
      if (!nodes_value.IsArray()) throw std::invalid_argument("spec.nodes: expected an array");
      auto nodes_array = nodes_value.As<Napi::Array>();
      std::vector<GraphNode> nodes;
      for (uint32_t i = 0; i < nodes_array.Length(); ++i) {
        const Napi::Value entry = nodes_array.Get(i);
        const std::string where = "spec.nodes[" + std::to_string(i) + "]";
        if (!entry.IsObject()) throw std::invalid_argument(where + ": expected an object");
        nodes.push_back(parse_node(entry.As<Napi::Object>(), where));
      }
      if (input[0] < 1 || input[1] < 1 || input[2] < 1) throw std::invalid_argument("spec.input: expected [height, width, channels], all positive");
      graph_ = std::make_unique<InferenceGraph>(input[0], input[1], input[2], std::move(nodes));
      input_size_ = static_cast<size_t>(input[0]) * input[1] * input[2];
    } catch (const std::invalid_argument& error) {
      throw Napi::TypeError::New(info.Env(), error.what());
    }
  }

 private:
  // run(input: Float32Array (batch·h·w·c), batch, output: Float32Array (batch·outputWidth))
  Napi::Value Run(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    if (info.Length() != 3 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsTypedArray()) {
      throw Napi::TypeError::New(env, "run: expected (input: Float32Array, batch: number, output: Float32Array)");
    }
    auto input = info[0].As<Napi::TypedArray>();
    auto output = info[2].As<Napi::TypedArray>();
    if (input.TypedArrayType() != napi_float32_array || output.TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(env, "run: input and output must be Float32Arrays");
    }
    const int batch = info[1].As<Napi::Number>().Int32Value();
    if (batch < 1) throw Napi::RangeError::New(env, "batch: expected at least 1");
    const size_t per_image = input_size_;
    if (input.ElementLength() != per_image * batch) {
      throw Napi::RangeError::New(env, "input: expected " + std::to_string(per_image * batch) + " values, got " + std::to_string(input.ElementLength()));
    }
    if (output.ElementLength() != static_cast<size_t>(graph_->output_width()) * batch) {
      throw Napi::RangeError::New(env, "output: expected " + std::to_string(graph_->output_width() * batch) + " values");
    }
    try {
      graph_->run(input.As<Napi::Float32Array>().Data(), batch, output.As<Napi::Float32Array>().Data());
    } catch (const std::exception& error) {
      throw Napi::Error::New(env, std::string("inference graph: ") + error.what());
    }
    return env.Undefined();
  }

  Napi::Value OutputWidth(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), graph_->output_width()); }

  std::unique_ptr<InferenceGraph> graph_;
  size_t input_size_ = 0;
};

}  // namespace

void register_inference_graph(Napi::Env env, Napi::Object exports) {
  exports.Set("InferenceGraph", GraphWrap::Define(env));
}

}  // namespace ns
