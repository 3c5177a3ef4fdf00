#!/usr/bin/env bash
# Runs every test: GoogleTest unit tests, lit tests, and each libFuzzer
# target for 15 seconds (scripts/run-fuzzers.sh). Builds first (incrementally; from scratch on a clean clone,
# installing missing Debian packages) so it works on a fresh machine.
# Usage: ./scripts/test.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
./scripts/setup.sh "$BUILD_DIR"
cd "$BUILD_DIR"
ctest --output-on-failure -j"${LOWBIT_JOBS:-2}"
