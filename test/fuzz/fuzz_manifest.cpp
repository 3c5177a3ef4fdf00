//===- fuzz_manifest.cpp - libFuzzer target for native manifests ----------===//
//
// Parses arbitrary bytes as a native artifact's manifest.json and, when they
// parse, checks what the runtime relies on: every tensor inside weights.bin,
// and that what was parsed writes back to text that parses the same. (The
// program is code, checked by the runtime's checkProgram; the manifest has
// no graph since version 4.)
//
//===----------------------------------------------------------------------===//
#include "lowbit/runtime/Manifest.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

using namespace lowbit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  runtime::Manifest m;
  std::string err;
  if (!runtime::parseManifest(text, m, err)) {
    if (err.empty())
      std::abort();
    return 0;
  }
  for (const runtime::ManifestTensor &t : m.tensors)
    if (t.offset > m.weightsSize || t.size > m.weightsSize - t.offset)
      std::abort();
  // What was parsed writes back and parses again to the same text.
  const std::string again = runtime::writeManifest(m);
  runtime::Manifest back;
  if (!runtime::parseManifest(again, back, err) ||
      runtime::writeManifest(back) != again)
    std::abort();
  return 0;
}
