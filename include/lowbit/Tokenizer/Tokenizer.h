//===- Tokenizer.h - llama.cpp-compatible tokenizers ------------*- C++ -*-===//
//
// Tokenizers built from GGUF metadata that give the same token ids as
// llama.cpp (src/llama-vocab.cpp) for the vocabularies lowbit supports:
//
//  - `tokenizer.ggml.model = llama`: SentencePiece-style. Spaces become U+2581,
//    one U+2581 is prepended (tokenizer.ggml.add_space_prefix, default true),
//    adjacent pieces merge greedily by score, characters without a piece fall
//    back to <0xXX> byte tokens.
//  - `tokenizer.ggml.model = gpt2`: byte-level BPE with
//    `tokenizer.ggml.merges`, after the pre-tokenizer split selected by
//    `tokenizer.ggml.pre` (default, gpt2, llama-bpe/llama3, qwen2).
//
// Special tokens (control, user-defined) are split out of the text first, as
// llama.cpp does. No MLIR/LLVM dependency.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_TOKENIZER_TOKENIZER_H
#define LOWBIT_TOKENIZER_TOKENIZER_H

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lowbit {
namespace gguf {
struct KeyValue;
} // namespace gguf

using TokenId = int32_t;
constexpr TokenId kNoToken = -1;

/// Pre-tokenizer regex families (llama.cpp's LLAMA_VOCAB_PRE_TYPE_*).
enum class PreTokenizer {
  Default,   // llama.cpp's fallback list of four regexes
  GPT2,      // 's|'t|... | ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  Llama3,    // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|...
  Qwen2,     // as Llama3 with \p{N} (single digits)
  Falcon,    // [\p{P}$+<=>^~|`]+, then GPT2, then [0-9][0-9][0-9]
  StarCoder, // \p{N} (each digit alone), then GPT2
  DeepSeekLLM, // [\r\n], \s?[letters]+, \s?[punct]+, \s+$, [CJK]+, \p{N}+
};

/// Splits UTF-8 text into pre-tokenizer words (still UTF-8, not yet mapped
/// through GPT-2's byte encoding). Invalid UTF-8 bytes become U+FFFD.
std::vector<std::string> preTokenize(std::string_view text, PreTokenizer pre);

class Tokenizer {
public:
  enum class Kind { SentencePiece, BytePairEncoding };

  /// Token attributes, from `tokenizer.ggml.token_type` (1 normal, 2 unknown,
  /// 3 control, 4 user-defined, 5 unused, 6 byte).
  enum Attr : uint8_t {
    Normal = 1,
    Unknown = 2,
    Control = 4,
    UserDefined = 8,
    Unused = 16,
    Byte = 32,
  };

  /// Builds a tokenizer from a model's metadata; null with `err` set when the
  /// vocabulary is missing, malformed or of an unsupported kind.
  static std::unique_ptr<Tokenizer>
  create(const std::vector<gguf::KeyValue> &metadata, std::string &err);
  Tokenizer(const Tokenizer &) = delete;
  Tokenizer &operator=(const Tokenizer &) = delete;

  /// Token ids for `text`. `addSpecial` adds BOS/EOS as the vocabulary asks
  /// (add_bos_token / add_eos_token); `parseSpecial` also recognises control
  /// tokens written in the text (user-defined tokens always are).
  std::vector<TokenId> tokenize(std::string_view text, bool addSpecial = true,
                                bool parseSpecial = false) const;

  /// The text of one token, as llama_token_to_piece: U+2581 -> space, byte
  /// tokens -> their byte, GPT-2 byte encoding undone. Control/unknown tokens
  /// give their text when `special`, else nothing. `lstrip` drops up to that
  /// many leading spaces.
  std::string tokenToPiece(TokenId id, bool special = true,
                           int lstrip = 0) const;

  /// The text of a sequence, as llama_detokenize: the space the tokenizer
  /// prepended is removed, `removeSpecial` drops a leading BOS/trailing EOS
  /// the vocabulary adds, BPE vocabularies clean up spaces before punctuation.
  std::string detokenize(const std::vector<TokenId> &tokens,
                         bool removeSpecial = false,
                         bool unparseSpecial = false) const;

  Kind kind() const { return kind_; }
  PreTokenizer preTokenizer() const { return pre_; }
  int32_t vocabSize() const { return static_cast<int32_t>(text_.size()); }
  const std::string &tokenText(TokenId id) const { return text_.at(id); }
  float tokenScore(TokenId id) const { return score_.at(id); }
  uint8_t tokenAttr(TokenId id) const { return attr_.at(id); }
  /// Exact vocabulary lookup; kNoToken when absent.
  TokenId find(std::string_view text) const;

  TokenId bos() const { return bos_; }
  TokenId eos() const { return eos_; }
  TokenId eot() const { return eot_; }
  TokenId unk() const { return unk_; }
  bool addBos() const { return addBos_; }
  bool addEos() const { return addEos_; }
  bool addSpacePrefix() const { return addSpacePrefix_; }
  /// End of generation: EOS, EOT or another end-of-turn token.
  bool isEndOfGeneration(TokenId id) const;

private:
  Tokenizer() = default;
  void tokenizeSentencePiece(const std::string &text,
                             std::vector<TokenId> &out) const;
  void tokenizeBytePair(const std::string &text,
                        std::vector<TokenId> &out) const;
  TokenId byteToken(uint8_t byte) const;
  int bpeRank(const std::string &left, const std::string &right) const;

  Kind kind_ = Kind::SentencePiece;
  PreTokenizer pre_ = PreTokenizer::Default;
  std::vector<std::string> text_;
  std::vector<float> score_;
  std::vector<uint8_t> attr_;
  std::unordered_map<std::string_view, TokenId> ids_; // views into text_
  // Merge rank keyed by "left right" (BPE pieces never contain a space).
  std::unordered_map<std::string, int> ranks_;
  // Control/user-defined/unknown tokens, longest text first.
  std::vector<TokenId> specials_;
  std::vector<TokenId> endOfGeneration_;
  TokenId bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, unk_ = kNoToken;
  bool addBos_ = false, addEos_ = false, addSpacePrefix_ = false;
  bool ignoreMerges_ = false, cleanSpaces_ = false;
};

} // namespace lowbit

#endif // LOWBIT_TOKENIZER_TOKENIZER_H
