#!/usr/bin/env bash
# bench_iquants.sh - the 1-2 bit regime on the trained docs256 model: at the
# file sizes of llama.cpp's IQ1_S, IQ1_M, IQ2_XXS and IQ2_S presets, three
# ways to spend the bytes, all with the SAME importance matrix (lowbit's,
# from calib.txt):
#   - the preset (llama.cpp's build-4748 mixing rules);
#   - the preset modified by the published DynamicGate table
#     (--dynamic-gate; docs/DYNAMIC-GATE.md), which is larger;
#   - lowbit's allocation at the preset's file size
#     (--target-size, --method gptq --measure kld).
# Evaluation on dev-eval.txt (`lowbit eval -c 256` against the F32 model's
# saved log-probabilities): mean KLD, PPL, top-1 agreement. Goal: lowbit's
# KLD <= 0.7x the better of preset and DynamicGate at each size.
# Writes bench/results/iquants.md. Environment: BUILD (build dir), MODELS
# (docs256 folder), WORK (scratch dir), EVAL_CHUNKS (chunks of dev-eval to
# score, default 200 of 581; 0 = all), PRESETS (default
# "iq1_s iq1_m iq2_xxs iq2_s"), REPORT_ONLY=1 (rewrite the report from an
# earlier run's WORK). About 20 minutes on 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LOWBIT=$BUILD/bin/lowbit
MODELS=${MODELS:-$ROOT/../shared/models/docs256}
WORK=${WORK:-$(mktemp -d /tmp/lowbit-bench-iquants.XXXXXX)}
EVAL_CHUNKS=${EVAL_CHUNKS:-200}
PRESETS=${PRESETS:-"iq1_s iq1_m iq2_xxs iq2_s"}
RESULTS=$ROOT/bench/results
export LOWBIT_NO_PROGRESS=1

for f in "$LOWBIT" "$MODELS/model-f32.gguf" "$MODELS/calib.txt" \
         "$MODELS/dev-eval.txt"; do
  [ -e "$f" ] || { echo "bench_iquants: missing $f" >&2; exit 1; }
done
mkdir -p "$WORK" "$RESULTS"
MODEL=$MODELS/model-f32.gguf
CSV=$WORK/rows.csv
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$(now) - $1:.1f}')"; }
log() { echo "[bench_iquants] $*" >&2; }

CHUNK_ARGS=()
[ "$EVAL_CHUNKS" != 0 ] && CHUNK_ARGS=(--chunks "$EVAL_CHUNKS")

evaluate() { # preset config file seconds
  local json
  json=$("$LOWBIT" eval "$3" --kl-base "$WORK/base.logits" "${CHUNK_ARGS[@]}" --json)
  python3 - "$1" "$2" "$3" "$4" "$ELEMENTS" "$json" >> "$CSV" <<'EOF'
import json, os, sys
preset, config, path, seconds, elements, text = sys.argv[1:7]
r = json.loads(text); size = os.path.getsize(path)
print(f"{preset},{config},{size},{size * 8 / int(elements):.4f},"
      f"{r['ppl']['value']:.6f},{r['kld']['value']:.6f},{r['kld']['error']:.6f},"
      f"{100 * r['same_top']['value']:.3f},{seconds}")
EOF
}

if [ "${REPORT_ONLY:-0}" != 1 ]; then
  echo "preset,config,bytes,bpw,ppl,kld,kld_err,top1,seconds" > "$CSV"
  T=$(now)
  "$LOWBIT" eval "$MODEL" -f "$MODELS/dev-eval.txt" -c 256 "${CHUNK_ARGS[@]}" \
    --save-logits "$WORK/base.logits" --json > "$WORK/base.json"
  log "F32 baseline: $(elapsed "$T") s"
  T=$(now)
  "$LOWBIT" calibrate "$MODEL" --calib "$MODELS/calib.txt" -c 256 \
    -o "$WORK/imatrix.gguf" --state "$WORK/state.gguf" --hessians \
    > "$WORK/calibrate.txt"
  log "calibration: $(elapsed "$T") s"
  ELEMENTS=$("$LOWBIT" compile "$MODEL" --preset f32 --json -o "$WORK/f32-copy.gguf" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['elements'])")
  rm -f "$WORK/f32-copy.gguf"
  echo "$ELEMENTS" > "$WORK/elements.txt"

  for p in $PRESETS; do
    T=$(now)
    "$LOWBIT" compile "$MODEL" --preset "$p" --imatrix "$WORK/imatrix.gguf" \
      -q -o "$WORK/$p.gguf"
    evaluate "$p" preset "$WORK/$p.gguf" "$(elapsed "$T")"
    T=$(now)
    "$LOWBIT" compile "$MODEL" --preset "$p" --dynamic-gate \
      --imatrix "$WORK/imatrix.gguf" -q -o "$WORK/$p-gate.gguf"
    evaluate "$p" dynamic-gate "$WORK/$p-gate.gguf" "$(elapsed "$T")"
    # The first allocation measures every tensor x format (GPTQ'd); the
    # others reuse the state's results.
    T=$(now)
    "$LOWBIT" compile "$MODEL" --target-size "$(stat -c %s "$WORK/$p.gguf")" \
      --state "$WORK/state.gguf" --calib "$MODELS/calib.txt" -c 256 \
      --method gptq --measure kld -q -o "$WORK/$p-lowbit.gguf"
    evaluate "$p" lowbit "$WORK/$p-lowbit.gguf" "$(elapsed "$T")"
    T=$(now)
    "$LOWBIT" compile "$MODEL" --target-size "$(stat -c %s "$WORK/$p-gate.gguf")" \
      --state "$WORK/state.gguf" --calib "$MODELS/calib.txt" -c 256 \
      --method gptq --measure kld -q -o "$WORK/$p-lowbit-gate-size.gguf"
    evaluate "$p" lowbit-at-gate-size "$WORK/$p-lowbit-gate-size.gguf" "$(elapsed "$T")"
    log "$p done"
  done
fi

python3 - "$CSV" "$WORK/base.json" "$EVAL_CHUNKS" > "$RESULTS/iquants.md" <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
base = json.load(open(sys.argv[2]))
chunks = sys.argv[3]
by = {}
for r in rows:
    by.setdefault(r['preset'], {})[r['config']] = r
print("# The 1-2 bit regime on docs256: presets, DynamicGate and lowbit's allocation\n")
print("`bench/bench_iquants.sh` (2 cores). Every file uses the same importance matrix: lowbit's, from")
print("calib.txt (context 256). Evaluation: `lowbit eval -c 256` on dev-eval.txt "
      f"({'all' if chunks == '0' else chunks} chunks) against the F32 model "
      f"(PPL {base['ppl']['value'] if isinstance(base['ppl'], dict) else base['ppl']:.4f}).")
print("`lowbit` = `--target-size <preset's bytes> --method gptq --measure kld`; "
      "`lowbit @gate` = the same at the DynamicGate file's size.\n")
print("| size of | config | bytes | bpw | PPL | mean KLD | top-1 same % | seconds |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for p, configs in by.items():
    for c in ("preset", "dynamic-gate", "lowbit", "lowbit-at-gate-size"):
        if c not in configs:
            continue
        r = configs[c]
        print(f"| {p.upper()} | {c} | {r['bytes']} | {r['bpw']} | {float(r['ppl']):.4f} | "
              f"{float(r['kld']):.6f} ± {float(r['kld_err']):.6f} | {r['top1']} | {r['seconds']} |")
print("\n## Goal: lowbit <= 0.7x the KLD of the better of preset and DynamicGate\n")
print("| size of | best of preset / gate (KLD) | lowbit at the preset's size | ratio | lowbit at the gate's size | ratio | goal met |")
print("|---|---|---:|---:|---:|---:|---|")
for p, configs in by.items():
    if not all(k in configs for k in ("preset", "dynamic-gate", "lowbit")):
        continue
    kp, kg = float(configs['preset']['kld']), float(configs['dynamic-gate']['kld'])
    best = min(kp, kg)
    which = 'preset' if kp <= kg else 'dynamic-gate'
    kl = float(configs['lowbit']['kld'])
    kg2 = float(configs.get('lowbit-at-gate-size', {}).get('kld', 'nan'))
    ratio = kl / best
    print(f"| {p.upper()} | {best:.6f} ({which}) | {kl:.6f} | {ratio:.3f} | {kg2:.6f} | "
          f"{kg2 / best:.3f} | {'yes' if ratio <= 0.7 else 'no'} |")
sizes = {p: (int(c['preset']['bytes']), int(c['dynamic-gate']['bytes']), float(c['preset']['bpw']), float(c['dynamic-gate']['bpw']))
         for p, c in by.items() if 'preset' in c and 'dynamic-gate' in c}
print("\n## What DynamicGate costs in size\n")
print("| preset | preset bytes | DynamicGate bytes | + bytes | + bits per weight (file) |")
print("|---|---:|---:|---:|---:|")
for p, (a, b, ba, bb) in sizes.items():
    print(f"| {p.upper()} | {a} | {b} | {b - a:+d} | {bb - ba:+.3f} |")
EOF
log "wrote $RESULTS/iquants.md"
