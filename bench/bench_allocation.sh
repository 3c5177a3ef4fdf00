#!/usr/bin/env bash
# bench_allocation.sh - lowbit's global bit allocation against llama.cpp-style
# presets on the trained docs256 model (../shared/models/docs256).
#
# Calibration on calib.txt (lowbit calibrate, context 256, BOS-first chunks
# like llama.cpp's imatrix tool); evaluation on dev-eval.txt with
# `lowbit eval -c 256` against the F32 model's saved log-probabilities.
# For each budget (bits per weight of the whole file):
#   - the nearest preset whose file is at least as large, quantized by lowbit
#     with the SAME importance matrix (lowbit's, from calib.txt), plus
#     llama.cpp's own published figures for it (its quantizer and its imatrix
#     from the same text, full dev-eval; ../shared/models/README.md);
#   - lowbit's allocation (lowbit compile --target-bpw) with method rtn under
#     the three sensitivity measures (wmse, gain, kld), and with methods gptq
#     and awq (kld and gain allocations) when `lowbit compile --method` has
#     them.
# Writes bench/results/allocation.md, allocation.csv and allocation.svg (KLD
# against bits per weight). Environment: BUILD (build dir), MODELS (docs256
# folder), WORK (scratch dir), EVAL_CHUNKS (chunks of dev-eval to score,
# default 200 of 581; 0 = all), BUDGETS (default "2.75 3.5 4.5 5.5"),
# REPORT_ONLY=1 (rewrite the report from an earlier run's WORK).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LOWBIT=$BUILD/bin/lowbit
MODELS=${MODELS:-$ROOT/../shared/models/docs256}
WORK=${WORK:-$(mktemp -d /tmp/lowbit-bench-allocation.XXXXXX)}
EVAL_CHUNKS=${EVAL_CHUNKS:-200}
BUDGETS=${BUDGETS:-"2.75 3.5 4.5 5.5"}
RESULTS=$ROOT/bench/results
export LOWBIT_NO_PROGRESS=1

for f in "$LOWBIT" "$MODELS/model-f32.gguf" "$MODELS/calib.txt" \
         "$MODELS/dev-eval.txt" "$MODELS/imatrix-llamacpp.dat"; do
  [ -e "$f" ] || { echo "bench_allocation: missing $f" >&2; exit 1; }
done
mkdir -p "$WORK" "$RESULTS"
MODEL=$MODELS/model-f32.gguf
CSV=$WORK/rows.csv
TIMINGS=$WORK/timings.env
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$(now) - $1:.1f}')"; }
log() { echo "[bench_allocation] $*" >&2; }

if [ "${REPORT_ONLY:-0}" != 1 ]; then
echo "budget,config,file,bytes,bpw,ppl,kld,kld_err,top1,seconds" > "$CSV"

# Does `lowbit compile` know --method gptq / awq yet (another work item)?
METHODS=""
COMPILE_HELP=$("$LOWBIT" compile --help 2>&1 || true)
if [[ $COMPILE_HELP == *"--method"* ]]; then
  METHODS="gptq awq"
fi

CHUNK_ARGS=()
[ "$EVAL_CHUNKS" != 0 ] && CHUNK_ARGS=(--chunks "$EVAL_CHUNKS")

# 1. The F32 model's log-probabilities on dev-eval.
T=$(now)
"$LOWBIT" eval "$MODEL" -f "$MODELS/dev-eval.txt" -c 256 "${CHUNK_ARGS[@]}" \
  --save-logits "$WORK/base.logits" --json > "$WORK/base.json"
log "F32 baseline: $(elapsed "$T") s"

# 2. Calibration (with Hessians when gptq/awq will need them).
HESSIANS=()
[ -n "$METHODS" ] && HESSIANS=(--hessians)
T=$(now)
"$LOWBIT" calibrate "$MODEL" --calib "$MODELS/calib.txt" -c 256 \
  -o "$WORK/imatrix.gguf" --state "$WORK/state.gguf" "${HESSIANS[@]}" \
  > "$WORK/calibrate.txt"
CALIBRATE_SECONDS=$(elapsed "$T")
log "calibration: $CALIBRATE_SECONDS s"

# 3. lowbit's imatrix against llama.cpp's for the same text and context.
"$LOWBIT" imatrix convert "$WORK/imatrix.gguf" -o "$WORK/imatrix.dat"
python3 - "$WORK/imatrix.dat" "$MODELS/imatrix-llamacpp.dat" \
  > "$WORK/imatrix-compare.md" <<'EOF'
import math, struct, sys
def load(path):
    data = open(path, 'rb').read(); at = 0
    def i32():
        nonlocal at
        v, = struct.unpack_from('<i', data, at); at += 4; return v
    entries = {}
    for _ in range(i32()):
        n = i32(); name = data[at:at + n].decode(); at += n
        calls = i32(); count = i32()
        values = struct.unpack_from('<%df' % count, data, at); at += 4 * count
        entries[name] = [v / max(calls, 1) for v in values]
    return entries
ours, theirs = load(sys.argv[1]), load(sys.argv[2])
def corr(x, y):
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return sxy / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))
common = sorted(set(ours) & set(theirs))
rows = [(corr(ours[k], theirs[k]),
         max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(ours[k], theirs[k])), k)
        for k in common]
print(f"- tensors: lowbit {len(ours)}, llama.cpp {len(theirs)}, common {len(common)}; "
      f"only in lowbit's: {', '.join(sorted(set(ours) - set(theirs))) or 'none'} "
      f"(llama.cpp's imatrix tool skips output.weight unless --process-output; "
      f"token_embd.weight is a lookup, not a matmul, in both); "
      f"only in llama.cpp's: {', '.join(sorted(set(theirs) - set(ours))) or 'none'}")
worst = min(rows)
print(f"- per-tensor Pearson correlation of the importance vectors (mean of x^2 per "
      f"input channel): min {worst[0]:.9f} ({worst[2]}), mean {sum(r[0] for r in rows) / len(rows):.9f}")
print(f"- largest relative difference of one channel's importance: "
      f"{max(r[1] for r in rows):.2e} (float rounding: llama.cpp keeps its KV cache in f16 "
      f"by default, lowbit's executor in f32)")
EOF

# 4. Presets: the smallest preset at least as large as each budget.
ELEMENTS=$("$LOWBIT" compile "$MODEL" --preset f32 --json -o "$WORK/f32-copy.gguf" \
  | python3 -c "import json,sys; print(json.load(sys.stdin)['elements'])")
rm -f "$WORK/f32-copy.gguf"
# llama.cpp's figures for docs256 (../shared/models/README.md; imatrix from
# calib.txt, full dev-eval): preset bytes ppl kld top1.
LLAMACPP="
q2_k_s 2859392 - - -
q2_k 3038880 44.642997 0.031567 85.564
q3_k_s 3444896 43.724667 0.010169 91.511
q3_k_m 3688096 43.591799 0.007636 92.791
q3_k_l 3901088 43.541912 0.007028 93.121
iq4_xs 4030624 43.274653 0.002747 95.480
q4_0 4210848 43.336627 0.003279 95.261
iq4_nl 4210848 43.251044 0.002639 95.520
q4_k_s 4227232 43.269257 0.002381 95.929
q4_k_m 4329120 43.250090 0.002312 95.948
q4_1 4571296 43.261563 0.002390 95.934
q5_k_s 4931744 43.173273 0.000893 97.475
q5_0 4931744 43.179935 0.000943 97.365
q5_k_m 4992672 43.166148 0.000869 97.535
q5_1 5292192 43.170160 0.000759 97.642
q6_k 5697696 43.179362 0.000485 98.071
"
echo "$LLAMACPP" > "$WORK/llamacpp.txt"

evaluate() { # budget config file seconds
  local json
  json=$("$LOWBIT" eval "$3" --kl-base "$WORK/base.logits" "${CHUNK_ARGS[@]}" --json)
  python3 - "$1" "$2" "$3" "$4" "$ELEMENTS" "$json" >> "$CSV" <<'EOF'
import json, os, sys
budget, config, path, seconds, elements, text = sys.argv[1:7]
r = json.loads(text); size = os.path.getsize(path)
print(f"{budget},{config},{os.path.basename(path)},{size},{size * 8 / int(elements):.4f},"
      f"{r['ppl']['value']:.6f},{r['kld']['value']:.6f},{r['kld']['error']:.6f},"
      f"{100 * r['same_top']['value']:.3f},{seconds}")
EOF
}

for B in $BUDGETS; do
  BUDGET_BYTES=$(python3 -c "import math; print(math.floor($B * $ELEMENTS / 8))")
  # The nearest preset at equal or larger size (ties: the better K-quant
  # mix, listed first among equals below).
  PRESET=$(echo "$LLAMACPP" | awk -v b="$BUDGET_BYTES" 'NF && $2 >= b { print $1; exit }')
  T=$(now)
  "$LOWBIT" compile "$MODEL" --preset "$PRESET" --imatrix "$WORK/imatrix.gguf" \
    -q -o "$WORK/preset-$B.gguf"
  evaluate "$B" "preset $PRESET (lowbit quantizer + same imatrix)" \
    "$WORK/preset-$B.gguf" "$(elapsed "$T")"

  # The measured sensitivities first: the other measures reuse their entries.
  for MEASURE in kld gain wmse; do
    T=$(now)
    "$LOWBIT" compile "$MODEL" --target-bpw "$B" --state "$WORK/state.gguf" \
      --measure "$MEASURE" -o "$WORK/rtn-$MEASURE-$B.gguf" \
      > "$WORK/rtn-$MEASURE-$B.txt"
    evaluate "$B" "lowbit rtn / $MEASURE" "$WORK/rtn-$MEASURE-$B.gguf" \
      "$(elapsed "$T")"
  done
  for METHOD in $METHODS; do
    for MEASURE in kld gain; do
      T=$(now)
      "$LOWBIT" compile "$MODEL" --target-bpw "$B" --state "$WORK/state.gguf" \
        --measure "$MEASURE" --method "$METHOD" \
        -o "$WORK/$METHOD-$MEASURE-$B.gguf" > "$WORK/$METHOD-$MEASURE-$B.txt"
      evaluate "$B" "lowbit $METHOD / $MEASURE" \
        "$WORK/$METHOD-$MEASURE-$B.gguf" "$(elapsed "$T")"
    done
  done
  log "budget $B done"
done

# 5. Re-targeting with the saved state vs the first analysis.
T=$(now)
"$LOWBIT" compile "$MODEL" --target-bpw 4.0 --calib "$MODELS/calib.txt" -c 256 \
  --measure gain --state "$WORK/fresh-state.gguf" -q -o "$WORK/first.gguf"
FIRST_SECONDS=$(elapsed "$T")
T=$(now)
"$LOWBIT" compile "$MODEL" --target-bpw 4.25 --state "$WORK/fresh-state.gguf" \
  --measure gain -q -o "$WORK/retarget.gguf"
RETARGET_SECONDS=$(elapsed "$T")

{
  echo "CALIBRATE_SECONDS=$CALIBRATE_SECONDS"
  echo "FIRST_SECONDS=$FIRST_SECONDS"
  echo "RETARGET_SECONDS=$RETARGET_SECONDS"
  echo "ELEMENTS=$ELEMENTS"
  echo "METHODS=\"$METHODS\""
} > "$TIMINGS"
fi
# shellcheck disable=SC1090
source "$TIMINGS"
KLD_FIRST=$(grep -h "^time:" "$WORK"/rtn-kld-*.txt | head -1)
GPTQ_KLD_FIRST=$(grep -h "^time:" "$WORK"/gptq-kld-*.txt 2>/dev/null | head -1 || true)

# 6. The report and the plot.
python3 - "$CSV" "$RESULTS" "$EVAL_CHUNKS" "$ELEMENTS" "$CALIBRATE_SECONDS" \
  "$FIRST_SECONDS" "$RETARGET_SECONDS" "$WORK/imatrix-compare.md" \
  "$KLD_FIRST" "$METHODS" "$WORK/base.json" "$GPTQ_KLD_FIRST" <<'EOF'
import csv, json, math, os, sys
(csv_path, out, chunks, elements, calib_s, first_s, retarget_s, compare_md,
 kld_first, methods, base_json, gptq_kld_first) = sys.argv[1:13]
rows = list(csv.DictReader(open(csv_path)))
base = json.load(open(base_json))
base_ppl = base['ppl']['value'] if isinstance(base['ppl'], dict) else base['ppl']
llamacpp = {}
for line in open(os.path.join(os.path.dirname(csv_path), 'llamacpp.txt')):
    p = line.split()
    if len(p) == 5:
        llamacpp[p[0]] = p[1:]
scope = (f"first {chunks} chunks of 256 tokens" if chunks != '0'
         else "all 581 chunks of 256 tokens")
md = []
md.append("# Bit allocation on docs256: lowbit vs llama.cpp-style presets\n")
md.append("Produced by `bench/bench_allocation.sh` (rerun it to refresh). Model: "
          "`../shared/models/docs256/model-f32.gguf` (6,819,072 weights). Calibration: "
          "`lowbit calibrate` on `calib.txt`, context 256 (377 chunks, BOS first in every "
          "chunk, as llama.cpp's imatrix tool). Evaluation: `lowbit eval -c 256` on "
          f"`dev-eval.txt`, **{scope}**, KL divergence against the F32 model's "
          f"log-probabilities (F32 PPL on these chunks: {base_ppl:.4f}). "
          "bpw = file bytes * 8 / all weights, as llama.cpp reports.\n")
md.append("Every row quantizes with the **same importance matrix: lowbit's own, from "
          "calib.txt** (the presets too, with lowbit's quantizer, which reproduces "
          "llama.cpp's preset file sizes exactly). The last columns repeat llama.cpp's "
          "own figures for that preset (its quantizer and its imatrix from the same "
          "text, all 581 chunks; `../shared/models/README.md`) for reference.\n")
md.append("Sensitivity measures of lowbit's allocation (`--measure`): **wmse** = "
          "importance-weighted squared error with the mean-activation bias term, "
          "predicted from the calibration statistics; **gain** = the same prediction "
          "scaled per tensor by one measured KL divergence (q3_k alone quantized) so "
          "that tensors are on one scale; **kld** = the KL divergence measured for every "
          "tensor x format with only that tensor quantized (4 calibration chunks).\n")
md.append("| budget bpw | configuration | file bytes | bpw | PPL | mean KLD | top-1 same % "
          "| llama.cpp PPL | llama.cpp KLD | llama.cpp top-1 % |")
md.append("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    ref = ['', '', '']
    if r['config'].startswith('preset '):
        name = r['config'].split()[1]
        ref = [v if v != '-' else 'n/a' for v in llamacpp.get(name, ['', '-', '-', '-'])[1:]]
    md.append(f"| {r['budget']} | {r['config']} | {int(r['bytes']):,} | {r['bpw']} | "
              f"{float(r['ppl']):.4f} | {float(r['kld']):.6f} ± {float(r['kld_err']):.6f} | "
              f"{r['top1']} | {' | '.join(ref)} |")
md.append("")
# Per budget: does lowbit's best beat the preset?
md.append("## Best lowbit configuration per budget vs the preset\n")
for b in sorted({r['budget'] for r in rows}, key=float):
    sub = [r for r in rows if r['budget'] == b]
    preset = [r for r in sub if r['config'].startswith('preset')][0]
    best = min((r for r in sub if r['config'].startswith('lowbit')),
               key=lambda r: float(r['kld']))
    verdict = 'lower' if float(best['kld']) < float(preset['kld']) else 'NOT lower'
    md.append(f"- {b} bpw: {best['config']} at {int(best['bytes']):,} bytes, KLD "
              f"{float(best['kld']):.6f}: {verdict} than {preset['config'].split(' (')[0]} "
              f"at {int(preset['bytes']):,} bytes ({float(preset['kld']):.6f}); "
              f"ratio {float(best['kld']) / float(preset['kld']):.2f}.")
md.append("")
md.append("Measured on this run, per budget (mean KLD ratios):\n")
def kld(b, config):
    for r in rows:
        if r['budget'] == b and r['config'] == config:
            return float(r['kld'])
    return None
for b in sorted({r['budget'] for r in rows}, key=float):
    parts = []
    for num, den, what in [('lowbit rtn / wmse', 'lowbit rtn / gain', 'wmse/gain'),
                           ('lowbit rtn / gain', 'lowbit rtn / kld', 'gain/kld'),
                           ('lowbit gptq / kld', 'lowbit rtn / kld', 'gptq/rtn'),
                           ('lowbit awq / kld', 'lowbit rtn / kld', 'awq/rtn')]:
        x, y = kld(b, num), kld(b, den)
        if x is not None and y:
            parts.append(f"{what} {x / y:.2f}")
    md.append(f"- {b} bpw: " + ", ".join(parts))
md.append("")
md.append("Candidate formats of the allocation: lowbit's default list, q2_k q3_k iq4_xs q4_0 "
          "iq4_nl q4_1 q4_k q5_0 q5_1 q5_k q6_k q8_0 f16 and GGML's lattice i-quants iq2_xxs "
          "(2.06 bpw) iq2_xs (2.31) iq2_s (2.56) iq3_xxs (3.06) iq3_s (3.44). The presets are "
          "llama.cpp's K-quant and legacy mixes; llama.cpp's IQ2/IQ3 presets (iq2_m, iq3_xxs, "
          "...) are not implemented in lowbit and are not in this table, so at 2.75 bpw the "
          "nearest preset at equal or larger size is q2_k_s (3.35 bpw on this model, 22% larger). "
          "With `--method gptq` the kld sensitivities are measured with each tensor "
          "quantized by GPTQ (GPTQ helps the K-quants far more than the i-quants, whose grid "
          "points it can only correct between blocks); gain and the other methods measure plain "
          "rounding.\n")
md.append("## imatrix: lowbit vs llama.cpp (calib.txt, context 256)\n")
md.append(open(compare_md).read())
md.append("## Cost\n")
md.append(f"- calibration (statistics{' and Hessians' if methods else ''}, 377 chunks): "
          f"{calib_s} s")
md.append("- timings on the 2-core development machine, shared with other jobs: expect noise")
md.append(f"- first analysis at 4.0 bpw from scratch (calibration without Hessians, gain "
          f"sensitivity, quantize, export): {first_s} s; re-targeting 4.25 bpw with the saved "
          f"state: {retarget_s} s, {float(first_s) / max(float(retarget_s), 1e-9):.1f}x faster")
md.append(f"- the first `--measure kld` run (792 KL divergence measurements, 44 tensors x 18 formats): `{kld_first}`")
if gptq_kld_first:
    md.append(f"- the first `--measure kld --method gptq` run (the same 792, each tensor quantized by GPTQ): `{gptq_kld_first}`")
if not methods:
    md.append("\nTODO: gptq/awq columns: `lowbit compile --method` did not exist when this "
              "ran; rerun the script once it does.")
md.append("\nPlot: [allocation.svg](allocation.svg) (mean KLD against bits per weight, log scale).")
open(os.path.join(out, 'allocation.md'), 'w').write('\n'.join(md) + '\n')

# SVG plot: KLD (log) against bpw.
W, H, L, R, T, B = 760, 480, 70, 230, 30, 50
series = {}
for r in rows:
    key = r['config'].split(' (')[0] if r['config'].startswith('preset') else r['config']
    key = 'preset (lowbit, same imatrix)' if key.startswith('preset') else key
    series.setdefault(key, []).append((float(r['bpw']), float(r['kld'])))
series['llama.cpp presets (README)'] = [
    (int(v[0]) * 8 / int(elements), float(v[2])) for v in llamacpp.values() if v[2] != '-']
pts = [p for s in series.values() for p in s]
x0, x1 = math.floor(min(p[0] for p in pts) * 2) / 2, math.ceil(max(p[0] for p in pts) * 2) / 2
y0, y1 = math.floor(math.log10(min(p[1] for p in pts))), math.ceil(math.log10(max(p[1] for p in pts)))
sx = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
sy = lambda y: T + (y1 - math.log10(y)) / (y1 - y0) * (H - T - B)
colors = ['#d62728', '#1f77b4', '#17becf', '#7f7f7f', '#2ca02c', '#98df8a', '#ff7f0e',
          '#ffbb78', '#000000', '#9467bd', '#8c564b']
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>']
for e in range(y0, y1 + 1):
    y = sy(10 ** e)
    svg.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
    svg.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
x = x0
while x <= x1 + 1e-9:
    svg.append(f'<line x1="{sx(x):.1f}" y1="{T}" x2="{sx(x):.1f}" y2="{H - B}" stroke="#eee"/>')
    svg.append(f'<text x="{sx(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:g}</text>')
    x += 0.5
svg.append(f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">bits per weight (file)</text>')
svg.append(f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" '
           f'transform="rotate(-90 16 {(T + H - B) / 2})">mean KL divergence vs F32</text>')
for i, (name, points) in enumerate(series.items()):
    c = colors[i % len(colors)]
    points.sort()
    scatter = name.startswith('llama.cpp')  # many presets, not one curve
    if len(points) > 1 and not scatter:
        svg.append('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>' % (
            c, ' '.join(f'{sx(p[0]):.1f},{sy(p[1]):.1f}' for p in points)))
    for p in points:
        fill = 'none' if scatter else c
        svg.append(f'<circle cx="{sx(p[0]):.1f}" cy="{sy(p[1]):.1f}" r="3.5" '
                   f'fill="{fill}" stroke="{c}"/>')
    ly = T + 18 * i + 10
    svg.append(f'<circle cx="{W - R + 16}" cy="{ly - 4}" r="4" fill="{c}"/>')
    svg.append(f'<text x="{W - R + 26}" y="{ly}">{name}</text>')
svg.append('</svg>')
open(os.path.join(out, 'allocation.svg'), 'w').write('\n'.join(svg) + '\n')
EOF
cp "$CSV" "$RESULTS/allocation.csv"
log "wrote $RESULTS/allocation.md, allocation.csv, allocation.svg (scratch: $WORK)"
