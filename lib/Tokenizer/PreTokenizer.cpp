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

/// Splits a piece at the leftmost, longest matches of a regex that cannot
/// match empty text: `matchEnd(p, i)` is the end of the match starting at i,
/// or i when none does (the pieces std::regex_iterator gives llama.cpp).
template <typename MatchEnd> void splitMatches(Piece &p, MatchEnd matchEnd) {
  size_t pos = p.begin;
  while (pos < p.end) {
    size_t end = matchEnd(p, pos);
    if (end > pos) {
      p.emit(pos);
      p.emit(end);
      pos = end;
    } else {
      ++pos;
    }
  }
}

/// \s of std::wregex in the "C" locale llama.cpp runs in: ASCII whitespace.
bool isAsciiSpace(uint32_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

/// `\s?[class]+`, with the class given as sorted inclusive ranges.
struct RangeClass {
  const uint32_t (*ranges)[2];
  size_t count;
  bool contains(uint32_t c) const {
    for (size_t i = 0; i < count; ++i)
      if (c >= ranges[i][0] && c <= ranges[i][1])
        return true;
    return false;
  }
  size_t matchEnd(const Piece &p, size_t i) const {
    size_t j = i;
    if (isAsciiSpace(p.cp(j)) && contains(p.cp(j + 1)))
      ++j;
    if (!contains(p.cp(j)))
      return i;
    while (contains(p.cp(j)))
      ++j;
    return j;
  }
};

// deepseek-llm's letters: [A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-Ֆ
// Ⴀ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇ
// ℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ
// 𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃], as code point ranges.
constexpr uint32_t kDeepSeekLetters[][2] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},
    {0xC0, 0xD6},       {0xD8, 0xF6},       {0xF8, 0x1BA},
    {0x1BC, 0x1BF},     {0x1C4, 0x293},     {0x295, 0x2AF},
    {0x370, 0x373},     {0x376, 0x377},     {0x37B, 0x37D},
    {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},
    {0x3F7, 0x481},     {0x48A, 0x52F},     {0x531, 0x556},
    {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},
    {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},
    {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},
    {0x1FB6, 0x1FBC},   {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},
    {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},
    {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},
    {0x2126, 0x2126},   {0x2128, 0x2128},   {0x212A, 0x212D},
    {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},
    {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},
    {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
    {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2},
    {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943}};
// [!-/:-~！-／：-～‘-‟　-。]
constexpr uint32_t kDeepSeekPunctuation[][2] = {
    {0x21, 0x2F},     {0x3A, 0x7E},     {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
    {0x2018, 0x201F}, {0x3000, 0x3002}};
// [一-龥ࠀ-一가-퟿]
constexpr uint32_t kDeepSeekCJK[][2] = {
    {0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};

template <size_t N>
constexpr RangeClass rangeClass(const uint32_t (&ranges)[N][2]) {
  return RangeClass{ranges, N};
}

void splitNumberRuns(Piece &p) {
  splitRuns(p, [](uint32_t c) {
    uint8_t f = flags(c);
    return (f & Number) && !(f & Whitespace);
  });
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
  case PreTokenizer::DeepSeekLLM: {
    // [\r\n], \s?[letters]+, \s?[punctuation]+, \s+$, [CJK]+, \p{N}+
    pieces = refine(cps, pieces, [](Piece &p) {
      splitMatches(p, [](const Piece &q, size_t i) {
        return q.cp(i) == '\r' || q.cp(i) == '\n' ? i + 1 : i;
      });
    });
    for (RangeClass cls : {rangeClass(kDeepSeekLetters),
                           rangeClass(kDeepSeekPunctuation)})
      pieces = refine(cps, pieces, [&](Piece &p) {
        splitMatches(
            p, [&](const Piece &q, size_t i) { return cls.matchEnd(q, i); });
      });
    pieces = refine(cps, pieces, [](Piece &p) {
      size_t trailing = p.end;
      while (trailing > p.begin && isAsciiSpace(p.cps[trailing - 1]))
        --trailing;
      p.emit(trailing);
    });
    pieces = refine(cps, pieces, [](Piece &p) {
      const RangeClass cjk = rangeClass(kDeepSeekCJK);
      splitRuns(p, [&](uint32_t c) { return cjk.contains(c); });
    });
    pieces = refine(cps, pieces, splitNumberRuns);
    break;
  }
  case PreTokenizer::Default:
    // [\p{P}\$\+<=>\^~\|]+
    pieces =
        refine(cps, pieces, [](Piece &p) { splitRuns(p, isDefaultSymbol); });
    pieces = refine(cps, pieces, splitGpt2);
    // \p{N}+
    pieces = refine(cps, pieces, splitNumberRuns);
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
