#!/usr/bin/env bash
# Runs the libFuzzer targets for a fixed time on a scratch copy of the seed
# corpus. Builds nothing: configure a clang build with
# -DLOWBIT_ENABLE_FUZZERS=ON and build fuzz_gguf (and GGUFTests, which writes
# the seeds) first.
#
#   scripts/run-fuzzers.sh [BUILD_DIR [SECONDS]]     (default: build 60)
#
# Exits non-zero when a fuzzer finds a crash, leak, timeout or OOM; the input
# is kept in BUILD_DIR/fuzz-artifacts/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
seconds=${2:-60}
[[ $build = /* ]] || build=$root/$build

fuzzer=$build/bin/fuzz_gguf
if [[ ! -x $fuzzer ]]; then
  echo "run-fuzzers: $fuzzer not found; configure $build with" \
       "-DLOWBIT_ENABLE_FUZZERS=ON (clang) and build fuzz_gguf" >&2
  exit 2
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/lowbit-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
corpus=$scratch/gguf
mkdir -p "$corpus"

# Seeds: small valid GGUF files written by the unit tests and the tool, from
# this build or, failing that, the default one.
seeded=0
for dir in "$build" "$root/build"; do
  if [[ -x $dir/bin/GGUFTests ]]; then
    LOWBIT_GGUF_SEED_DIR=$corpus "$dir/bin/GGUFTests" \
      --gtest_filter='GGUFSeeds.*' >/dev/null
    seeded=1
    break
  fi
done
for dir in "$build" "$root/build"; do
  if [[ -x $dir/bin/lowbit-gguf ]]; then
    "$dir/bin/lowbit-gguf" make-fixture all-types -o "$corpus/all-types.gguf"
    seeded=1
    break
  fi
done
if [[ $seeded = 0 ]]; then
  echo "run-fuzzers: no GGUFTests or lowbit-gguf found; starting from an" \
       "empty corpus" >&2
fi

artifacts=$build/fuzz-artifacts/gguf
mkdir -p "$artifacts"
echo "run-fuzzers: fuzz_gguf for ${seconds}s on $(ls "$corpus" | wc -l) seeds"
"$fuzzer" -max_total_time="$seconds" -timeout=10 \
  -dict="$root/test/fuzz/gguf.dict" -artifact_prefix="$artifacts/" \
  "$corpus"
