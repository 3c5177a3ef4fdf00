#!/usr/bin/env bash
# Native speed of llama.cpp's i-quant presets (lattice kernels,
# LatticeKernels.cpp): bench_native.sh on the 7B-shaped synthetic layers
# (dim 4096, ffn 11008) for IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and
# IQ3_S, with an importance matrix from one 32-token chunk of docs256's
# calib.txt (the synthetic model has a byte-level vocabulary);
# tg128 as a fraction of the bandwidth limit. Writes
# bench/results/iquants_native.md. Env as bench_native.sh; LAYERS defaults
# to 1 here (the i-quant encoders take about a minute per 200M weights on
# 2 cores).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PRESETS=${PRESETS:-"iq1_s iq1_m iq2_xxs iq2_xs iq2_s iq3_xxs iq3_s"}
export MODELS=${MODELS:-synthetic}
export REFERENCE=${REFERENCE:-0}
export LAYERS=${LAYERS:-1}
export COMPILE_ARGS=${COMPILE_ARGS:-"--calib $ROOT/../shared/models/docs256/calib.txt --chunks 1 -c 32"}
export OUT=${OUT:-$ROOT/bench/results/iquants_native.md}
exec "$ROOT/bench/bench_native.sh"
