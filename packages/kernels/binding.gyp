{
  "variables": {
    "have_dnnl%": "<!(node -p \"require('node:fs').existsSync('/usr/include/oneapi/dnnl/dnnl.hpp') ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "ns_kernels",
      "sources": [
        "src/native/addon.cc",
        "src/native/conv2d.cc",
        "src/native/elementwise.cc",
        "src/native/reduce.cc",
        "src/native/batch_norm.cc",
        "src/native/adam.cc",
        "src/native/matmul.cc",
        "src/native/winograd.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(pkg-config --cflags-only-I openblas | sed 's/-I//g')"
      ],
      "libraries": ["<!@(pkg-config --libs openblas)", "-fopenmp"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        [
          "have_dnnl==1",
          {
            "sources": ["src/native/dnnl_conv.cc", "src/native/inference_graph.cc", "src/native/graph_binding.cc"],
            "defines": ["NS_HAVE_DNNL"],
            "libraries": ["-ldnnl"]
          }
        ]
      ]
    }
  ]
}
