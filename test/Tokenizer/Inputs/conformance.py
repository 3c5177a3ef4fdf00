#!/usr/bin/env python3
"""conformance.py LOWBIT VOCAB.gguf WORKDIR

Runs every case of llama.cpp's tokenizer test for VOCAB (VOCAB.gguf.inp: test
strings separated by lines __ggml_vocab_test__; VOCAB.gguf.out: the ids
llama.cpp produces without BOS, one line per string) through
`lowbit tokenize --no-bos` and prints "<vocab>: N/M cases match", then each
mismatch. Exit status 0 when every case matches."""
import os
import subprocess
import sys

lowbit, vocab, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
with open(vocab + ".inp", "rb") as f:
    cases = f.read().split(b"\n__ggml_vocab_test__\n")
if cases and cases[-1] == b"":
    cases.pop()
with open(vocab + ".out", "rb") as f:
    expected = [line.split() for line in f.read().split(b"\n")]
name = os.path.basename(vocab)
failures = []
for i, text in enumerate(cases):
    path = os.path.join(work, "case-%d.txt" % i)
    with open(path, "wb") as f:
        f.write(text)
    run = subprocess.run([lowbit, "tokenize", vocab, "-f", path, "--no-bos"],
                         capture_output=True)
    if run.returncode != 0:
        failures.append("case %d: lowbit failed: %s" %
                        (i, run.stderr.decode(errors="replace").strip()))
        break  # an unsupported vocabulary fails every case the same way
    got = run.stdout.split()
    want = expected[i] if i < len(expected) else None
    if got != want:
        failures.append("case %d %r: got %s, llama.cpp %s" %
                        (i, text[:40], b" ".join(got).decode(),
                         b" ".join(want or []).decode()))
matched = len(cases) - len(failures) if not (failures and "failed" in failures[0]) else 0
print("%s: %d/%d cases match" % (name, matched, len(cases)))
for line in failures:
    print("  " + line)
sys.exit(0 if not failures else 1)
