//===- Unicode.cpp - Code point classes and UTF-8 helpers -----------------===//

#include "lowbit/Tokenizer/Unicode.h"

#include <algorithm>
#include <array>

namespace lowbit::unicode {

namespace {
const uint32_t kRanges[] = {
#include "UnicodeTables.inc"
};
} // namespace

uint8_t flags(uint32_t cp) {
  if (cp >= 0x110000)
    return 0;
  // Last entry whose start is <= cp.
  const uint32_t key = (cp << 8) | 0xff;
  const uint32_t *it =
      std::upper_bound(std::begin(kRanges), std::end(kRanges), key);
  return static_cast<uint8_t>(it[-1] & 0xff);
}

std::vector<uint32_t> decodeUtf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0, n = s.size();
  auto cont = [&](size_t k) {
    return k < n && (static_cast<uint8_t>(s[k]) & 0xc0) == 0x80;
  };
  while (i < n) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      out.push_back(c);
      i += 1;
    } else if ((c & 0xe0) == 0xc0 && cont(i + 1)) {
      out.push_back(((c & 0x1fu) << 6) | (s[i + 1] & 0x3f));
      i += 2;
    } else if ((c & 0xf0) == 0xe0 && cont(i + 1) && cont(i + 2)) {
      out.push_back(((c & 0x0fu) << 12) | ((s[i + 1] & 0x3fu) << 6) |
                    (s[i + 2] & 0x3f));
      i += 3;
    } else if ((c & 0xf8) == 0xf0 && cont(i + 1) && cont(i + 2) &&
               cont(i + 3)) {
      out.push_back(((c & 0x07u) << 18) | ((s[i + 1] & 0x3fu) << 12) |
                    ((s[i + 2] & 0x3fu) << 6) | (s[i + 3] & 0x3f));
      i += 4;
    } else {
      // llama.cpp replaces the offending byte only and resynchronises.
      out.push_back(0xfffd);
      i += 1;
    }
  }
  return out;
}

void appendUtf8(uint32_t cp, std::string &out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | ((cp >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

namespace {
// Printable Latin-1 bytes map to themselves; the other 68 bytes take the
// code points from 256 upwards in byte order.
struct ByteMap {
  std::array<std::string, 256> toUnicode;
  std::array<uint32_t, 256> codepoint{};
  ByteMap() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) ||
                       (b >= 0xae && b <= 0xff);
      codepoint[b] = printable ? static_cast<uint32_t>(b) : next++;
      appendUtf8(codepoint[b], toUnicode[b]);
    }
  }
};
const ByteMap &byteMap() {
  static const ByteMap map;
  return map;
}
} // namespace

const std::string &byteToUnicode(uint8_t byte) {
  return byteMap().toUnicode[byte];
}

bool unicodeToByte(uint32_t cp, uint8_t &byte) {
  // The images are 0x21..0xff (minus gaps) and 0x100..0x143.
  if (cp > 0x143)
    return false;
  const ByteMap &m = byteMap();
  if (cp < 256) {
    if (m.codepoint[cp] != cp)
      return false;
    byte = static_cast<uint8_t>(cp);
    return true;
  }
  for (int b = 0; b < 256; ++b) {
    if (m.codepoint[b] == cp) {
      byte = static_cast<uint8_t>(b);
      return true;
    }
  }
  return false;
}

} // namespace lowbit::unicode
