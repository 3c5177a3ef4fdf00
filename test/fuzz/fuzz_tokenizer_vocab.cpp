//===- fuzz_tokenizer_vocab.cpp - libFuzzer target for vocabularies -------===//
//
// Builds a tokenizer from the metadata of arbitrary bytes read as GGUF
// (tokens, scores, types, merges, special ids, pre-tokenizer name) and, when
// that succeeds, tokenizes and detokenizes a fixed set of texts with it.
//
//===----------------------------------------------------------------------===//
#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Tokenizer/Tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

using namespace lowbit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gguf::Error gerr;
  std::unique_ptr<gguf::Reader> reader =
      gguf::Reader::fromMemory(data, size, "fuzz", gerr);
  if (!reader)
    return 0;
  std::string err;
  std::unique_ptr<Tokenizer> t = Tokenizer::create(reader->metadata(), err);
  if (!t) {
    if (err.empty())
      std::abort();
    return 0;
  }
  static const char *const kTexts[] = {"",
                                       " ",
                                       "Hello world!",
                                       "  leading spaces\n\nand lines",
                                       "numbers 12345 and 'contractions' it's",
                                       "caf\xc3\xa9 \xe4\xb8\xad",
                                       "\xff\xfe invalid \xc0\x80",
                                       "<s></s><|endoftext|>"};
  for (const char *text : kTexts)
    for (bool special : {false, true}) {
      std::vector<TokenId> ids = t->tokenize(text, special, special);
      for (TokenId id : ids)
        if (id < 0 || id >= t->vocabSize())
          std::abort();
      (void)t->detokenize(ids, special, special);
    }
  return 0;
}
