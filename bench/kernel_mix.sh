#!/usr/bin/env bash
# Instruction mix of the generated matmul kernels (4096x4096 weights).
# Generates them in-process with `lowbit codegen` (the path of
# `lowbit compile --emit native`), then counts mnemonics with objdump -d over
# each whole kernel, and over each innermost loop of the assembly (the
# k-loops of the micro-tiles, in code order: loop 1 is the one-token (decode)
# tile, loop 2 its single-row remainder, then the prompt tiles; for formats
# with a group decode path (Q4_0 on x86) the last two loops are that path
# and its single-row remainder, and it is the one whole groups take).
# Usage: bench/kernel_mix.sh [BUILD_DIR] [TARGET] [FORMATS...]
set -euo pipefail
BUILD=${1:-build}
TARGET=${2:-x86-64-v3}
shift 2 2>/dev/null || true
FORMATS=${*:-q4_0 q4_k q8_0}
LOWBIT=$BUILD/bin/lowbit
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for f in $FORMATS; do
  # The interleave of lib/Target/Targets/*.cpp (what lowbit-pack-weights uses).
  case $f in
    q2_k|q3_k|q4_k|q5_k|q6_k|iq4_xs) rows=$([ "$TARGET" = x86-64-v4 ] && echo 4 || echo 2) ;;
    q4_0|q4_1|q5_0|q5_1|iq4_nl) rows=8 ;;
    f32|f16|bf16) rows=1 ;;
    *) rows=4 ;;
  esac
  layout=""
  [ "$rows" != 1 ] && layout=", #lowbit.layout<rows = $rows>"
  ty="!lowbit.qtensor<4096x4096 : $f$layout>"
  cat > "$TMP/$f.mlir" <<MLIR
func.func @f(%x: tensor<?x4096xf32>, %w: $ty) {
  %y = lowbit.matmul %x, %w : tensor<?x4096xf32>, $ty -> tensor<?x4096xf32>
  return
}
MLIR
  "$LOWBIT" codegen "$TMP/$f.mlir" --target "$TARGET" --emit so -o "$TMP/$f.so" -q
  "$LOWBIT" codegen "$TMP/$f.mlir" --target "$TARGET" --emit asm -o "$TMP/$f.s" -q
  sym="lb_mm_${f}_4096x4096_r${rows}"
  echo "== $sym ($TARGET): whole function, objdump -d of the shared object"
  objdump -d --no-show-raw-insn --disassemble="$sym" "$TMP/$f.so" |
    awk '/^ +[0-9a-f]+:/ {print $2}' | sort | uniq -c | sort -rn |
    awk '{printf "%s %s; ", $2, $1} END {print ""}'
  echo "== $sym: innermost loops (one k step each), from the assembly"
  awk -v sym="$sym" '
    $0 ~ "^"sym":" {infn = 1}
    infn && /^\.Lfunc_end/ {infn = 0}
    !infn {next}
    /Inner Loop Header/ {inloop = 1; n++; delete c; next}
    inloop && /^[ \t]+j[a-z]+[ \t]/ {
      printf "loop %d:", n
      for (m in c) printf " %s %d;", m, c[m]
      printf "\n"; inloop = 0; next
    }
    inloop && /^[ \t]+[a-z]/ {c[$1]++}
  ' "$TMP/$f.s"
done
