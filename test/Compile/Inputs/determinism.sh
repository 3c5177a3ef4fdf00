#!/usr/bin/env bash
# determinism.sh MODEL CALIB WORKDIR [BPW]
# Every output kind from the same inputs and options, under different thread
# counts, repeated runs and SIMD levels (LOWBIT_SIMD caps the executor's
# vector path: scalar, avx2, or the widest the CPU has): all must be the same
# bytes. Prints one line per output kind with the number of distinct digests
# (1 = deterministic) and the variants compared.
set -u
model=$1
calib=$2
work=$3
bpw=${4:-7}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 2

variants=("t1" "t2" "t2-again" "scalar-t2" "avx2-t1")
run() { # run VARIANT KIND: writes VARIANT/KIND output(s)
  local v=$1 kind=$2 threads=2 simd=""
  case $v in
  t1 | avx2-t1) threads=1 ;;
  esac
  case $v in
  scalar-*) simd=scalar ;;
  avx2-*) simd=avx2 ;;
  esac
  mkdir -p "$v" && cd "$v" || exit 2
  local env=(env)
  [ -n "$simd" ] && env+=(LOWBIT_SIMD=$simd)
  case $kind in
  preset)
    "${env[@]}" lowbit compile "$model" --preset q4_k_m -t $threads \
      -o preset.gguf -q ;;
  budget-gptq)
    "${env[@]}" lowbit compile "$model" --target-bpw $bpw --calib "$calib" -c 64 \
      --method gptq --state s.gguf -t $threads -o budget-gptq.gguf -q ;;
  budget-kld)
    "${env[@]}" lowbit compile "$model" --target-bpw $bpw --calib "$calib" -c 64 \
      --measure kld --state k.gguf -t $threads -o budget-kld.gguf -q ;;
  awq)
    "${env[@]}" lowbit compile "$model" --preset q4_0 --calib "$calib" -c 64 \
      --method awq -t $threads -o awq.gguf -q ;;
  native)
    "${env[@]}" lowbit compile "$model" --preset q4_k_m --emit native \
      --target x86-64-v3 -t $threads -o native -q &&
      cat native/model.so native/weights.bin native/manifest.json \
        native/metadata.gguf > native.all ;;
  calibrate)
    "${env[@]}" lowbit calibrate "$model" --calib "$calib" -c 64 --hessians \
      -t $threads --state calibrate.gguf > /dev/null ;;
  esac
  local rc=$?
  cd ..
  return $rc
}

status=0
for kind in preset budget-gptq budget-kld awq native calibrate; do
  file=$kind.gguf
  [ $kind = native ] && file=native.all
  digests=""
  for v in "${variants[@]}"; do
    if ! run "$v" $kind 2> "$v.$kind.err"; then
      echo "$kind: $v failed: $(head -c 300 "$v.$kind.err")"
      status=1
      continue
    fi
    digests+="$(sha256sum "$v/$file" | cut -d' ' -f1)"$'\n'
  done
  distinct=$(printf '%s' "$digests" | sort -u | grep -c .)
  echo "$kind: $distinct distinct output(s) over ${variants[*]}"
  [ "$distinct" = 1 ] || status=1
done
exit $status
