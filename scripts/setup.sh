#!/usr/bin/env bash
# Installs every Debian package lowbit needs (when missing), configures the
# build with CMake + Ninja against Debian's LLVM/MLIR 22, and builds it.
# Usage: ./scripts/setup.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}

PACKAGES=(
  cmake ninja-build lld
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  clang-22 libclang-rt-22-dev
  liblld-22-dev
  libgtest-dev nlohmann-json3-dev
  libonnx-dev libprotobuf-dev protobuf-compiler libonnx-testdata time
  g++-aarch64-linux-gnu qemu-user
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the ONNX Runtime test client; a Node.js from
# elsewhere (NodeSource bundles npm, and conflicts with Debian's) will do.
command -v npm > /dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -G Ninja -S . -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
    -DLLVM_USE_LINKER=lld \
    -DLOWBIT_ENABLE_FUZZERS=ON
fi
ninja -C "$BUILD_DIR" -j"${LOWBIT_JOBS:-2}"

# ONNX Runtime, the test client of the ONNX output (npm, for tests only; its
# install script downloads GPU files, which --ignore-scripts skips: the CPU
# binaries are in the package).
CLIENT="$BUILD_DIR/ort-client"
if ! cmp -s test/clients/ort/package-lock.json "$CLIENT/package-lock.json" ||
   [ ! -d "$CLIENT/node_modules/onnxruntime-node" ]; then
  mkdir -p "$CLIENT"
  cp test/clients/ort/package.json test/clients/ort/package-lock.json "$CLIENT/"
  (cd "$CLIENT" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "setup: built into $BUILD_DIR (tools in $BUILD_DIR/bin)"
