"""Compares two `lowbit eval --json` results: PPL within a relative tolerance."""
import json
import sys

ref = json.load(open(sys.argv[1]))
got = json.load(open(sys.argv[2]))
tol = float(sys.argv[3])
delta = got["ppl"] / ref["ppl"] - 1
print(f"reference {ref['ppl']:.4f} native {got['ppl']:.4f} delta {delta * 100:+.3f}% "
      f"({got['chunks']} chunks of {got['context']})")
sys.exit(0 if abs(delta) <= tol and got["chunks"] == ref["chunks"] else 1)
