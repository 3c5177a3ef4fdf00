#!/usr/bin/env bash
# bench_moe_native.sh - native MoE expert kernels vs the decode-to-f32
# fall-back, same binary, same run. For each zoo MoE model at Q4_K_M: the
# host artifact as compiled (expert matmuls on generated kernels), and a copy
# whose manifest has the experts' kernel entries removed (the runtime then
# decodes them to f32, as before expert kernels existed). Alternating
# repetitions of `lowbit bench -p 128 -n 32`; the table (median t/s, ratio
# kernels / fall-back) goes to OUT.
#
# Environment: BUILD, ZOO, WORK, OUT, REPS (default 3), THREADS (default all).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LOWBIT=$BUILD/bin/lowbit
ZOO=${ZOO:-$ROOT/../shared/models/zoo}
WORK=${WORK:-$(mktemp -d /tmp/lowbit-bench-moe-native.XXXXXX)}
OUT=${OUT:-$ROOT/bench/results/moe_native.md}
REPS=${REPS:-3}
THREADS=${THREADS:-$(nproc)}
export LOWBIT_NO_PROGRESS=1
mkdir -p "$WORK" "$(dirname "$OUT")"
ROWS=$WORK/rows.tsv
: > "$ROWS"
for M in llama-moe qwen2moe qwen3moe; do
  rm -rf "$WORK/$M-kernels" "$WORK/$M-fallback"
  "$LOWBIT" compile "$ZOO/$M.gguf" --preset q4_k_m --emit native --target host \
    -o "$WORK/$M-kernels" -q 2>/dev/null
  cp -r "$WORK/$M-kernels" "$WORK/$M-fallback"
  python3 - "$WORK/$M-fallback/manifest.json" <<'PY'
import json, sys
path = sys.argv[1]
m = json.load(open(path))
for t in m["tensors"]:
    if "_exps." in t["name"]:
        for k in ("kernel", "quantizer", "activation_row_bytes"):
            t.pop(k, None)
json.dump(m, open(path, "w"), indent=2)
PY
  for ((r = 0; r < REPS; ++r)); do
    for which in fallback kernels; do
      out=$("$LOWBIT" bench "$WORK/$M-$which" -p 128 -n 32 -r 1 -t "$THREADS" --json 2>/dev/null)
      for test in pp128 tg32; do
        tps=$(grep "\"test\":\"$test\"" <<<"$out" | sed 's/.*"tokens_per_second":\([0-9.e+]*\).*/\1/')
        printf '%s\t%s\t%s\t%s\n' "$M" "$test" "$which" "$tps" >> "$ROWS"
      done
    done
  done
done
python3 - "$ROWS" "$OUT" "$REPS" "$THREADS" <<'PY'
import statistics, sys, datetime
rows, out, reps, threads = sys.argv[1:5]
data = {}
for line in open(rows):
    m, t, w, v = line.split("\t")
    data.setdefault((m, t), {}).setdefault(w, []).append(float(v))
lines = ["# MoE expert matmuls: generated kernels vs the decode-to-f32 fall-back", "",
         f"Produced by `bench/bench_moe_native.sh` on {datetime.date.today()} ({threads} threads, "
         f"{reps} alternating repetitions, median t/s). Zoo models at Q4_K_M, host artifacts; the "
         "baseline is the same artifact with the experts' kernel entries removed from its manifest "
         "(the runtime decodes those weights to f32, as before expert kernels). These models are "
         "tiny (width 256), so the figures say little about prompt speed on real MoE sizes.", "",
         "| model | test | fall-back t/s | kernels t/s | kernels / fall-back |", "|---|---|---:|---:|---:|"]
for (m, t), w in data.items():
    f, k = statistics.median(w["fallback"]), statistics.median(w["kernels"])
    lines.append(f"| {m} | {t} | {f:.1f} | {k:.1f} | {k / f:.2f} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
