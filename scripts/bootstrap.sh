#!/usr/bin/env bash
# Installs what `npm test` and `npm run demo` need and a fresh machine lacks:
#   Debian packages: nats-server (JetStream), dataset-fashion-mnist (the embedded default data set),
#   chromium (the report's browser test),
#   build-essential + pkg-config + libopenblas-dev + libdnnl-dev (oneDNN) to build the native kernels;
#   npm dependencies (npm ci) when node_modules is missing, and the native kernels when unbuilt.
# Root installs with apt-get; anyone else gets the exact command to run. Nothing is downloaded
# from outside Debian's archive and the npm registry.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
quiet=${NS_BOOTSTRAP_QUIET:-0}
say() { [ "$quiet" = 1 ] || printf 'bootstrap: %s\n' "$*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "bootstrap: Node.js 20 or newer is required, found $(node --version)" >&2
  exit 1
fi

fashion_mnist_dir=${NS_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
# Headless Chromium opens the demo's HTML report in the tests (NS_CHROMIUM names another browser).
command -v "${NS_CHROMIUM:-chromium}" >/dev/null 2>&1 || missing+=(chromium)
[ -f "$fashion_mnist_dir/train-images-idx3-ubyte.gz" ] || missing+=(dataset-fashion-mnist)
if [ "${NS_NATIVE_KERNELS:-1}" != 0 ]; then
  command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || missing+=(build-essential)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  pkg-config --exists openblas 2>/dev/null || missing+=(libopenblas-dev)
  [ -f /usr/include/oneapi/dnnl/dnnl.hpp ] || missing+=(libdnnl-dev)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine has no package lists; refresh them before the first install.
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    {
      echo "bootstrap: missing Debian packages: ${missing[*]}"
      echo "  install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
      echo "  (or set NS_FASHION_MNIST_DIR to a folder holding the Fashion-MNIST idx files,"
      echo "   and NS_NATIVE_KERNELS=0 to run on plain wasm without the native kernels)"
    } >&2
    exit 1
  fi
fi
say "nats-server $(nats-server --version 2>/dev/null | awk '{print $NF}'), Fashion-MNIST in $fashion_mnist_dir"

if [ ! -d node_modules/@tensorflow/tfjs-core ] || [ ! -d node_modules/vitest ]; then
  say "installing npm dependencies (npm ci)"
  # onnxruntime-node (bench:train --vs-ort only) ships its CPU binaries; its install script would
  # fetch CUDA ones from outside the npm registry (npm 10 runs it; npm 11 asks first).
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund >&2
fi

# npm ci builds the native kernels (their install script); a checkout whose build is missing or
# older than its sources is built here. A failed build is reported and everything runs on plain wasm.
addon=packages/kernels/build/Release/ns_kernels.node
if [ "${NS_NATIVE_KERNELS:-1}" != 0 ]; then
  if [ ! -f "$addon" ] || [ -n "$(find packages/kernels/src/native packages/kernels/binding.gyp -newer "$addon" 2>/dev/null | head -1)" ]; then
    say "building the native kernels (packages/kernels)"
    node packages/kernels/scripts/build.mjs
  fi
fi
