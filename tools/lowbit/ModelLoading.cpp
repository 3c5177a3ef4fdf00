//===- ModelLoading.cpp - Models for `lowbit run` and `lowbit eval` -------===//

#include "ModelLoading.h"
#include "ModelIO.h"

#include "LowBit/Exec/IRModel.h"
#include "lowbit/GGUF/GGUF.h"

#include <cstdio>
#include <cstring>

namespace lowbit::driver {

namespace {
/// Whether `path` starts with the GGUF magic; false with `err` set when the
/// file cannot be read.
bool isGGUFFile(const std::string &path, bool &isGGUF, std::string &err) {
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) {
    err = path + ": " + std::strerror(errno);
    return false;
  }
  char magic[4] = {0, 0, 0, 0};
  size_t got = std::fread(magic, 1, 4, f);
  std::fclose(f);
  isGGUF = got == 4 && std::memcmp(magic, "GGUF", 4) == 0;
  return true;
}

/// lowbit IR (e.g. from `lowbit compile --emit mlir`): the context and the
/// module own the weights' resource blobs, so the model keeps them alive.
bool loadIRModel(const std::string &path, exec::ModelDesc &desc,
                 std::string &err) {
  struct IRStorage {
    std::unique_ptr<mlir::MLIRContext> context;
    mlir::OwningOpRef<mlir::ModuleOp> module;
  };
  auto storage = std::make_shared<IRStorage>();
  storage->context = makeContext();
  storage->module = loadModel(*storage->context, path);
  if (!storage->module) {
    // The parser or verifier printed the located error already.
    err = path + ": not a GGUF file nor valid lowbit IR";
    return false;
  }
  std::string why;
  if (!mlir::lowbit::buildModelDesc(*storage->module, desc, why)) {
    err = path + ": " + why;
    return false;
  }
  desc.storage = storage;
  return true;
}
} // namespace

bool loadModelForExecution(const std::string &path, ExecutableModel &out,
                           std::string &err) {
  if (isNativeArtifact(path))
    return loadNativeArtifact(path, out, err);
  bool isGGUF = false;
  if (!isGGUFFile(path, isGGUF, err))
    return false;
  std::string why;
  if (!isGGUF) {
    if (!loadIRModel(path, out.desc, err))
      return false;
  } else if (!mlir::lowbit::loadGGUFModel(path, out.desc, why)) {
    err = path + ": " + why;
    return false;
  }
  out.tokenizer = Tokenizer::create(out.desc.metadata, why);
  if (!out.tokenizer) {
    err = path + ": " + why;
    return false;
  }
  if (out.tokenizer->vocabSize() != out.desc.vocabSize) {
    err = path + ": the tokenizer has " +
          std::to_string(out.tokenizer->vocabSize()) +
          " tokens but the embedding has " +
          std::to_string(out.desc.vocabSize) + " rows";
    return false;
  }
  return true;
}

} // namespace lowbit::driver
