#!/usr/bin/env bash
# bench_moe_allocation.sh - lowbit's bit allocation against llama.cpp's
# presets on the mixture-of-experts models of ../shared/models/zoo
# (llama-moe: Mixtral-style, 4 experts top-2; qwen2moe: 4 experts top-2 plus
# a shared expert).
#
# Calibration: `lowbit calibrate` on docs256/calib.txt, context 256 (per-expert
# statistics and token counts). Evaluation: `lowbit eval -c 256` on
# docs256/dev-eval.txt against the unquantized model's log-probabilities.
# For each preset (Q4_K_M, Q2_K): the preset quantized with lowbit's
# importance matrix (lowbit reproduces llama-quantize's preset sizes to the
# byte), and lowbit's allocation at the preset's file size with the default
# settings (`lowbit compile --target-size BYTES --state STATE`: measure gain,
# method rtn) on the same calibration. Goal of issue 12: lowbit's KLD <= 0.8x
# the preset's.
#
# Writes bench/results/moe_allocation.md. Environment: BUILD (build dir),
# ZOO, DOCS (model and text folders), WORK (scratch dir), MODELS (default
# "llama-moe qwen2moe"), PRESETS (default "q4_k_m q2_k").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LOWBIT=$BUILD/bin/lowbit
ZOO=${ZOO:-$ROOT/../shared/models/zoo}
DOCS=${DOCS:-$ROOT/../shared/models/docs256}
WORK=${WORK:-$(mktemp -d /tmp/lowbit-bench-moe.XXXXXX)}
MODELS=${MODELS:-"llama-moe qwen2moe"}
PRESETS=${PRESETS:-"q4_k_m q2_k"}
OUT=${OUT:-$ROOT/bench/results/moe_allocation.md}
export LOWBIT_NO_PROGRESS=1

for f in "$LOWBIT" "$DOCS/calib.txt" "$DOCS/dev-eval.txt"; do
  [ -e "$f" ] || { echo "bench_moe_allocation: missing $f" >&2; exit 1; }
done
mkdir -p "$WORK" "$(dirname "$OUT")"
ROWS=$WORK/rows.tsv
: > "$ROWS"
log() { echo "[bench_moe_allocation] $*" >&2; }

evaluate() { # model config file base -> a row of ROWS
  local json
  json=$("$LOWBIT" eval "$3" --kl-base "$4" --json)
  python3 - "$1" "$2" "$3" "$json" >> "$ROWS" <<'EOF'
import json, os, sys
model, config, path, text = sys.argv[1:5]
r = json.loads(text)
print("\t".join([model, config, str(os.path.getsize(path)),
                 f"{r['ppl']['value']:.4f}", f"{r['kld']['value']:.6f}",
                 f"{r['kld']['error']:.6f}", f"{100 * r['same_top']['value']:.3f}"]))
EOF
}

for M in $MODELS; do
  MODEL=$ZOO/$M.gguf
  [ -e "$MODEL" ] || { echo "bench_moe_allocation: missing $MODEL" >&2; exit 1; }
  log "$M: baseline and calibration"
  "$LOWBIT" eval "$MODEL" -f "$DOCS/dev-eval.txt" -c 256 \
    --save-logits "$WORK/$M.base.logits" --json > "$WORK/$M.base.json"
  "$LOWBIT" calibrate "$MODEL" --calib "$DOCS/calib.txt" -c 256 \
    -o "$WORK/$M.imatrix.gguf" --state "$WORK/$M.state.gguf" \
    > "$WORK/$M.calibrate.txt" 2>&1
  for P in $PRESETS; do
    log "$M: $P"
    "$LOWBIT" compile "$MODEL" --preset "$P" --imatrix "$WORK/$M.imatrix.gguf" \
      -q -o "$WORK/$M-$P.gguf"
    evaluate "$M" "preset $P" "$WORK/$M-$P.gguf" "$WORK/$M.base.logits"
    SIZE=$(stat -c %s "$WORK/$M-$P.gguf")
    "$LOWBIT" compile "$MODEL" --target-size "$SIZE" \
      --state "$WORK/$M.state.gguf" -o "$WORK/$M-alloc-$P.gguf" \
      > "$WORK/$M-alloc-$P.txt" 2>&1
    evaluate "$M" "lowbit at $P size" "$WORK/$M-alloc-$P.gguf" \
      "$WORK/$M.base.logits"
  done
done

python3 - "$ROWS" "$OUT" "$(nproc)" <<'EOF'
import sys, datetime
rows_path, out, cores = sys.argv[1:4]
rows = [l.rstrip("\n").split("\t") for l in open(rows_path) if l.strip()]
lines = [
    "# Bit allocation on mixture-of-experts models: lowbit vs llama.cpp's presets",
    "",
    f"Produced by `bench/bench_moe_allocation.sh` on {datetime.date.today()} ({cores} cores). "
    "Models: `../shared/models/zoo/llama-moe.gguf` (4 experts, top-2) and `qwen2moe.gguf` "
    "(4 experts, top-2, shared expert). Calibration: `lowbit calibrate` on docs256 `calib.txt`, "
    "context 256 (per-expert statistics). Evaluation: `lowbit eval -c 256` on docs256 "
    "`dev-eval.txt`, KL divergence against the unquantized model.",
    "",
    "Presets are quantized by lowbit with the same importance matrix (lowbit's file sizes are "
    "llama-quantize's to the byte); lowbit's allocation uses the default settings "
    "(`--target-size` = the preset's file size, `--state` from the same calibration: measure gain, "
    "method rtn). Ratio = lowbit's mean KLD / the preset's (goal <= 0.8).",
    "",
    "| model | configuration | file bytes | PPL | mean KLD | top-1 same % | KLD ratio |",
    "|---|---|---:|---:|---:|---:|---:|",
]
preset_kld = {}
for model, config, size, ppl, kld, err, top1 in rows:
    ratio = ""
    if config.startswith("preset "):
        preset_kld[(model, config[7:])] = float(kld)
    else:
        base = preset_kld.get((model, config.split()[2]))
        if base:
            ratio = f"{float(kld) / base:.3f}"
    lines.append(f"| {model} | {config} | {int(size):,} | {ppl} | {kld} ± {err} | {top1} | {ratio} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
