//===- fuzz_tokenizer_text.cpp - libFuzzer target for tokenizer input -----===//
//
// Tokenizes arbitrary bytes (invalid UTF-8 included) with real vocabularies:
// the GGUF files named in LOWBIT_FUZZ_VOCABS (colon-separated; the runner
// passes a SentencePiece and byte-level BPE vocabularies with each
// pre-tokenizer). The first input byte picks the vocabulary and the flags;
// tokens must be valid ids and detokenizing must not fail.
//
//===----------------------------------------------------------------------===//
#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Tokenizer/Tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace lowbit;

namespace {
std::vector<std::unique_ptr<Tokenizer>> &vocabularies() {
  static std::vector<std::unique_ptr<Tokenizer>> v;
  return v;
}
} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  const char *list = std::getenv("LOWBIT_FUZZ_VOCABS");
  std::string paths = list ? list : "";
  size_t start = 0;
  while (start <= paths.size()) {
    size_t end = paths.find(':', start);
    if (end == std::string::npos)
      end = paths.size();
    std::string path = paths.substr(start, end - start);
    start = end + 1;
    if (path.empty())
      continue;
    gguf::Error gerr;
    auto reader = gguf::Reader::open(path, gerr);
    std::string err;
    std::unique_ptr<Tokenizer> t =
        reader ? Tokenizer::create(reader->metadata(), err) : nullptr;
    if (!t) {
      std::fprintf(stderr, "fuzz_tokenizer_text: %s: %s\n", path.c_str(),
                   reader ? err.c_str() : gerr.message().c_str());
      std::exit(2);
    }
    vocabularies().push_back(std::move(t));
  }
  if (vocabularies().empty()) {
    std::fprintf(stderr, "fuzz_tokenizer_text: set LOWBIT_FUZZ_VOCABS to "
                         "GGUF files with a vocabulary\n");
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const auto &vocabs = vocabularies();
  const Tokenizer &t = *vocabs[data[0] % vocabs.size()];
  const bool addSpecial = data[0] & 0x40, parseSpecial = data[0] & 0x80;
  std::string_view text(reinterpret_cast<const char *>(data + 1), size - 1);
  std::vector<TokenId> ids = t.tokenize(text, addSpecial, parseSpecial);
  for (TokenId id : ids) {
    if (id < 0 || id >= t.vocabSize())
      std::abort();
    (void)t.tokenToPiece(id, /*special=*/true);
  }
  (void)t.detokenize(ids, /*removeSpecial=*/true, /*unparseSpecial=*/false);
  for (PreTokenizer pre :
       {PreTokenizer::Default, PreTokenizer::GPT2, PreTokenizer::Llama3,
        PreTokenizer::Qwen2, PreTokenizer::Falcon, PreTokenizer::StarCoder,
        PreTokenizer::DeepSeekLLM})
    (void)preTokenize(text, pre);
  return 0;
}
