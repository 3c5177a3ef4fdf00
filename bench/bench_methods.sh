#!/usr/bin/env bash
# Quantization methods on the trained docs256 model: rtn vs gptq vs awq (and
# awq followed by gptq, composed with lowbit-opt) at the q4_k_m, q3_k_m and
# q2_k presets. One calibration state (importance matrix + Hessians) from
# calib.txt (-c 256, 377 chunks) serves every method, so rtn gets the same
# importance matrix the others see. Quality: PPL, mean KLD and top-1
# agreement against the F32 model on dev-eval.txt (-c 256, llama-perplexity's
# protocol); every eval takes under a minute on 2 cores with all 581 chunks.
# Prints a markdown table.
# Usage: bench/bench_methods.sh [BUILD_DIR] [CHUNKS]   (CHUNKS: default all)
#        (about 15 minutes on 2 cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
chunks=${2:-}
M=$root/../shared/models/docs256
L=$build/bin/lowbit
O=$build/bin/lowbit-opt
work=$(mktemp -d "${TMPDIR:-/tmp}/lowbit-methods.XXXXXX")
trap 'rm -rf "$work"' EXIT
export LOWBIT_NO_PROGRESS=1
limit=()
[ -n "$chunks" ] && limit=(--chunks "$chunks")
state=$work/state.gguf

now() { date +%s.%N; }
t0=$(now)
$L calibrate "$M/model-f32.gguf" --calib "$M/calib.txt" -c 256 --hessians \
  --state "$state" >&2
echo "calibrate $(echo "$(now) - $t0" | bc)" > "$work/times"
$L eval "$M/model-f32.gguf" -f "$M/dev-eval.txt" -c 256 "${limit[@]}" \
  --save-logits "$work/f32.logits" --json > "$work/f32.json"
$L import "$M/model-f32.gguf" -o "$work/f32.mlir"

for p in q4_k_m q3_k_m q2_k; do
  t0=$(now)
  $L compile "$M/model-f32.gguf" --preset $p --imatrix "$state" -q -o "$work/rtn-$p.gguf"
  t1=$(now)
  $L compile "$M/model-f32.gguf" --preset $p --method gptq --state "$state" -q -o "$work/gptq-$p.gguf"
  t2=$(now)
  $L compile "$M/model-f32.gguf" --preset $p --method awq --state "$state" -q -o "$work/awq-$p.gguf"
  t3=$(now)
  $O "$work/f32.mlir" --lowbit-assign-formats="preset=$p has-importance=true" \
    --lowbit-awq-scale="state=$state" \
    --lowbit-quantize="method=gptq state=$state imatrix=$state" -o "$work/awq-gptq-$p.mlir"
  $L export "$work/awq-gptq-$p.mlir" -o "$work/awq-gptq-$p.gguf"
  t4=$(now)
  echo "rtn-$p $(echo "$t1 - $t0" | bc)" >> "$work/times"
  echo "gptq-$p $(echo "$t2 - $t1" | bc)" >> "$work/times"
  echo "awq-$p $(echo "$t3 - $t2" | bc)" >> "$work/times"
  echo "awq-gptq-$p $(echo "$t4 - $t3" | bc)" >> "$work/times"
  for m in rtn gptq awq awq-gptq; do
    $L eval "$work/$m-$p.gguf" --kl-base "$work/f32.logits" -c 256 --json > "$work/$m-$p.json"
  done
done

python3 - "$work" <<'PY'
import json, os, sys
w = sys.argv[1]
times = dict(l.split() for l in open(f"{w}/times"))
f32 = json.load(open(f"{w}/f32.json"))
print(f"F32: PPL {f32['ppl']:.4f} ± {f32['ppl_error']:.4f}; "
      f"calibration with Hessians {float(times['calibrate']):.0f} s\n")
print("| preset | method | bytes | compile s | PPL | mean KLD | KLD vs rtn | top-1 same % |")
print("|---|---|---|---|---|---|---|---|")
for p in ("q4_k_m", "q3_k_m", "q2_k"):
    base = json.load(open(f"{w}/rtn-{p}.json"))["kld"]["value"]
    for m in ("rtn", "gptq", "awq", "awq-gptq"):
        d = json.load(open(f"{w}/{m}-{p}.json"))
        k = d["kld"]
        print(f"| {p.upper()} | {m.replace('awq-gptq', 'awq + gptq')} | {os.path.getsize(f'{w}/{m}-{p}.gguf')} "
              f"| {float(times[f'{m}-{p}']):.1f} | {d['ppl']['value']:.4f} "
              f"| {k['value']:.6f} ± {k['error']:.6f} | {100 * (k['value'] / base - 1):+.1f}% "
              f"| {100 * d['same_top']['value']:.3f} |")
print(f"\nchunks scored: {f32.get('chunks', 'all')}")
PY
