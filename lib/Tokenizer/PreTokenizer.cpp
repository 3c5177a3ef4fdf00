//===- PreTokenizer.cpp - Regex-equivalent word splitting -----------------===//
//
// Hand-written equivalents of the pre-tokenizer regexes llama.cpp applies
// before BPE. Like llama.cpp, each regex of a list refines the pieces the
// previous one produced: its matches and the text between them both become
// pieces. Positions are code point indices.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Tokenizer/Tokenizer.h"
#include "lowbit/Tokenizer/Unicode.h"

namespace lowbit {

namespace {
using namespace unicode;

constexpr uint32_t kOutside = 0xffffffffu;

/// One piece [begin, end) of the code points being split, with the
/// out-of-piece conventions of llama.cpp's custom splitters: reading outside
/// the piece gives kOutside and no flags.
struct Piece {
  const std::vector<uint32_t> &cps;
  size_t begin, end;
  std::vector<size_t> &out; // lengths of the new pieces
  size_t emitted;           // end of the last emitted piece

  Piece(const std::vector<uint32_t> &cps, size_t begin, size_t end,
        std::vector<size_t> &out)
      : cps(cps), begin(begin), end(end), out(out), emitted(begin) {}

  uint32_t cp(size_t i) const {
    return i >= begin && i < end ? cps[i] : kOutside;
  }
  uint8_t fl(size_t i) const {
    return i >= begin && i < end ? flags(cps[i]) : 0;
  }
  /// Ends the current piece at `to` (nothing if empty).
  void emit(size_t to) {
    if (to > emitted)
      out.push_back(to - emitted);
    emitted = to;
  }
};

template <typename SplitFn>
std::vector<size_t> refine(const std::vector<uint32_t> &cps,
                           const std::vector<size_t> &pieces, SplitFn split) {
  std::vector<size_t> out;
  out.reserve(pieces.size());
  size_t start = 0;
  for (size_t len : pieces) {
    Piece p(cps, start, start + len, out);
    split(p);
    p.emit(p.end);
    start += len;
  }
  return out;
}

inline uint32_t asciiLower(uint32_t c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/// Length of a contraction ('s 't 'm 'd 're 've 'll) at `pos`, or 0.
size_t contraction(const Piece &p, size_t pos, bool ignoreCase) {
  if (p.cp(pos) != '\'' || pos + 1 >= p.end)
    return 0;
  uint32_t c1 = p.cp(pos + 1);
  if (ignoreCase)
    c1 = asciiLower(c1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
    return 2;
  if (pos + 2 >= p.end)
    return 0;
  uint32_t c2 = p.cp(pos + 2);
  if (ignoreCase)
    c2 = asciiLower(c2);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') ||
      (c1 == 'l' && c2 == 'l'))
    return 3;
  return 0;
}

constexpr uint8_t kWordish = Whitespace | Letter | Number;

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void splitGpt2(Piece &p) {
  size_t pos = p.begin;
  while (pos < p.end) {
    const uint32_t c = p.cp(pos);
    if (size_t n = contraction(p, pos, /*ignoreCase=*/false)) {
      pos += n;
      p.emit(pos);
      continue;
    }
    // The optional leading space: classify by the character after it.
    const uint8_t f = c == ' ' ? p.fl(pos + 1) : p.fl(pos);
    if (f & (Letter | Number)) {
      const uint8_t cls = (f & Letter) ? Letter : Number;
      pos += c == ' ';
      while (p.fl(pos) & cls)
        ++pos;
      p.emit(pos);
      continue;
    }
    if (!(f & kWordish) && f) {
      pos += c == ' ';
      while (!(p.fl(pos) & kWordish) && p.fl(pos))
        ++pos;
      p.emit(pos);
      continue;
    }
    size_t ws = 0;
    while (p.fl(pos + ws) & Whitespace)
      ++ws;
    if (ws > 1 && p.cp(pos + ws) != kOutside) {
      // \s+(?!\S): leave the last space to prefix the next word.
      pos += ws - 1;
    } else if (ws > 0) {
      pos += ws;
    } else {
      ++pos;
    }
    p.emit(pos);
  }
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
void splitLlama3(Piece &p, size_t maxDigits) {
  size_t pos = p.begin;
  while (pos < p.end) {
    const uint32_t c = p.cp(pos);
    const uint8_t f = p.fl(pos);
    if (size_t n = contraction(p, pos, /*ignoreCase=*/true)) {
      pos += n;
      p.emit(pos);
      continue;
    }
    if (!(c == '\r' || c == '\n' || (f & Number)) &&
        ((f & Letter) || (p.fl(pos + 1) & Letter))) {
      ++pos; // a letter, or the one non-letter allowed in front
      while (p.fl(pos) & Letter)
        ++pos;
      p.emit(pos);
      continue;
    }
    if (f & Number) {
      size_t groupStart = pos;
      while (p.fl(pos) & Number) {
        if (++pos - groupStart >= maxDigits) {
          p.emit(pos);
          groupStart = pos;
        }
      }
      p.emit(pos);
      continue;
    }
    const uint8_t f2 = c == ' ' ? p.fl(pos + 1) : f;
    if (!(f2 & kWordish) && f) {
      pos += c == ' ';
      while (!(p.fl(pos) & kWordish) && p.fl(pos))
        ++pos;
      while (p.cp(pos) == '\r' || p.cp(pos) == '\n')
        ++pos;
      p.emit(pos);
      continue;
    }
    size_t ws = 0, afterLastNewline = 0;
    while (p.fl(pos + ws) & Whitespace) {
      uint32_t w = p.cp(pos + ws);
      if (w == '\r' || w == '\n')
        afterLastNewline = pos + ws + 1;
      ++ws;
    }
    if (afterLastNewline > 0) {
      pos = afterLastNewline; // \s*[\r\n]+
    } else if (ws > 1 && p.cp(pos + ws) != kOutside) {
      pos += ws - 1; // \s+(?!\S)
    } else if (ws > 0) {
      pos += ws;
    } else {
      ++pos;
    }
    p.emit(pos);
  }
}

/// Splits a piece into maximal runs of characters inside / outside a class:
/// the pieces a `[class]+` regex produces with the text between matches.
template <typename InClass> void splitRuns(Piece &p, InClass inClass) {
  if (p.begin == p.end)
    return;
  bool cur = inClass(p.cps[p.begin]);
  for (size_t i = p.begin + 1; i < p.end; ++i) {
    bool in = inClass(p.cps[i]);
    if (in != cur) {
      p.emit(i);
      cur = in;
    }
  }
}

/// [\p{P}\$\+<=>\^~\|]: punctuation and the symbols llama.cpp's default
/// pre-tokenizer groups with it.
bool isDefaultSymbol(uint32_t c) {
  uint8_t f = flags(c);
  return ((f & Punctuation) && !(f & Whitespace)) || c == '$' || c == '+' ||
         c == '<' || c == '=' || c == '>' || c == '^' || c == '~' || c == '|';
}

// [0-9][0-9][0-9]: leftmost non-overlapping triples of ASCII digits.
void splitDigitTriples(Piece &p) {
  auto digit = [&](size_t i) {
    uint32_t c = p.cp(i);
    return c >= '0' && c <= '9';
  };
  size_t pos = p.begin;
  while (pos < p.end) {
    if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
      p.emit(pos);
      pos += 3;
      p.emit(pos);
    } else {
      ++pos;
    }
  }
}

} // namespace

std::vector<std::string> preTokenize(std::string_view text, PreTokenizer pre) {
  const std::vector<uint32_t> cps = decodeUtf8(text);
  std::vector<size_t> pieces;
  if (!cps.empty())
    pieces.push_back(cps.size());

  switch (pre) {
  case PreTokenizer::GPT2:
    pieces = refine(cps, pieces, splitGpt2);
    break;
  case PreTokenizer::Llama3:
    pieces = refine(cps, pieces, [](Piece &p) { splitLlama3(p, 3); });
    break;
  case PreTokenizer::Qwen2:
    pieces = refine(cps, pieces, [](Piece &p) { splitLlama3(p, 1); });
    break;
  case PreTokenizer::Falcon:
    // [\p{P}\$\+<=>\^~\|`]+, GPT-2, [0-9][0-9][0-9]
    pieces = refine(cps, pieces, [](Piece &p) {
      splitRuns(p, [](uint32_t c) { return isDefaultSymbol(c) || c == '`'; });
    });
    pieces = refine(cps, pieces, splitGpt2);
    pieces = refine(cps, pieces, splitDigitTriples);
    break;
  case PreTokenizer::StarCoder:
    // \p{N}: every number character a piece of its own; then GPT-2.
    pieces = refine(cps, pieces, [](Piece &p) {
      for (size_t i = p.begin; i < p.end; ++i)
        if ((flags(p.cps[i]) & Number) && !(flags(p.cps[i]) & Whitespace)) {
          p.emit(i);
          p.emit(i + 1);
        }
    });
    pieces = refine(cps, pieces, splitGpt2);
    break;
  case PreTokenizer::Default:
    // [\p{P}\$\+<=>\^~\|]+
    pieces =
        refine(cps, pieces, [](Piece &p) { splitRuns(p, isDefaultSymbol); });
    pieces = refine(cps, pieces, splitGpt2);
    // \p{N}+
    pieces = refine(cps, pieces, [](Piece &p) {
      splitRuns(p, [](uint32_t c) {
        uint8_t f = flags(c);
        return (f & Number) && !(f & Whitespace);
      });
    });
    pieces = refine(cps, pieces, splitDigitTriples);
    break;
  }

  std::vector<std::string> words;
  words.reserve(pieces.size());
  size_t start = 0;
  for (size_t len : pieces) {
    std::string w;
    for (size_t i = start; i < start + len; ++i)
      appendUtf8(cps[i], w);
    words.push_back(std::move(w));
    start += len;
  }
  return words;
}

} // namespace lowbit
