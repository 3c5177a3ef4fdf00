//===- Sha256.cpp - SHA-256 content hashes --------------------------------===//
//
// FIPS 180-4 SHA-256: the portable compression function, and one using the
// x86 SHA extensions (sha256rnds2 does two rounds on the state held as ABEF /
// CDGH halves; sha256msg1/msg2 extend the message schedule four words at a
// time).
//
//===----------------------------------------------------------------------===//

#include "lowbit/Support/Sha256.h"

#include "lowbit/Support/MappedFile.h"

#include <atomic>
#include <cstring>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define LOWBIT_HAVE_SHA_NI 1
#endif

namespace lowbit {

namespace {

// The first 32 bits of the fractional parts of the cube roots of the first
// 64 primes (FIPS 180-4, 4.2.2).
alignas(16) constexpr uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

std::atomic<bool> portableOnly{false};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline uint32_t loadBigEndian(const uint8_t *p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) |
         (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

void compressPortable(uint32_t state[8], const uint8_t *data, size_t count) {
  uint32_t w[64];
  for (size_t b = 0; b < count; ++b, data += 64) {
    for (int t = 0; t < 16; ++t)
      w[t] = loadBigEndian(data + 4 * t);
    for (int t = 16; t < 64; ++t) {
      const uint32_t s0 =
          rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      const uint32_t s1 =
          rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = state[0], b2 = state[1], c = state[2], d = state[3],
             e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; ++t) {
      const uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const uint32_t ch = (e & f) ^ (~e & g);
      const uint32_t t1 = h + s1 + ch + kRoundConstants[t] + w[t];
      const uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const uint32_t maj = (a & b2) ^ (a & c) ^ (b2 & c);
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b2;
      b2 = a;
      a = t1 + s0 + maj;
    }
    state[0] += a;
    state[1] += b2;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

#ifdef LOWBIT_HAVE_SHA_NI
__attribute__((target("sha,sse4.1,ssse3"))) void
compressShaNi(uint32_t state[8], const uint8_t *data, size_t count) {
  // Big-endian words: swap the bytes of each 32-bit lane.
  const __m128i byteSwap =
      _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i *>(state));
  __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i *>(state + 4));
  __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
  __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
  __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
  __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
  for (size_t b = 0; b < count; ++b, data += 64) {
    const __m128i abefStart = abef, cdghStart = cdgh;
    __m128i m[4];
    for (int j = 0; j < 4; ++j)
      m[j] = _mm_shuffle_epi8(
          _mm_loadu_si128(reinterpret_cast<const __m128i *>(data + 16 * j)),
          byteSwap);
    for (int j = 0; j < 16; ++j) {
      __m128i &cur = m[j % 4];
      if (j >= 4) {
        // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four at once:
        // cur holds words 4j-16.., m[(j+1)%4] 4j-12.., m[(j+2)%4] 4j-8..,
        // m[(j+3)%4] 4j-4...
        const __m128i prev = m[(j + 3) % 4];
        __m128i x = _mm_sha256msg1_epu32(cur, m[(j + 1) % 4]);
        x = _mm_add_epi32(x, _mm_alignr_epi8(prev, m[(j + 2) % 4], 4));
        cur = _mm_sha256msg2_epu32(x, prev);
      }
      __m128i k =
          _mm_add_epi32(cur, _mm_load_si128(reinterpret_cast<const __m128i *>(
                                 kRoundConstants + 4 * j)));
      // Two rounds each; after two rounds the old ABEF is the new CDGH, so
      // the registers swap roles and are back in place after four.
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, k);
      k = _mm_shuffle_epi32(k, 0x0E);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, k);
    }
    abef = _mm_add_epi32(abef, abefStart);
    cdgh = _mm_add_epi32(cdgh, cdghStart);
  }
  __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  dcba = _mm_blend_epi16(feba, dchg, 0xF0);
  hgfe = _mm_alignr_epi8(dchg, feba, 8);
  _mm_storeu_si128(reinterpret_cast<__m128i *>(state), dcba);
  _mm_storeu_si128(reinterpret_cast<__m128i *>(state + 4), hgfe);
}

bool cpuHasShaNi() {
  static const bool has = __builtin_cpu_supports("sha") &&
                          __builtin_cpu_supports("sse4.1") &&
                          __builtin_cpu_supports("ssse3");
  return has;
}
#endif

} // namespace

Sha256::Sha256()
    : state_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19} {}

void Sha256::setPortableOnly(bool portable) { portableOnly = portable; }

void Sha256::blocks(const uint8_t *data, size_t count) {
#ifdef LOWBIT_HAVE_SHA_NI
  if (!portableOnly && cpuHasShaNi()) {
    compressShaNi(state_, data, count);
    return;
  }
#endif
  compressPortable(state_, data, count);
}

void Sha256::update(const void *data, size_t size) {
  const uint8_t *p = static_cast<const uint8_t *>(data);
  length_ += size;
  if (buffered_) {
    const size_t take = std::min(size, 64 - buffered_);
    std::memcpy(buffer_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    size -= take;
    if (buffered_ < 64)
      return;
    blocks(buffer_, 1);
    buffered_ = 0;
  }
  if (size >= 64) {
    blocks(p, size / 64);
    p += size / 64 * 64;
    size %= 64;
  }
  std::memcpy(buffer_, p, size);
  buffered_ = size;
}

std::array<uint8_t, 32> Sha256::finish() {
  // Padding: 0x80, zeros, then the length in bits as a big-endian u64.
  const uint64_t bits = length_ * 8;
  uint8_t pad[72] = {0x80};
  const size_t zeros = (buffered_ < 56 ? 56 : 120) - buffered_;
  for (int i = 0; i < 8; ++i)
    pad[zeros + i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  update(pad, zeros + 8);
  std::array<uint8_t, 32> digest;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j)
      digest[4 * i + j] = static_cast<uint8_t>(state_[i] >> (24 - 8 * j));
  return digest;
}

std::string Sha256::finishHex() {
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t byte : finish()) {
    hex += kHex[byte >> 4];
    hex += kHex[byte & 15];
  }
  return hex;
}

std::string sha256Hex(const void *data, size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.finishHex();
}

bool sha256File(const std::string &path, std::string &hex, std::string &err) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path, err);
  if (!file)
    return false;
  hex = sha256Hex(file->data(), file->size());
  return true;
}

} // namespace lowbit
