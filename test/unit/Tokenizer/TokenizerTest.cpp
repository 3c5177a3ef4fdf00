//===- TokenizerTest.cpp - Tokenizer unit tests ---------------------------===//
//
// Real vocabularies (the shared test models) are checked against the ids
// llama.cpp gives, listed in ../shared/models/README.md. A small byte-level
// BPE vocabulary built here covers the GPT-2 path with hand-checked ids.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Tokenizer/Tokenizer.h"

#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Tokenizer/Unicode.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

using namespace lowbit;
using gguf::KeyValue;
using gguf::Value;
using gguf::ValueType;

namespace {

bool fileExists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

/// Metadata of a shared model, or empty (and a skip message) when absent.
std::vector<KeyValue> loadMetadata(const std::string &relPath,
                                   std::string &skip) {
  std::string path = std::string(LOWBIT_SHARED_DIR) + "/models/" + relPath;
  if (!fileExists(path)) {
    skip = "model not found: " + path;
    return {};
  }
  gguf::Error err;
  auto reader = gguf::Reader::open(path, err);
  if (!reader) {
    skip = "cannot read " + path + ": " + err.message();
    return {};
  }
  return reader->metadata();
}

std::vector<TokenId> ids(std::initializer_list<int> l) {
  return std::vector<TokenId>(l.begin(), l.end());
}

//===----------------------------------------------------------------------===//
// Unicode helpers
//===----------------------------------------------------------------------===//

TEST(TokenizerUnicode, Categories) {
  using namespace unicode;
  EXPECT_EQ(flags('a'), Letter);
  EXPECT_EQ(flags('7'), Number);
  EXPECT_EQ(flags(' '), Separator | Whitespace);
  EXPECT_EQ(flags('\n'), Control | Whitespace);
  EXPECT_EQ(flags('!'), Punctuation);
  EXPECT_EQ(flags('$'), Symbol);
  EXPECT_EQ(flags(0xe9), Letter);        // é
  EXPECT_EQ(flags(0x2013), Punctuation); // en dash
  EXPECT_EQ(flags(0x2713), Symbol);      // check mark
  EXPECT_EQ(flags(0x0301), Mark);        // combining acute
  EXPECT_EQ(flags(0x0663), Number);      // Arabic-Indic three
  EXPECT_EQ(flags(0x3000), Separator | Whitespace);
  EXPECT_EQ(flags(0x4e00), Letter);  // CJK range start
  EXPECT_EQ(flags(0x9fff), Letter);  // CJK range end
  EXPECT_EQ(flags(0x0378), Control); // unassigned -> Cn
  EXPECT_EQ(flags(0x10ffff), Control);
  EXPECT_EQ(flags(0x110000), 0);
}

TEST(TokenizerUnicode, Utf8InvalidBytesBecomeReplacement) {
  std::vector<uint32_t> cps = unicode::decodeUtf8("a\xff\xc3\xa9\xe2\x82");
  EXPECT_EQ(cps, (std::vector<uint32_t>{'a', 0xfffd, 0xe9, 0xfffd, 0xfffd}));
  std::string s;
  for (uint32_t cp : {0x41u, 0xe9u, 0x20acu, 0x1f600u})
    unicode::appendUtf8(cp, s);
  EXPECT_EQ(s, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

TEST(TokenizerUnicode, Gpt2ByteMapping) {
  EXPECT_EQ(unicode::byteToUnicode(' '), "\xc4\xa0");  // U+0120 'Ġ'
  EXPECT_EQ(unicode::byteToUnicode('\n'), "\xc4\x8a"); // U+010A 'Ċ'
  EXPECT_EQ(unicode::byteToUnicode('A'), "A");
  EXPECT_EQ(unicode::byteToUnicode(0xad), "\xc5\x83"); // U+0143, the last
  for (int b = 0; b < 256; ++b) {
    std::vector<uint32_t> cp =
        unicode::decodeUtf8(unicode::byteToUnicode(static_cast<uint8_t>(b)));
    ASSERT_EQ(cp.size(), 1u);
    uint8_t back;
    ASSERT_TRUE(unicode::unicodeToByte(cp[0], back));
    EXPECT_EQ(back, b);
  }
  uint8_t b;
  EXPECT_FALSE(unicode::unicodeToByte(0x20, b)); // space is not an image
  EXPECT_FALSE(unicode::unicodeToByte(0x144, b));
}

//===----------------------------------------------------------------------===//
// Pre-tokenizers (expected splits derived by hand from the regexes)
//===----------------------------------------------------------------------===//

using Words = std::vector<std::string>;
const char kSample[] = "Hello world!  It's 2024.\n\nBye  ";

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(preTokenize(kSample, PreTokenizer::GPT2),
            (Words{"Hello", " world", "!", " ", " It", "'s", " 2024", ".", "\n",
                   "\n", "Bye", "  "}));
  EXPECT_EQ(preTokenize("I'LL a--b", PreTokenizer::GPT2),
            (Words{"I", "'", "LL", " a", "--", "b"}));
}

TEST(PreTokenizer, Llama3) {
  EXPECT_EQ(preTokenize(kSample, PreTokenizer::Llama3),
            (Words{"Hello", " world", "!", " ", " It", "'s", " ", "202", "4",
                   ".\n\n", "Bye", "  "}));
  // Case-insensitive contractions; newlines stick to punctuation.
  EXPECT_EQ(preTokenize("I'LL (x)\r\n \n", PreTokenizer::Llama3),
            (Words{"I", "'LL", " (", "x", ")\r\n", " \n"}));
  EXPECT_EQ(
      preTokenize("caf\xc3\xa9 \xe2\x80\x93 na\xc3\xafve \xe2\x9c\x93 "
                  "\xe6\x9d\xb1\xe4\xba\xac \xd9\xa1\xd9\xa2\xd9\xa3",
                  PreTokenizer::Llama3),
      (Words{"caf\xc3\xa9", " \xe2\x80\x93", " na\xc3\xafve", " \xe2\x9c\x93",
             " \xe6\x9d\xb1\xe4\xba\xac", " ", "\xd9\xa1\xd9\xa2\xd9\xa3"}));
}

TEST(PreTokenizer, Qwen2) {
  EXPECT_EQ(preTokenize(kSample, PreTokenizer::Qwen2),
            (Words{"Hello", " world", "!", " ", " It", "'s", " ", "2", "0", "2",
                   "4", ".\n\n", "Bye", "  "}));
}

TEST(PreTokenizer, Default) {
  EXPECT_EQ(preTokenize(kSample, PreTokenizer::Default),
            (Words{"Hello", " world", "!", " ", " It", "'", "s", " ", "202",
                   "4", ".", "\n", "\n", "Bye", "  "}));
  EXPECT_EQ(preTokenize("a+=1234567", PreTokenizer::Default),
            (Words{"a", "+=", "123", "456", "7"}));
}

TEST(PreTokenizer, DeepSeekLLM) {
  // [\r\n] first; letters and ASCII punctuation runs take one leading space;
  // numbers split off last.
  EXPECT_EQ(preTokenize(kSample, PreTokenizer::DeepSeekLLM),
            (Words{"Hello", " world", "!", " ", " It", "'", "s", " ", "2024",
                   ".", "\n", "\n", "Bye", "  "}));
  // CJK runs (U+4E2D U+6587) apart from letters; fullwidth letters are letters.
  EXPECT_EQ(preTokenize("\xe4\xb8\xad\xe6\x96\x87" "abc \xef\xbc\xa1",
                        PreTokenizer::DeepSeekLLM),
            (Words{"\xe4\xb8\xad\xe6\x96\x87", "abc", " \xef\xbc\xa1"}));
}

TEST(PreTokenizer, EmptyAndInvalid) {
  EXPECT_TRUE(preTokenize("", PreTokenizer::Llama3).empty());
  // An invalid byte becomes U+FFFD, a symbol.
  Words w = preTokenize("a\xff", PreTokenizer::GPT2);
  EXPECT_EQ(w, (Words{"a", "\xef\xbf\xbd"}));
}

//===----------------------------------------------------------------------===//
// A tiny GPT-2 style byte-level BPE vocabulary.
//===----------------------------------------------------------------------===//

Value strings(const std::vector<std::string> &v) {
  std::vector<Value> e;
  for (const std::string &s : v)
    e.push_back(Value::makeString(s));
  return Value::makeArray(ValueType::String, std::move(e));
}

Value ints(const std::vector<int32_t> &v) {
  std::vector<Value> e;
  for (int32_t x : v)
    e.push_back(Value::makeI32(x));
  return Value::makeArray(ValueType::I32, std::move(e));
}

// "Ġ" is the GPT-2 image of the space byte, "Ċ" of '\n', "Ã©" of "é".
const std::vector<std::string> kBpeTokens = {
    "<|endoftext|>", // 0  control
    "h",
    "e",
    "l",
    "o",
    "\xc4\xa0",
    "w",
    "r",
    "d",
    "!", // 1..9
    "he",
    "ll",
    "hell",
    "hello", // 10..13
    "\xc4\xa0w",
    "or",
    "\xc4\xa0wor",
    "\xc4\xa0worl",  // 14..17
    "\xc4\xa0world", // 18
    "'",
    "s",
    "'s",
    "1",
    "2",
    "3",
    "12", // 19..25
    "\xc4\x8a",
    "\xc3\x83",
    "\xc2\xa9",
    "\xc3\x83\xc2\xa9", // 26..29
    "<tool>",           // 30 user-defined
};
const std::vector<std::string> kBpeMerges = {
    "h e",          "l l",           "he ll",
    "hell o",       "\xc4\xa0 w",    "o r",
    "\xc4\xa0w or", "\xc4\xa0wor l", "\xc4\xa0worl d",
    "' s",          "1 2",           "\xc3\x83 \xc2\xa9",
};

std::vector<KeyValue> bpeMetadata(const std::string &pre, bool addBos) {
  std::vector<int32_t> types(kBpeTokens.size(), 1);
  types[0] = 3;
  types[30] = 4;
  std::vector<KeyValue> kvs;
  auto add = [&](const char *key, Value v) {
    KeyValue kv;
    kv.key = key;
    kv.value = std::move(v);
    kvs.push_back(std::move(kv));
  };
  add("tokenizer.ggml.model", Value::makeString("gpt2"));
  add("tokenizer.ggml.pre", Value::makeString(pre));
  add("tokenizer.ggml.tokens", strings(kBpeTokens));
  add("tokenizer.ggml.token_type", ints(types));
  add("tokenizer.ggml.merges", strings(kBpeMerges));
  add("tokenizer.ggml.bos_token_id", Value::makeU32(0));
  add("tokenizer.ggml.eos_token_id", Value::makeU32(0));
  if (addBos)
    add("tokenizer.ggml.add_bos_token", Value::makeBool(true));
  return kvs;
}

std::unique_ptr<Tokenizer> bpe(const std::string &pre = "gpt-2",
                               bool addBos = false) {
  std::string err;
  auto t = Tokenizer::create(bpeMetadata(pre, addBos), err);
  EXPECT_TRUE(t) << err;
  return t;
}

TEST(BpeTokenizer, Merges) {
  auto t = bpe();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind(), Tokenizer::Kind::BytePairEncoding);
  EXPECT_FALSE(t->addBos());
  // hello: h+e (rank 0), l+l (1), he+ll (2), hell+o (3).
  // " world": Ġ+w (4), o+r (5), Ġw+or (6), +l (7), +d (8).
  EXPECT_EQ(t->tokenize("hello world!"), ids({13, 18, 9}));
  // Contraction piece, digits merged by rank, newline byte image.
  EXPECT_EQ(t->tokenize("hello's 123\n"), ids({13, 21, 5, 25, 24, 26}));
  // "é" is two bytes whose images merge.
  EXPECT_EQ(t->tokenize("\xc3\xa9"), ids({29}));
  // Pieces without a token are dropped byte by byte, as llama.cpp does.
  EXPECT_EQ(t->tokenize("hex"), ids({10}));
  // "world" without the space: w, or, l, d.
  EXPECT_EQ(t->tokenize("world"), ids({6, 15, 3, 8}));
}

TEST(BpeTokenizer, SpecialTokens) {
  auto t = bpe();
  ASSERT_TRUE(t);
  // User-defined tokens are always split out of the text.
  EXPECT_EQ(t->tokenize("hello<tool>world"), ids({13, 30, 6, 15, 3, 8}));
  // Control tokens only with parseSpecial.
  EXPECT_EQ(t->tokenize("<|endoftext|>", false, true), ids({0}));
  EXPECT_EQ(t->tokenize("<|endoftext|>", false, false), ids({2, 8, 4, 2}));
  auto withBos = bpe("gpt-2", /*addBos=*/true);
  ASSERT_TRUE(withBos);
  EXPECT_EQ(withBos->tokenize("hello"), ids({0, 13}));
  EXPECT_EQ(withBos->tokenize("hello", /*addSpecial=*/false), ids({13}));
  EXPECT_TRUE(withBos->isEndOfGeneration(0));
}

TEST(BpeTokenizer, PreTokenizerSelection) {
  // Default splits "'" from "s"; llama3 ignores merges for whole-word hits.
  auto d = bpe("default");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->preTokenizer(), PreTokenizer::Default);
  EXPECT_EQ(d->tokenize("hello's"), ids({13, 19, 20}));
  auto l3 = bpe("llama-bpe");
  ASSERT_TRUE(l3);
  EXPECT_EQ(l3->preTokenizer(), PreTokenizer::Llama3);
  EXPECT_TRUE(l3->addBos()); // llama3 vocabularies add BOS by default
  EXPECT_EQ(l3->tokenize("hello's", false), ids({13, 21}));
  auto q = bpe("qwen2");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->tokenize("123"), ids({22, 23, 24})); // single digits
  std::string err;
  EXPECT_FALSE(Tokenizer::create(bpeMetadata("nonsense", false), err));
  EXPECT_NE(err.find("nonsense"), std::string::npos);
}

TEST(BpeTokenizer, Detokenize) {
  auto t = bpe();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->tokenToPiece(18), " world");
  EXPECT_EQ(t->tokenToPiece(26), "\n");
  EXPECT_EQ(t->tokenToPiece(29), "\xc3\xa9");
  EXPECT_EQ(t->tokenToPiece(0, /*special=*/false), "");
  EXPECT_EQ(t->tokenToPiece(0, /*special=*/true), "<|endoftext|>");
  for (const char *text : {"hello world!", "hello's 123\n", "\xc3\xa9"})
    EXPECT_EQ(t->detokenize(t->tokenize(text)), text) << text;
  // clean_up_tokenization_spaces removes the space before punctuation.
  EXPECT_EQ(t->detokenize(ids({13, 5, 9})), "hello!");
  auto q = bpe("qwen2"); // qwen2 keeps spaces as they are
  ASSERT_TRUE(q);
  EXPECT_EQ(q->detokenize(ids({13, 5, 9})), "hello !");
}

TEST(BpeTokenizer, MissingMergesIsAnError) {
  std::vector<KeyValue> kvs = bpeMetadata("gpt-2", false);
  kvs.erase(std::remove_if(kvs.begin(), kvs.end(),
                           [](const KeyValue &kv) {
                             return kv.key == "tokenizer.ggml.merges";
                           }),
            kvs.end());
  std::string err;
  EXPECT_FALSE(Tokenizer::create(kvs, err));
  EXPECT_NE(err.find("merges"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// SentencePiece vocabularies of the shared models (ids from llama.cpp).
//===----------------------------------------------------------------------===//

const char kUnicodeLine[] =
    "Hello world! 1234 numbers, UTF-8: caf\xc3\xa9 \xe2\x80\x93 na\xc3\xafve "
    "\xe2\x9c\x93";

TEST(SpmTokenizer, Stories260K) {
  std::string skip;
  std::vector<KeyValue> md =
      loadMetadata("stories260K/stories260K-f32.gguf", skip);
  if (md.empty())
    GTEST_SKIP() << skip;
  std::string err;
  auto t = Tokenizer::create(md, err);
  ASSERT_TRUE(t) << err;
  EXPECT_EQ(t->kind(), Tokenizer::Kind::SentencePiece);
  EXPECT_EQ(t->vocabSize(), 512);
  EXPECT_EQ(t->bos(), 1);
  EXPECT_EQ(t->eos(), 2);
  EXPECT_TRUE(t->addBos());

  EXPECT_EQ(t->tokenize("Once upon a time, there was a little girl named "
                        "Lily."),
            ids({1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421,
                 395, 317, 426}));
  EXPECT_EQ(t->tokenize(kUnicodeLine),
            ids({1,   346, 306, 414, 263, 304, 341, 443, 410, 475, 479,
                 472, 484, 297, 425, 423, 430, 285, 419, 432, 410, 471,
                 434, 453, 464, 487, 467, 280, 412, 431, 485, 410, 476,
                 297, 412, 198, 178, 360, 410, 229, 159, 150}));
  EXPECT_EQ(t->tokenize("  leading spaces and\nnewlines\ttabs"),
            ids({1,  410, 410, 278, 411, 380, 299, 262, 427, 412, 331, 419, 269,
                 13, 416, 411, 424, 421, 271, 406, 12,  413, 412, 430, 419}));

  // Round trips: without BOS the prepended space is removed again.
  for (const char *text :
       {"Once upon a time, there was a little girl named Lily.",
        static_cast<const char *>(kUnicodeLine),
        "  leading spaces and\nnewlines\ttabs"}) {
    std::vector<TokenId> toks = t->tokenize(text, /*addSpecial=*/false);
    EXPECT_EQ(t->detokenize(toks), text);
  }
  // llama.cpp keeps the space when it removes a BOS (remove_special).
  EXPECT_EQ(t->detokenize(t->tokenize("Once upon"), /*removeSpecial=*/true),
            " Once upon");
  EXPECT_EQ(t->tokenToPiece(403), " Once");
  EXPECT_EQ(t->tokenToPiece(13), "\n"); // <0x0A>
  EXPECT_EQ(t->tokenToPiece(1, /*special=*/false), "");
  EXPECT_EQ(t->tokenToPiece(1, /*special=*/true), "<s>");
  EXPECT_TRUE(t->isEndOfGeneration(2));
  EXPECT_FALSE(t->isEndOfGeneration(1));
}

TEST(SpmTokenizer, Docs256) {
  std::string skip;
  std::vector<KeyValue> md = loadMetadata("docs256/model-f32.gguf", skip);
  if (md.empty())
    GTEST_SKIP() << skip;
  std::string err;
  auto t = Tokenizer::create(md, err);
  ASSERT_TRUE(t) << err;
  EXPECT_EQ(t->vocabSize(), 4096);
  EXPECT_EQ(
      t->tokenize("The kernel schedules tasks. In the beginning 2024 "
                  "God  created the heaven."),
      ids({1,    347,  587,  1955, 2107, 2631, 3954, 577, 264,  3907, 3932,
           3974, 3959, 3974, 3984, 902,  3932, 1863, 264, 3157, 3954}));
  EXPECT_EQ(
      t->tokenize(kUnicodeLine),
      ids({1,    1513, 304, 3936, 2218, 4020, 3932, 3967, 3974, 3985, 3984,
           2879, 3956, 513, 3962, 3986, 3950, 3990, 3961, 1840, 3948, 4046,
           3932, 4040, 300, 3935, 4093, 340,  3932, 229,  159,  150}));
  std::vector<TokenId> toks = t->tokenize(kUnicodeLine, false);
  EXPECT_EQ(t->detokenize(toks), kUnicodeLine);
  EXPECT_EQ(t->tokenize(""), ids({1}));
  EXPECT_TRUE(t->tokenize("", false).empty());
}

} // namespace

namespace {

/// Writes the test's byte-level BPE vocabulary, once per pre-tokenizer, as
/// GGUF files into $LOWBIT_TOKENIZER_SEED_DIR (scripts/run-fuzzers.sh uses
/// them as seeds and vocabularies of the tokenizer fuzzers); elsewhere into a
/// scratch directory, and checks that each loads back.
TEST(TokenizerSeeds, WriteSeedCorpus) {
  const char *env = std::getenv("LOWBIT_TOKENIZER_SEED_DIR");
  std::string dir = env ? env
                        : ::testing::TempDir() + "lowbit-tokenizer-seeds-" +
                              std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0755);
  for (const char *pre : {"gpt-2", "llama-bpe", "qwen2"}) {
    gguf::Writer w;
    for (const KeyValue &kv : bpeMetadata(pre, /*addBos=*/true))
      w.set(kv.key, kv.value);
    gguf::Error err;
    const std::string path = dir + "/bpe-" + pre + ".gguf";
    ASSERT_TRUE(w.write(path, err)) << err.message();
    auto reader = gguf::Reader::open(path, err);
    ASSERT_TRUE(reader) << err.message();
    std::string why;
    EXPECT_TRUE(Tokenizer::create(reader->metadata(), why)) << why;
    if (!env)
      std::remove(path.c_str());
  }
  if (!env)
    ::rmdir(dir.c_str());
}

} // namespace
