#!/usr/bin/env bash
# zoo-budget-gptq.sh ZOO CALIB WORK: for every model of ZOO/refs.tsv, a
# budget compile with calibration and GPTQ (small settings to stay quick),
# then lowbit's KL divergence against the logits llama.cpp saved. Prints one
# line per model.
set -euo pipefail
zoo=$1 calib=$2 work=$3
mkdir -p "$work"
for model in $(tail -n +2 "$zoo/refs.tsv" | cut -f1 | sort -u); do
  out=$work/$model.gguf
  log=$(lowbit compile "$zoo/$model.gguf" --target-bpw 5 --calib "$calib" \
    -c 64 --chunks 4 --kld-chunks 1 --formats q4_k,q6_k,q8_0 --method gptq \
    -o "$out" 2>&1) || { echo "$model: compile failed: $log"; continue; }
  budget=$(grep -o '= [0-9.]*% of the budget' <<<"$log" || echo "no budget line")
  kld=$(lowbit eval "$out" --kl-base "$zoo/$model.llamacpp-logits" 2>&1 |
    grep -o 'Mean    KLD: *[0-9.]*' | awk '{print $3}')
  echo "$model: $budget, mean KLD ${kld:-missing}"
done
