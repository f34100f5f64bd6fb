#!/usr/bin/env bash
# Installs what `npm test` and `npm run demo` need and a fresh machine lacks:
#   Debian packages: nats-server (JetStream), dataset-fashion-mnist (the embedded default data set);
#   npm dependencies (npm ci) when node_modules is missing.
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
[ -f "$fashion_mnist_dir/train-images-idx3-ubyte.gz" ] || missing+=(dataset-fashion-mnist)

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
      echo "  (or set NS_FASHION_MNIST_DIR to a folder holding the Fashion-MNIST idx files)"
    } >&2
    exit 1
  fi
fi
say "nats-server $(nats-server --version 2>/dev/null | awk '{print $NF}'), Fashion-MNIST in $fashion_mnist_dir"

if [ ! -d node_modules/@tensorflow/tfjs-core ] || [ ! -d node_modules/vitest ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2
fi
