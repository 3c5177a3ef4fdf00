//===- fuzz_manifest.cpp - libFuzzer target for native manifests ----------===//
//
// Parses arbitrary bytes as a native artifact's manifest.json and, when they
// parse, checks what the runtime relies on: every tensor inside weights.bin,
// and a graph the executor's validation accepts or rejects without crashing.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Exec/Model.h"
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
  // The runtime validates the graph against the weights it binds; with no
  // weights the validation must fail cleanly or pass.
  exec::ModelDesc desc;
  desc.graph = m.graph;
  (void)desc.validate(err);
  (void)exec::summarize(m.graph);
  // What was parsed writes back and parses again to the same text.
  const std::string again = runtime::writeManifest(m);
  runtime::Manifest back;
  if (!runtime::parseManifest(again, back, err) ||
      runtime::writeManifest(back) != again)
    std::abort();
  return 0;
}
