#!/usr/bin/env bash
# Kernel benchmark and instruction mix, written to bench/results/kernels.md.
# Usage: bench/run_kernels.sh [BUILD_DIR]   (needs `ninja bench-kernels lowbit`)
# Runs at nice -15 when allowed: the numbers are per call and a shared
# machine's other processes otherwise show up in them.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OUT=bench/results/kernels.md
NICE=""
nice -n -15 true 2>/dev/null && NICE="nice -n -15"
mkdir -p bench/results
{
  echo "# Generated matmul kernels: memory bandwidth and instruction mix"
  echo
  echo "Written by \`bench/run_kernels.sh\` on $(date -u +%Y-%m-%d)."
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores,"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB; load average before the run: $(cut -d' ' -f1 /proc/loadavg)."
  echo
  for target in x86-64-v3 x86-64-v4; do
    echo "## $target"
    echo
    $NICE "$BUILD/bin/bench-kernels" --target "$target" --threads 2 --seconds 1 2>&1 || true
    echo
  done
  cat <<'NOTES'
Notes on reading these numbers:
- "decode" is one token (the matmul of token generation): GB/s of weight bytes
  streamed, each call reading a different copy of the weights (copies total
  2 GiB, every copy different so the host cannot merge pages). "read" is a
  plain read of slices of the same size from a 2 GiB buffer, measured just
  before with the same threads. "prompt" is 64 tokens, activation
  quantization included, in integer GOP/s (2 N K tokens / s).
- The machine is a 2-vCPU VM shared with other jobs (see the load average):
  medians of per-call times are reported, the fastest call in parentheses;
  the 2-thread rows need both vCPUs free at once and vary most from run to
  run.
- A decode tile must read one contiguous stream: with 8 rows spread over two
  4-row interleave groups, Q4_0 decode fell from 20 to 10 GB/s on this
  machine; hence interleave 8 for the formats that decode two rows per
  vector (docs/TARGETS.md).

NOTES
  echo "## Instruction mix (x86-64-v3)"
  echo
  echo '```'
  bench/kernel_mix.sh "$BUILD" x86-64-v3 q4_0 q4_k q8_0
  echo '```'
  echo
  echo "## Instruction mix (x86-64-v4)"
  echo
  echo '```'
  bench/kernel_mix.sh "$BUILD" x86-64-v4 q4_0 q4_k
  echo '```'
} > "$OUT"
echo "wrote $OUT"
