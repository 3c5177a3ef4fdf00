//===- Hessian.cpp - Per-matmul input Hessians from a state file ----------===//
#include "lowbit/Calibration/Hessian.h"

#include "lowbit/Calibration/Calibrator.h"
#include "lowbit/GGUF/GGUF.h"

#include <cmath>
#include <cstring>

namespace lowbit::calib {

namespace {

constexpr uint32_t kGGMLTypeF32 = 0;

class GGUFHessianStore : public HessianStore {
public:
  explicit GGUFHessianStore(std::unique_ptr<gguf::Reader> reader)
      : reader_(std::move(reader)) {}

  // A present but malformed entry counts: get() then reports it, instead of
  // the weight silently falling back to plain rounding.
  bool has(const std::string &weight) const override {
    return reader_->find(kHessianOfKeyPrefix + weight) != nullptr;
  }

  bool get(const std::string &weight, std::vector<float> &out, int64_t &k,
           std::string &error) const override {
    const gguf::TensorInfo *t = tensorFor(weight, error);
    if (!t)
      return false;
    k = static_cast<int64_t>(t->dims[0]);
    out.resize(static_cast<size_t>(k * k));
    std::memcpy(out.data(), reader_->tensorData(*t),
                out.size() * sizeof(float));
    for (size_t i = 0; i < out.size(); ++i)
      if (!std::isfinite(out[i])) {
        error = reader_->path() + ": tensor '" + t->name +
                "' holds a non-finite value at offset " +
                std::to_string(reader_->tensorFileOffset(*t) + i * 4);
        return false;
      }
    return true;
  }

  uint64_t tokens() const override {
    const gguf::KeyValue *kv = reader_->find(kHessianTokensKey);
    return kv && kv->value.isInteger() ? static_cast<uint64_t>(kv->value.u) : 0;
  }

private:
  /// The Hessian tensor of `weight` after checking its key, type and shape.
  const gguf::TensorInfo *tensorFor(const std::string &weight,
                                    std::string &error) const {
    const std::string key = kHessianOfKeyPrefix + weight;
    const gguf::KeyValue *kv = reader_->find(key);
    if (!kv) {
      error = reader_->path() + ": no Hessian for '" + weight + "'";
      return nullptr;
    }
    if (kv->value.type != gguf::ValueType::String) {
      error = reader_->path() + ": " + key + " is not a string";
      return nullptr;
    }
    const gguf::TensorInfo *t = reader_->findTensor(kv->value.str);
    if (!t) {
      error = reader_->path() + ": " + key + " names tensor '" + kv->value.str +
              "', which the file does not hold";
      return nullptr;
    }
    if (t->ggmlType != kGGMLTypeF32 || t->dims.size() != 2 ||
        t->dims[0] != t->dims[1] || t->dims[0] == 0) {
      error = reader_->path() + ": tensor '" + t->name +
              "' is not a square F32 matrix";
      return nullptr;
    }
    return t;
  }

  std::unique_ptr<gguf::Reader> reader_;
};

} // namespace

std::unique_ptr<HessianStore> HessianStore::open(const std::string &path,
                                                 std::string &error) {
  gguf::Error gerr;
  std::unique_ptr<gguf::Reader> reader = gguf::Reader::open(path, gerr);
  if (!reader) {
    error = gerr.message();
    return nullptr;
  }
  if (!reader->find(kHessianTokensKey)) {
    error = path + ": no Hessians (" + kHessianTokensKey +
            " missing; calibrate with Hessians enabled)";
    return nullptr;
  }
  return std::make_unique<GGUFHessianStore>(std::move(reader));
}

std::vector<float> identityHessian(int64_t k) {
  std::vector<float> h(static_cast<size_t>(k * k), 0.0f);
  for (int64_t i = 0; i < k; ++i)
    h[i * k + i] = 1.0f;
  return h;
}

std::string hessianMatrixName(const std::string &weight, int64_t expert,
                              int64_t experts) {
  return experts == 1 ? weight : weight + ".expert" + std::to_string(expert);
}

} // namespace lowbit::calib
