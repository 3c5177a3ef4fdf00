#!/bin/sh
# Throughput of `lowbit eval` (batched prompt evaluation in the reference
# executor) on the docs256 model, at 1 and 2 threads, as a Markdown table
# with the 1-thread run as the baseline. Each configuration runs REPEAT times
# and the best run counts (the machine may be shared).
#
# Environment:
#   BUILD_DIR  build folder (default: build next to this script's parent)
#   LOWBIT     the lowbit binary (default: $BUILD_DIR/bin/lowbit, rebuilt)
#   MODEL      GGUF model (default: ../shared/models/docs256/model-f32.gguf)
#   TEXT       evaluation text (default: the model's dev-eval.txt)
#   CTX        chunk size (default 256)
#   CHUNKS     chunks per run (default 64; 0 = the whole text)
#   THREADS    thread counts to compare (default "1 2")
#   REPEAT     runs per thread count (default 3)
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
models=$here/../shared/models
model=${MODEL:-$models/docs256/model-f32.gguf}
text=${TEXT:-$models/docs256/dev-eval.txt}
ctx=${CTX:-256}
chunks=${CHUNKS:-64}
threads=${THREADS:-"1 2"}
repeat=${REPEAT:-3}

for f in "$model" "$text"; do
  if [ ! -f "$f" ]; then
    echo "bench_eval: $f not found" >&2
    exit 1
  fi
done
if [ -z "$LOWBIT" ]; then
  flock /tmp/lowbit-build.lock ninja -C "$build" -j2 lowbit >/dev/null
  LOWBIT=$build/bin/lowbit
fi

echo "# lowbit eval throughput"
echo
echo "model: $(basename "$model"), text: $(basename "$text"), -c $ctx," \
  "chunks: $chunks, best of $repeat, $(nproc) CPUs:" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "| threads | tokens/s | vs 1 thread | PPL |"
echo "|---:|---:|---:|---:|"
base=""
for t in $threads; do
  best=0
  ppl=""
  i=0
  while [ "$i" -lt "$repeat" ]; do
    out=$(LOWBIT_NO_PROGRESS=1 "$LOWBIT" eval "$model" -f "$text" \
      -c "$ctx" -t "$t" --chunks "$chunks" --json)
    tps=$(printf '%s' "$out" | jq -r '.tokens_per_second')
    ppl=$(printf '%s' "$out" | jq -r '.ppl')
    best=$(awk -v a="$best" -v b="$tps" 'BEGIN { print (b > a ? b : a) }')
    i=$((i + 1))
  done
  [ -z "$base" ] && base=$best
  awk -v t="$t" -v b="$best" -v base="$base" -v p="$ppl" \
    'BEGIN { printf "| %d | %.0f | %.2fx | %.4f |\n", t, b, b / base, p }'
done
