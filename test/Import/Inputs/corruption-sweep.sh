#!/usr/bin/env bash
# corruption-sweep.sh GGUF WORKDIR STEP
# Truncates GGUF at offsets spread over the whole file (every STEP-th offset
# of the metadata region and 32 points in the data) and flips each of the
# first 32 bytes and every STEP-th later header byte. (The GGUF unit tests
# truncate a small file at every single offset in-process; this checks the
# driver end to end.) Every `lowbit import`
# must exit with 0 or 1 (never a signal), and a truncated file must be
# rejected with "error: <file>: ... at offset N".
set -u
src=$1
work=$2
step=${3:-31}
mkdir -p "$work"
size=$(stat -c %s "$src")
data=$(lowbit-gguf dump "$src" | awk '/^data_offset:/ {print $2}')
offsets=""
for ((n = 0; n < data; n += step)); do offsets+=" $n"; done
for ((i = 1; i < 32; i++)); do offsets+=" $((data + (size - data) * i / 32))"; done
offsets+=" $((size - 1))"
fail=0
count=0
for n in $offsets; do
  lowbit-gguf truncate "$src" "$n" -o "$work/t.gguf" || exit 2
  lowbit import "$work/t.gguf" -o "$work/t.mlir" 2> "$work/err" > /dev/null
  rc=$?
  count=$((count + 1))
  if [ $rc -ne 1 ] || ! grep -q "^error: .*t.gguf: .* at offset [0-9]*" "$work/err"; then
    if [ $n -ge 4 ] || [ $rc -ne 1 ]; then
      echo "truncate at $n: exit $rc: $(head -c 300 "$work/err")"
      fail=1
    fi
  fi
  if [ -e "$work/t.mlir" ]; then
    echo "truncate at $n: output file left behind"
    fail=1
    rm -f "$work/t.mlir"
  fi
done
flips=""
for ((i = 0; i < 32; i++)); do flips+=" $i"; done
for ((i = 32; i < data; i += step * 2)); do flips+=" $i"; done
for n in $flips; do
  lowbit-gguf flip "$src" "$n" -o "$work/f.gguf" || exit 2
  lowbit import "$work/f.gguf" -o "$work/f.mlir" 2> "$work/err" > /dev/null
  rc=$?
  count=$((count + 1))
  if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
    echo "flip at $n: exit $rc: $(head -c 300 "$work/err")"
    fail=1
  fi
  rm -f "$work/f.mlir"
done
echo "corruption sweep: $count files checked"
exit $fail
