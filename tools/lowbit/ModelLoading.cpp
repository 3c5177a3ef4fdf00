//===- ModelLoading.cpp - Models for `lowbit run` and `lowbit eval` -------===//

#include "ModelLoading.h"

#include "lowbit/GGUF/GGUF.h"

#include <cstdio>
#include <cstring>

namespace lowbit::driver {

namespace {
bool hasGGUFMagic(const std::string &path, std::string &err) {
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) {
    err = path + ": " + std::strerror(errno);
    return false;
  }
  char magic[4] = {0, 0, 0, 0};
  size_t got = std::fread(magic, 1, 4, f);
  std::fclose(f);
  if (got != 4 || std::memcmp(magic, "GGUF", 4) != 0) {
    err = path + ": not a GGUF file (run and eval take .gguf models)";
    return false;
  }
  return true;
}
} // namespace

bool loadModelForExecution(const std::string &path, ExecutableModel &out,
                           std::string &err) {
  if (!hasGGUFMagic(path, err))
    return false;
  gguf::Error gerr;
  std::unique_ptr<gguf::Reader> reader = gguf::Reader::open(path, gerr);
  if (!reader) {
    err = gerr.message();
    return false;
  }
  std::string why;
  if (!exec::modelFromGGUF(
          std::shared_ptr<const gguf::Reader>(std::move(reader)), out.desc,
          why)) {
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
