#!/usr/bin/env bash
# zoo-preset-sizes.sh ZOO WORKDIR
# For every model in ZOO/refs.tsv with preset sizes, compiles each preset and
# compares the file size with llama.cpp's (b4748). Prints one line per model;
# exits non-zero on any difference or failure.
set -u
zoo=$1
work=$2
mkdir -p "$work"
status=0
presets=(q2_k q3_k_m q4_k_m q5_k_m q6_k iq4_xs)
while read -r model ppl sizes; do
  [ "$model" = model ] && continue
  read -r -a expected <<<"$sizes"
  line="$model:"
  for i in "${!presets[@]}"; do
    p=${presets[$i]}
    want=${expected[$i]}
    [ "$want" = "-" ] && continue
    out=$work/$model-$p.gguf
    if ! lowbit compile "$zoo/$model.gguf" --preset "$p" -o "$out" -q \
         2>"$work/err"; then
      line+=" $p=FAILED($(head -c 200 "$work/err"))"
      status=1
      continue
    fi
    got=$(stat -c %s "$out")
    if [ "$got" = "$want" ]; then
      line+=" $p=ok"
    else
      line+=" $p=$got(llama.cpp:$want)"
      status=1
    fi
    rm -f "$out"
  done
  echo "$line"
done < "$zoo/refs.tsv"
exit $status
