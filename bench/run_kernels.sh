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
