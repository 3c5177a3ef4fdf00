#!/usr/bin/env bash
# Runs lowbit's libFuzzer targets on seed corpora this script makes with the
# project's own tools. Builds nothing: configure a clang build with
# -DLOWBIT_ENABLE_FUZZERS=ON and build it first (scripts/setup.sh does).
#
#   scripts/run-fuzzers.sh [BUILD_DIR [SECONDS [TARGET...]]]
#   scripts/run-fuzzers.sh --long [BUILD_DIR [TARGET...]]
#
# Targets: gguf imatrix manifest state tokenizer_text tokenizer_vocab mlir onnx
# (default: all). The first form runs each for SECONDS (default 60); --long
# runs each to 1,000,000 executions and prints a table of the figures (execs,
# coverage, crashes) for bench/results/fuzzing.md.
#
# Exits non-zero when a fuzzer finds a crash, leak, timeout or OOM; the input
# is kept in BUILD_DIR/fuzz-artifacts/TARGET/. Inputs that once crashed are
# kept in test/fuzz/regressions/TARGET/ and replayed first, every run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
long=0
if [[ ${1:-} == --long ]]; then
  long=1
  shift
fi
build=${1:-build}
[[ $build = /* ]] || build=$root/$build
shift || true
seconds=60
if [[ $long == 0 && $# -gt 0 ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] ||
  targets=(gguf imatrix manifest state tokenizer_text tokenizer_vocab mlir onnx)

bin=$build/bin
for t in "${targets[@]}"; do
  if [[ ! -x $bin/fuzz_$t ]]; then
    echo "run-fuzzers: $bin/fuzz_$t not found; configure $build with" \
         "-DLOWBIT_ENABLE_FUZZERS=ON (clang) and build it" >&2
    exit 2
  fi
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/lowbit-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
work=$scratch/work
mkdir -p "$work"
shared=$root/../shared/models

# A tiny llama model and a text in its vocabulary: the source of most seeds.
"$bin/lowbit-gguf" make-fixture tiny-llama -o "$work/tiny.gguf"
for i in $(seq 1 64); do
  echo "the and of to in is it was the of and to"
done > "$work/calib.txt"
lowbit=$bin/lowbit

seeds() { # seeds TARGET DIR
  local t=$1 dir=$2
  mkdir -p "$dir"
  case $t in
  gguf)
    LOWBIT_GGUF_SEED_DIR=$dir "$bin/GGUFTests" \
      --gtest_filter='GGUFSeeds.*' >/dev/null
    "$bin/lowbit-gguf" make-fixture all-types -o "$dir/all-types.gguf"
    cp "$work/tiny.gguf" "$dir/"
    ;;
  imatrix)
    "$lowbit" calibrate "$work/tiny.gguf" --calib "$work/calib.txt" -c 16 \
      -o "$dir/tiny.imatrix.gguf" 2>/dev/null
    "$lowbit" imatrix convert "$dir/tiny.imatrix.gguf" --format dat \
      -o "$dir/tiny.imatrix.dat" 2>/dev/null
    [[ -f $shared/zoo/llama-moe.imatrix-llamacpp.dat ]] &&
      cp "$shared/zoo/llama-moe.imatrix-llamacpp.dat" "$dir/"
    ;;
  state)
    "$lowbit" calibrate "$work/tiny.gguf" --calib "$work/calib.txt" -c 16 \
      --hessians --state "$dir/tiny.state.gguf" 2>/dev/null
    "$lowbit" compile "$work/tiny.gguf" --target-bpw 6 \
      --state "$work/s.gguf" --calib "$work/calib.txt" -c 16 \
      -o "$work/budget.gguf" -q 2>/dev/null
    cp "$work/s.gguf.sensitivity.json" "$dir/tiny.sensitivity.json"
    ;;
  manifest)
    for p in q8_0 q4_k_m; do
      "$lowbit" compile "$work/tiny.gguf" --preset $p --emit native \
        --target host -o "$work/native-$p" -q 2>/dev/null
      cp "$work/native-$p/manifest.json" "$dir/$p.json"
    done
    ;;
  tokenizer_vocab | tokenizer_text)
    if [[ ! -d $work/vocabs ]]; then
      mkdir -p "$work/vocabs"
      LOWBIT_TOKENIZER_SEED_DIR=$work/vocabs "$bin/TokenizerTests" \
        --gtest_filter='TokenizerSeeds.*' >/dev/null
      "$lowbit" compile "$work/tiny.gguf" --preset q8_0 --emit native \
        --target host -o "$work/native-vocab" -q 2>/dev/null
      cp "$work/native-vocab/metadata.gguf" "$work/vocabs/spm-tiny.gguf"
    fi
    if [[ $t == tokenizer_vocab ]]; then
      cp "$work"/vocabs/*.gguf "$dir/"
    else
      cp "$work/calib.txt" "$dir/"
      printf 'Hello world! It'"'"'s 12345 caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87\n' \
        > "$dir/unicode.txt"
      printf '\xff\xfe\xc0\x80 \xed\xa0\x80 <s></s><|endoftext|>' > "$dir/bad.txt"
    fi
    ;;
  onnx)
    # lowbit's own fixtures (protobuf text) and a few of ONNX's node tests.
    for txt in "$root"/test/ONNX/Inputs/*.txtpb; do
      protoc -I/usr/include onnx/onnx.proto --encode=onnx.ModelProto \
        < "$txt" > "$dir/$(basename "$txt" .txtpb).onnx"
    done
    for t in test_add test_gemm_default_matrix_bias test_if test_loop11 \
             test_scan9_sum test_clip_default_inbounds test_constant; do
      node=/usr/share/libonnx-testdata/data/node/$t/model.onnx
      [[ -f $node ]] && cp "$node" "$dir/$t.onnx"
    done
    ;;
  mlir)
    "$lowbit" import "$work/tiny.gguf" -o "$dir/tiny.mlir"
    cp "$root"/test/Exec/Inputs/*.mlir "$dir/"
    cp "$root"/test/Dialect/LowBit/ops.mlir "$root"/test/Dialect/LowBit/invalid.mlir "$dir/"
    ;;
  esac
}

vocabs() {
  local list=""
  for f in "$work"/vocabs/*.gguf; do list+="$f:"; done
  [[ -f $shared/stories260K/stories260K-f32.gguf ]] &&
    list+="$shared/stories260K/stories260K-f32.gguf:"
  echo "${list%:}"
}

status=0
summary=()
for t in "${targets[@]}"; do
  corpus=$scratch/corpus-$t
  seeds "$t" "$corpus"
  regressions=$root/test/fuzz/regressions/$t
  artifacts=$build/fuzz-artifacts/$t
  mkdir -p "$artifacts"
  dict=()
  [[ -f $root/test/fuzz/$t.dict ]] && dict=(-dict="$root/test/fuzz/$t.dict")
  env=()
  maxlen=65536
  if [[ $t == tokenizer_text ]]; then
    env=(LOWBIT_FUZZ_VOCABS="$(vocabs)")
    maxlen=512 # long inputs: test/Exec/resource-limits.test
  fi
  # Crashes found before: replayed as plain runs (no fuzzing).
  if [[ -d $regressions ]] && ls "$regressions"/* >/dev/null 2>&1; then
    echo "run-fuzzers: fuzz_$t: replaying $(ls "$regressions" | wc -l) regression inputs"
    if ! env "${env[@]}" "$bin/fuzz_$t" -runs=1 "$regressions"/* > "$scratch/replay.log" 2>&1; then
      tail -30 "$scratch/replay.log"
      echo "run-fuzzers: fuzz_$t: a regression input fails again" >&2
      status=1
      continue
    fi
  fi
  if [[ $long == 1 ]]; then
    limit=(-runs=1000000)
    what="1000000 executions"
  else
    limit=(-max_total_time="$seconds")
    what="${seconds}s"
  fi
  echo "run-fuzzers: fuzz_$t for $what on $(ls "$corpus" | wc -l) seeds"
  log=$scratch/fuzz-$t.log
  rc=0
  env "${env[@]}" "$bin/fuzz_$t" "${limit[@]}" -timeout=10 -rss_limit_mb=4096 \
    -max_len=$maxlen "${dict[@]}" -artifact_prefix="$artifacts/" "$corpus" \
    > "$log" 2>&1 || rc=$?
  final=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$final")
  cov=$(grep -oE 'cov: [0-9]+' <<<"$final" | awk '{print $2}' || true)
  ft=$(grep -oE 'ft: [0-9]+' <<<"$final" | awk '{print $2}' || true)
  secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | awk '{print $5}' || true)
  crashes=0
  if [[ $rc != 0 ]]; then
    crashes=1
    status=1
    tail -40 "$log"
    echo "run-fuzzers: fuzz_$t failed (exit $rc); input in $artifacts/" >&2
  fi
  echo "run-fuzzers: fuzz_$t: ${execs:-0} executions, coverage ${cov:-?} edges, ${ft:-?} features, crashes $crashes"
  summary+=("| fuzz_$t | ${execs:-0} | ${secs:-$seconds} | ${cov:-?} | ${ft:-?} | $crashes |")
done
if [[ $long == 1 ]]; then
  echo
  echo "| target | executions | seconds | coverage (edges) | features | crashes |"
  echo "|---|---:|---:|---:|---:|---:|"
  printf '%s\n' "${summary[@]}"
fi
exit $status
