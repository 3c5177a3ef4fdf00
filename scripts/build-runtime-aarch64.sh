#!/usr/bin/env bash
# Builds the lowbit runtime's libraries for AArch64 (static) and, given an
# AArch64 artifact (lowbit compile --emit native --target aarch64), links
# the static runner lowbit-rt with the artifact's kernel object:
#   scripts/build-runtime-aarch64.sh [BUILD_DIR] [ARTIFACT_DIR OUT_BINARY]
# Needs g++-aarch64-linux-gnu (scripts/setup.sh installs it); run the result
# with qemu-aarch64 (qemu-user).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-aarch64}
ARTIFACT=${2:-}
OUT=${3:-}
command -v aarch64-linux-gnu-g++ >/dev/null || {
  echo "build-runtime-aarch64: aarch64-linux-gnu-g++ not found (apt-get install g++-aarch64-linux-gnu)" >&2
  exit 2
}
# nlohmann/json is header-only; the cross compiler gets a folder holding
# only it, not the build machine's whole /usr/include.
mkdir -p "$BUILD/json-include"
ln -sfn /usr/include/nlohmann "$BUILD/json-include/nlohmann"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -G Ninja -S "$ROOT/runtime" -B "$BUILD" \
    -DCMAKE_TOOLCHAIN_FILE="$ROOT/runtime/cmake/aarch64-linux-gnu.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DLOWBIT_RUNTIME_NO_DLOPEN=ON \
    -DLOWBIT_JSON_INCLUDE_DIR="$BUILD/json-include" >/dev/null
fi
ninja -C "$BUILD" -j"${LOWBIT_JOBS:-2}" LowBitRuntimeRunner >/dev/null
[ -z "$ARTIFACT" ] && exit 0

# The artifact's kernels (with their lb_kernel_table) go into the program.
objects=("$BUILD/lowbit-rt-static-main.o")
[ -f "$ARTIFACT/model.o" ] && objects+=("$ARTIFACT/model.o")
aarch64-linux-gnu-gcc -c -O2 -I"$ROOT/runtime/include" -I"$ROOT/include" \
  "$ROOT/runtime/tools/lowbit-rt-static-main.c" -o "$BUILD/lowbit-rt-static-main.o"
aarch64-linux-gnu-g++ -static -O2 "${objects[@]}" \
  "$BUILD/libLowBitRuntimeRunner.a" "$BUILD/libLowBitRuntime.a" \
  "$BUILD/libLowBitExec.a" "$BUILD/libLowBitTokenizer.a" "$BUILD/libLowBitGGUF.a" \
  "$BUILD/libLowBitExecOps.a" "$BUILD/libLowBitTarget.a" \
  "$BUILD/libLowBitSupport.a" "$BUILD/libLowBitFormats.a" \
  -lpthread -o "$OUT"
