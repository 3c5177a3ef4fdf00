//===- fuzz_gguf.cpp - libFuzzer target for the GGUF reader ---------------===//
//
// Parses arbitrary bytes with Reader::fromMemory and, when they parse, touches
// everything the reader promises is valid (every tensor byte range, every
// value) so that ASan/UBSan see any bound the reader forgot to check.
//
//===----------------------------------------------------------------------===//
#include "lowbit/GGUF/GGUF.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

using namespace lowbit::gguf;

namespace {

uint64_t visit(const Value &v) {
  uint64_t h = static_cast<uint64_t>(v.type) + v.u + v.str.size();
  h += static_cast<uint64_t>(v.asInt());
  for (const Value &e : v.elements)
    h += visit(e);
  return h;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Error err;
  std::unique_ptr<Reader> r = Reader::fromMemory(data, size, "fuzz", err);
  if (!r) {
    // Errors point into the input (or at its end).
    if (!err.hasOffset || err.offset > size || err.message().empty())
      std::abort();
    return 0;
  }
  if (r->dataOffset() > size || r->alignment() == 0)
    std::abort();
  volatile uint64_t sink = 0;
  for (const KeyValue &kv : r->metadata()) {
    sink = sink + visit(kv.value);
    if (r->find(kv.key) != &kv || !(kv.value == kv.value))
      std::abort();
  }
  for (const TensorInfo &t : r->tensors()) {
    if (r->findTensor(t.name) != &t)
      std::abort();
    if (r->tensorFileOffset(t) % r->alignment() !=
        r->dataOffset() % r->alignment())
      std::abort();
    if (t.byteSize == 0)
      continue;
    const uint8_t *p = r->tensorData(t);
    if (p < data || p + t.byteSize > data + size)
      std::abort();
    sink = sink + p[0] + p[t.byteSize - 1];
  }
  (void)r->getString("general.architecture");
  (void)r->getInt("general.alignment", 0);
  (void)r->getFloat("general.alignment", 0);
  return 0;
}
