//===- fuzz_imatrix.cpp - libFuzzer target for importance matrices --------===//
//
// Parses arbitrary bytes as an importance matrix (llama.cpp's GGUF format or
// the legacy .dat format, detected from the content, with and without the
// legacy chunk-size scaling) and, when they parse, reads every entry the way
// quantization does.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Calibration/IMatrix.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

using lowbit::calib::IMatrix;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (int64_t legacyChunkSize : {0, 512}) {
    IMatrix m;
    std::string err;
    if (!IMatrix::loadFromMemory(data, size, "fuzz.imatrix", m, err,
                                 legacyChunkSize)) {
      // Errors name the input.
      if (err.rfind("fuzz.imatrix", 0) != 0)
        std::abort();
      continue;
    }
    volatile float sink = 0;
    for (const auto &[name, entry] : m.entries) {
      for (int64_t e = 0; e < 2; ++e)
        for (float v : m.importance(name, e))
          sink = sink + v;
      for (float v : m.meanActivation(name))
        sink = sink + v;
    }
  }
  return 0;
}
