//===- Unicode.h - Code point classes and UTF-8 helpers ---------*- C++ -*-===//
//
// The small part of Unicode the pre-tokenizers need: the general category of a
// code point collapsed to the classes regexes use (\p{L}, \p{N}, ...), the
// White_Space property, UTF-8 coding with llama.cpp's error handling, and
// GPT-2's byte <-> printable code point mapping. The category table is
// generated from the Unicode Character Database by
// scripts/gen-unicode-tables.py.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_TOKENIZER_UNICODE_H
#define LOWBIT_TOKENIZER_UNICODE_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::unicode {

/// Class bits of a code point. Exactly one of the category bits is set for
/// every code point below 0x110000 (unassigned ones are Cn, i.e. Control);
/// Whitespace is the White_Space property and comes on top.
enum CodepointFlags : uint8_t {
  Number = 0x01,      // \p{N}
  Letter = 0x02,      // \p{L}
  Separator = 0x04,   // \p{Z}
  Mark = 0x08,        // \p{M}
  Punctuation = 0x10, // \p{P}
  Symbol = 0x20,      // \p{S}
  Control = 0x40,     // \p{C}
  Whitespace = 0x80,  // \s
};

/// Flags of `cp`; 0 for values at or above 0x110000.
uint8_t flags(uint32_t cp);

/// Length of the UTF-8 sequence a lead byte announces (1 for stray
/// continuation bytes), as llama.cpp's unicode_len_utf8.
inline size_t utf8SequenceLength(char lead) {
  static const uint8_t lengths[16] = {1, 1, 1, 1, 1, 1, 1, 1,
                                      1, 1, 1, 1, 2, 2, 3, 4};
  return lengths[static_cast<uint8_t>(lead) >> 4];
}

/// Decodes UTF-8; each byte that does not start a valid sequence becomes
/// U+FFFD and decoding resumes at the next byte.
std::vector<uint32_t> decodeUtf8(std::string_view text);
void appendUtf8(uint32_t cp, std::string &out);

/// GPT-2's reversible mapping of the 256 byte values to printable code points,
/// as UTF-8 strings.
const std::string &byteToUnicode(uint8_t byte);
/// Inverse of byteToUnicode for one code point; false if `cp` is not an image.
bool unicodeToByte(uint32_t cp, uint8_t &byte);

} // namespace lowbit::unicode

#endif // LOWBIT_TOKENIZER_UNICODE_H
