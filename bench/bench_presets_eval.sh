#!/usr/bin/env bash
# Quality of lowbit's llama.cpp-style presets on the trained docs256 model:
# PPL and KL divergence against the F32 model on dev-eval.txt (-c 256, all
# 581 chunks, llama-perplexity's protocol), without and with llama.cpp's own
# importance matrix. Prints a markdown table next to llama.cpp's published
# figures for the same model (../shared/models/README.md, build 4748).
# Usage: bench/bench_presets_eval.sh [BUILD_DIR]   (about 3 minutes, 2 cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
M=$root/../shared/models/docs256
L=$build/bin/lowbit
work=$(mktemp -d "${TMPDIR:-/tmp}/lowbit-presets.XXXXXX")
trap 'rm -rf "$work"' EXIT
export LOWBIT_NO_PROGRESS=1
$L eval "$M/model-f32.gguf" -f "$M/dev-eval.txt" -c 256 --save-logits "$work/f32.logits" --json > "$work/f32.json"
for p in q4_k_m q3_k_m q2_k; do
  $L compile "$M/model-f32.gguf" --preset $p -q -o "$work/$p.gguf"
  $L compile "$M/model-f32.gguf" --preset $p --imatrix "$M/imatrix-llamacpp.dat" -q -o "$work/$p-imx.gguf"
  for v in $p $p-imx; do
    $L eval "$work/$v.gguf" --kl-base "$work/f32.logits" -c 256 --json > "$work/$v.json"
  done
done
python3 - "$work" <<'PY'
import json, os, sys
w = sys.argv[1]
f32 = json.load(open(f"{w}/f32.json"))
print(f"F32: PPL {f32['ppl']:.4f} ± {f32['ppl_error']:.4f} (llama.cpp: 43.1382 ± 0.420)\n")
ref = {"q4_k_m": (43.301320, 0.002470, 43.250090, 0.002312, 95.948),
       "q3_k_m": (43.514105, 0.007483, 43.591799, 0.007636, 92.791),
       "q2_k": (44.684977, 0.032028, 44.642997, 0.031567, 85.564)}
print("| preset | imatrix | bytes | PPL lowbit | PPL llama.cpp | KLD lowbit | KLD llama.cpp | top-1 same % lowbit | top-1 % llama.cpp |")
print("|---|---|---|---|---|---|---|---|---|")
for p in ref:
    for imx in (False, True):
        v = p + ("-imx" if imx else "")
        d = json.load(open(f"{w}/{v}.json"))
        r = ref[p]
        print(f"| {p.upper()} | {'llama.cpp .dat' if imx else 'none'} | {os.path.getsize(f'{w}/{v}.gguf')} "
              f"| {d['ppl']['value']:.4f} | {r[2] if imx else r[0]:.4f} "
              f"| {d['kld']['value']:.6f} ± {d['kld']['error']:.6f} | {r[3] if imx else r[1]:.6f} "
              f"| {100 * d['same_top']['value']:.3f} | {r[4] if imx else '-'} |")
PY
