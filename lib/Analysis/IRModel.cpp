//===- IRModel.cpp - lowbit IR as a model the executor runs ---------------===//
#include "lowbit/Analysis/IRModel.h"

#include "LowBit/IR/LowBit.h"
#include "lowbit/Export/GGUFExport.h"

#include <cstring>

using namespace mlir;
using namespace mlir::lowbit;
namespace exec = ::lowbit::exec;
namespace formats = ::lowbit::formats;
namespace gguf = ::lowbit::gguf;

bool mlir::lowbit::buildModelDesc(ModuleOp module, exec::ModelDesc &out,
                                  std::string &err) {
  std::vector<gguf::KeyValue> metadata;
  {
    // The exporter reports through diagnostics; the caller wants a string.
    std::string captured;
    ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &d) {
      if (captured.empty())
        captured = d.str();
      return success();
    });
    if (failed(collectGGUFMetadata(module, metadata))) {
      err = captured.empty() ? "unreadable metadata" : captured;
      return false;
    }
  }
  std::map<std::string, exec::WeightRef> weights;
  for (GlobalWeightOp weight : module.getOps<GlobalWeightOp>()) {
    QTensorType type = weight.getWeightType();
    ArrayRef<int64_t> shape = type.getShape();
    if (shape.empty() || shape.size() > 2)
      continue; // not a matrix or vector; the executor uses none such
    std::string name = weight.getSymName().str();
    if (type.getLayout() && type.getLayout().getRows() != 1) {
      err = "tensor '" + name +
            "' has a packed layout; the executor reads row-major weights";
      return false;
    }
    exec::WeightRef ref;
    ref.format = type.getFormat().getFormat();
    ref.cols = shape.back();
    ref.rows = shape.size() == 2 ? shape.front() : 1;
    ref.rowBytes = formats::rowBytes(formats::info(ref.format),
                                     static_cast<uint64_t>(ref.cols));
    std::string why;
    ref.data = getWeightBytes(weight, why);
    if (!ref.data) {
      err = "tensor '" + name + "': " + why;
      return false;
    }
    weights.emplace(std::move(name), ref);
  }
  return exec::modelFromMetadata(std::move(metadata), std::move(weights),
                                 /*storage=*/nullptr, out, err);
}

namespace {
/// 64-bit mixing hash over 8-byte words (splitmix64's finaliser per word);
/// a fingerprint, not a cryptographic digest.
class Hasher {
public:
  void add(const void *data, size_t size) {
    const auto *p = static_cast<const uint8_t *>(data);
    while (size >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      mix(word);
      p += 8;
      size -= 8;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p, size);
    mix(tail ^ (uint64_t(size) << 56));
  }
  void add(const std::string &s) {
    add(s.data(), s.size());
    mix(s.size());
  }
  void add(uint64_t v) { mix(v); }
  uint64_t value() const { return state_; }

private:
  void mix(uint64_t word) {
    uint64_t z = state_ ^ (word + 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    state_ = z ^ (z >> 31);
  }
  uint64_t state_ = 0x6c6f776269742d31ull; // "lowbit-1"
};
} // namespace

std::string mlir::lowbit::modelFingerprint(ModuleOp module, std::string &err) {
  constexpr uint64_t kSpans = 16, kSpanBytes = 4096;
  Hasher hash;
  for (GlobalWeightOp weight : module.getOps<GlobalWeightOp>()) {
    QTensorType type = weight.getWeightType();
    hash.add(weight.getSymName().str());
    hash.add(type.getFormat().getName().str());
    for (int64_t d : type.getShape())
      hash.add(static_cast<uint64_t>(d));
    std::string why;
    const uint8_t *bytes = getWeightBytes(weight, why);
    if (!bytes) {
      err = "tensor '" + weight.getSymName().str() + "': " + why;
      return "";
    }
    uint64_t size = type.getByteSize();
    if (size <= kSpans * kSpanBytes) {
      hash.add(bytes, size);
      continue;
    }
    for (uint64_t i = 0; i < kSpans; ++i) {
      uint64_t at = (size - kSpanBytes) / (kSpans - 1) * i;
      hash.add(bytes + at, kSpanBytes);
    }
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx",
                static_cast<unsigned long long>(hash.value()));
  return text;
}
