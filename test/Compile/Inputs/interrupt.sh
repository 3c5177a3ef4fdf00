#!/usr/bin/env bash
# interrupt.sh MODEL CALIB WORKDIR
# Interrupts lowbit runs at several points and checks what is left:
#  - SIGINT / SIGTERM: the output path holds nothing (or, when the run
#    finished first, the complete output) and no temporary file remains;
#  - kill -9: nothing at the output path; the next run removes the stale
#    temporaries and writes the output;
#  - a budget compile resumed from its interrupted --state gives the same
#    bytes as an uninterrupted run.
# Prints one line per check; exits non-zero on the first violation.
set -u
# Job control: without it bash starts background jobs with SIGINT ignored.
set -m
model=$1
calib=$2
work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 2

fail() { echo "FAIL: $*"; ls -la; exit 1; }
leftovers() { find . -name '*.tmp.*' | sort; }

# The reference outputs, uninterrupted (the budget compile in a folder of its
# own: the output records the state's name as given, st.gguf).
mkdir ref-budget
(cd ref-budget && lowbit compile "$model" --target-bpw 8 --calib "$calib" \
  --state st.gguf --method gptq -o out.gguf -q 2>/dev/null) ||
  fail "reference budget compile"
cp ref-budget/out.gguf ref.gguf
lowbit compile "$model" --preset q4_k_m --emit native --target host \
  -o ref-native -q 2>/dev/null || fail "reference native build"
mkdir ref-cal
(cd ref-cal && lowbit calibrate "$model" --calib "$calib" --hessians \
  --state cal.gguf 2>/dev/null) || fail "reference calibrate"
cp ref-cal/cal.gguf ref-cal.gguf

# run_interrupted SIGNAL DELAY OUTPUT COMMAND...: starts COMMAND, sends
# SIGNAL after DELAY seconds, and prints the exit status.
run_interrupted() {
  local sig=$1 delay=$2
  shift 2
  # SIGINT may be ignored on entry (lit's workers ignore it), and a process
  # that starts with a signal ignored keeps ignoring it (like nohup).
  env --default-signal=INT,TERM "$@" >/dev/null 2>&1 &
  local pid=$!
  sleep "$delay"
  kill -s "$sig" "$pid" 2>/dev/null
  wait "$pid"
  echo $?
}

for sig in INT TERM; do
  for delay in 0.1 0.5 1.5 3; do
    # Budget compile (calibration, sensitivity, GPTQ, export).
    rm -f out.gguf st.gguf st.gguf.sensitivity.json
    rc=$(run_interrupted $sig $delay lowbit compile "$model" --target-bpw 8 \
      --calib "$calib" --state st.gguf --method gptq -o out.gguf -q)
    # A signal after the rename (the process still exits by it) leaves the
    # complete output; never a partial one.
    if [ "$rc" = 0 ] || [ -e out.gguf ]; then
      cmp -s out.gguf ref.gguf || fail "$sig@$delay: exit $rc left out.gguf, which differs"
    fi
    [ -z "$(leftovers)" ] || fail "$sig@$delay: temporaries left: $(leftovers)"
    # Resume from whatever state the interruption left: same bytes.
    lowbit compile "$model" --target-bpw 8 --calib "$calib" --state st.gguf \
      --method gptq -o out.gguf -q 2>/dev/null || fail "$sig@$delay: resume"
    cmp -s out.gguf ref.gguf || fail "$sig@$delay: resumed output differs"
    echo "compile $sig at ${delay}s: exit $rc, clean, resumed identical"

    # Native build: no directory, or the complete artifact.
    rm -rf native
    rc=$(run_interrupted $sig $delay lowbit compile "$model" --preset q4_k_m \
      --emit native --target host -o native -q)
    # Renames of the artifact's files defer signals: none, or all of them.
    if [ "$rc" = 0 ] || [ -e native ]; then
      for f in weights.bin metadata.gguf model.so manifest.json; do
        [ -e "native/$f" ] ||
          fail "$sig@$delay: exit $rc left native/ without $f: $(ls -a native)"
      done
      cmp -s native/weights.bin ref-native/weights.bin ||
        fail "$sig@$delay: exit $rc left native/, which differs"
    fi
    [ -z "$(leftovers)" ] || fail "$sig@$delay: temporaries left: $(leftovers)"
    echo "native $sig at ${delay}s: exit $rc, clean"

    # Calibration with Hessians.
    rm -f cal.gguf
    rc=$(run_interrupted $sig $delay lowbit calibrate "$model" --calib "$calib" \
      --hessians --state cal.gguf)
    if [ "$rc" = 0 ] || [ -e cal.gguf ]; then
      cmp -s cal.gguf ref-cal.gguf || fail "$sig@$delay: exit $rc left cal.gguf, which differs"
    fi
    [ -z "$(leftovers)" ] || fail "$sig@$delay: temporaries left: $(leftovers)"
    echo "calibrate $sig at ${delay}s: exit $rc, clean"
  done
done

# kill -9: nothing can clean up; the output path stays empty and the next
# run removes the stale temporaries.
for delay in 0.5 2; do
  rm -rf out.gguf st.gguf* native
  rc=$(run_interrupted KILL $delay lowbit compile "$model" --target-bpw 8 \
    --calib "$calib" --state st.gguf --method gptq -o out.gguf -q)
  if [ "$rc" != 0 ] && [ -e out.gguf ]; then
    cmp -s out.gguf ref.gguf || fail "KILL@$delay: left out.gguf, which differs"
  fi
  lowbit compile "$model" --target-bpw 8 --calib "$calib" --state st.gguf \
    --method gptq -o out.gguf -q 2>/dev/null || fail "KILL@$delay: rerun"
  cmp -s out.gguf ref.gguf || fail "KILL@$delay: rerun differs"
  rc2=$(run_interrupted KILL $delay lowbit compile "$model" --preset q4_k_m \
    --emit native --target host -o native -q)
  lowbit compile "$model" --preset q4_k_m --emit native --target host \
    -o native -q 2>/dev/null || fail "KILL@$delay: native rerun"
  cmp -s native/weights.bin ref-native/weights.bin || fail "KILL@$delay: native differs"
  [ -z "$(leftovers)" ] || fail "KILL@$delay: stale temporaries kept: $(leftovers)"
  echo "kill -9 at ${delay}s: exits $rc/$rc2, rerun cleaned up, identical"
done
echo "all interruptions clean"
