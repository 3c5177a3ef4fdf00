#!/usr/bin/env bash
# Fails when an #include points back up lowbit's dependency order:
#   lib/ + include/lowbit/   MLIR-free libraries (codecs, GGUF, executor, ...)
#   dialects/                everything that includes MLIR/LLVM
#   tools/                   drivers on top
#   runtime/                 the native runtime: lib/'s MLIR-free parts only
# Usage: scripts/check-layering.sh   (exit 1 and one line per offence)
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
offend() { echo "layering: $1"; status=1; }

# 1. lib/, include/lowbit/ and runtime/ include no MLIR, LLVM or dialect
#    header, and no driver header.
tool_headers=$(cd tools && find . -name '*.h' -printf '%f\n' | sort -u)
while IFS= read -r line; do
  offend "$line (MLIR/LLVM/dialect header below dialects/)"
done < <(grep -rnE '^\s*#\s*include\s*[<"](mlir|llvm|LowBit)/' lib include runtime || true)
for dir in lib include runtime dialects; do
  for h in $tool_headers; do
    while IFS= read -r line; do
      offend "$line (a tools/ header below tools/)"
    done < <(grep -rnE "^\s*#\s*include\s*\"$h\"" "$dir" || true)
  done
done

# 2. No relative include leaves its top-level folder.
while IFS=: read -r file lineno text; do
  rel=$(sed -E 's/^\s*#\s*include\s*"([^"]*)".*/\1/' <<<"$text")
  target=$(realpath -m --relative-to=. "$(dirname "$file")/$rel")
  [ "${target%%/*}" = "${file%%/*}" ] ||
    offend "$file:$lineno: $rel (relative include into ${target%%/*}/)"
done < <(grep -rnE '^\s*#\s*include\s*"\.\./' lib include runtime dialects tools || true)

[ $status -eq 0 ] && echo "layering: ok (lib/ + include/ < dialects/ < tools/; runtime/ on lib/ only)"
exit $status
