//===- RowCodecs.cpp - Public row API: dispatch, checks, threads ----------===//
//
// Maps each Format to its codec, validates rows before encoding (so codecs
// can assume finite input and whole blocks) and splits matrices over
// threads. Rows are independent, so the output does not depend on how they
// are split.
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "lowbit/Formats/Formats.h"
#include "lowbit/Support/Parallel.h"

#include <algorithm>
#include <cassert>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

namespace lowbit::formats {
namespace {

using detail::DecodeFn;
using detail::EncodeFn;

struct Codec {
  DecodeFn decode = nullptr;
  EncodeFn encode = nullptr;
  bool usesImportance = false;
};

#define LOWBIT_CODEC(lower, importance)                                        \
  Codec { &detail::decode_##lower, &detail::encode_##lower, importance }

Codec codecFor(Format format) {
  switch (format) {
  case Format::F32:
    return LOWBIT_CODEC(f32, false);
  case Format::F16:
    return LOWBIT_CODEC(f16, false);
  case Format::BF16:
    return LOWBIT_CODEC(bf16, false);
  case Format::Q4_0:
    return LOWBIT_CODEC(q4_0, true);
  case Format::Q4_1:
    return LOWBIT_CODEC(q4_1, true);
  case Format::Q5_0:
    return LOWBIT_CODEC(q5_0, true);
  case Format::Q5_1:
    return LOWBIT_CODEC(q5_1, true);
  case Format::Q8_0:
    return LOWBIT_CODEC(q8_0, false);
  case Format::Q2_K:
    return LOWBIT_CODEC(q2_k, true);
  case Format::Q3_K:
    return LOWBIT_CODEC(q3_k, true);
  case Format::Q4_K:
    return LOWBIT_CODEC(q4_k, true);
  case Format::Q5_K:
    return LOWBIT_CODEC(q5_k, true);
  case Format::Q6_K:
    return LOWBIT_CODEC(q6_k, true);
  case Format::IQ4_NL:
    return LOWBIT_CODEC(iq4_nl, true);
  case Format::IQ4_XS:
    return LOWBIT_CODEC(iq4_xs, true);
  case Format::TQ1_0:
    return LOWBIT_CODEC(tq1_0, false);
  case Format::TQ2_0:
    return LOWBIT_CODEC(tq2_0, false);
  case Format::MXFP4:
    return LOWBIT_CODEC(mxfp4, true);
  case Format::NF4_G64:
    return LOWBIT_CODEC(nf4_g64, true);
  case Format::I8_SYM_G32:
    return LOWBIT_CODEC(i8_sym_g32, true);
  case Format::I8_SYM_G64:
    return LOWBIT_CODEC(i8_sym_g64, true);
  case Format::I8_SYM_G128:
    return LOWBIT_CODEC(i8_sym_g128, true);
  case Format::I8_ASYM_G32:
    return LOWBIT_CODEC(i8_asym_g32, true);
  case Format::I8_ASYM_G64:
    return LOWBIT_CODEC(i8_asym_g64, true);
  case Format::I8_ASYM_G128:
    return LOWBIT_CODEC(i8_asym_g128, true);
  case Format::I4_SYM_G32:
    return LOWBIT_CODEC(i4_sym_g32, true);
  case Format::I4_SYM_G64:
    return LOWBIT_CODEC(i4_sym_g64, true);
  case Format::I4_SYM_G128:
    return LOWBIT_CODEC(i4_sym_g128, true);
  case Format::I4_ASYM_G32:
    return LOWBIT_CODEC(i4_asym_g32, true);
  case Format::I4_ASYM_G64:
    return LOWBIT_CODEC(i4_asym_g64, true);
  case Format::I4_ASYM_G128:
    return LOWBIT_CODEC(i4_asym_g128, true);
  case Format::Q8_K:
    return LOWBIT_CODEC(q8_k, false);
  case Format::IQ2_XXS:
    return LOWBIT_CODEC(iq2_xxs, true);
  case Format::IQ2_XS:
    return LOWBIT_CODEC(iq2_xs, true);
  case Format::IQ2_S:
    return LOWBIT_CODEC(iq2_s, true);
  case Format::IQ3_XXS:
    return LOWBIT_CODEC(iq3_xxs, true);
  case Format::IQ3_S:
    return LOWBIT_CODEC(iq3_s, true);
  case Format::IQ1_S:
    return LOWBIT_CODEC(iq1_s, true);
  case Format::IQ1_M:
    return LOWBIT_CODEC(iq1_m, true);
  }
  return Codec{}; // A table row without a codec yet.
}

#undef LOWBIT_CODEC

const Codec &codec(Format format) {
  static const std::vector<Codec> table = [] {
    size_t count;
    const FormatInfo *all = allFormats(count);
    std::vector<Codec> codecs(count);
    for (size_t i = 0; i < count; ++i)
      codecs[i] = codecFor(all[i].format);
    return codecs;
  }();
  return table[static_cast<size_t>(format)];
}

void setWhy(std::string *why, std::string message) {
  if (why)
    *why = std::move(message);
}

std::string formatFloat(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v));
  return buf;
}

/// Largest magnitude a plain-float format holds without rounding to Inf;
/// block formats saturate their scales instead, so they take any finite x
/// (the limit is FLT_MAX, which also rejects Inf; NaN fails every compare).
float finiteLimit(Format format) {
  switch (format) {
  case Format::F16:
    return 65519.996f; // Below 65520, which rounds to Inf.
  case Format::BF16:
    return detail::bitsFloat(0x7f7f7fffu); // Below the Inf rounding point.
  default:
    return FLT_MAX;
  }
}

/// Checks one row's values; `row` < 0 when the caller encodes a single row.
bool checkRowValues(Format format, const float *src, int64_t n, int64_t row,
                    std::string *why) {
  const float limit = finiteLimit(format);
  // Fast path: one vectorisable pass; locate the culprit only on failure.
  bool ok = true;
  for (int64_t i = 0; i < n; ++i)
    ok &= std::fabs(src[i]) <= limit;
  if (ok)
    return true;
  for (int64_t i = 0; i < n; ++i) {
    const float v = src[i];
    if (std::fabs(v) <= limit)
      continue;
    std::string where = std::string(info(format).name) + ": " +
                        (row >= 0 ? "row " + std::to_string(row) + ", " : "") +
                        "column " + std::to_string(i);
    if (std::isnan(v))
      setWhy(why, where + " is NaN");
    else if (std::isinf(v))
      setWhy(why, where + " is " + (v > 0 ? "+Inf" : "-Inf"));
    else
      setWhy(why, where + " value " + formatFloat(v) +
                      " is outside the range of " + info(format).name);
    return false;
  }
  return true;
}

bool checkShape(Format format, int64_t n, std::string *why) {
  const FormatInfo &fi = info(format);
  if (!codec(format).encode) {
    setWhy(why, std::string(fi.name) + ": no codec for this format in this "
                                       "build");
    return false;
  }
  if (n < 0 || n % fi.blockSize != 0) {
    setWhy(why, std::string(fi.name) + ": row length " + std::to_string(n) +
                    " is not a multiple of the block size " +
                    std::to_string(fi.blockSize));
    return false;
  }
  return true;
}

bool checkImportance(Format format, const float *importance, int64_t n,
                     std::string *why) {
  if (!importance || !codec(format).usesImportance)
    return true;
  for (int64_t i = 0; i < n; ++i) {
    const float v = importance[i];
    if (std::isfinite(v) && v >= 0)
      continue;
    setWhy(why, std::string(info(format).name) + ": importance[" +
                    std::to_string(i) + "] = " + formatFloat(v) +
                    " is not a finite non-negative weight");
    return false;
  }
  return true;
}

int threadCount(int requested, int64_t nrows, int64_t n) {
  int64_t threads =
      requested > 0 ? requested
                    : static_cast<int64_t>(
                          std::max(1u, std::thread::hardware_concurrency()));
  // Below ~64K weights per thread, starting threads costs more than it saves.
  const int64_t byWork = std::max<int64_t>(1, nrows * n / 65536);
  return static_cast<int>(
      std::max<int64_t>(1, std::min({threads, nrows, byWork})));
}

/// Runs body(firstRow, endRow, range) on `threads` contiguous row ranges
/// (range = its index, in row order).
template <typename Body>
void parallelRows(int64_t nrows, int threads, Body body) {
  if (threads <= 1) {
    body(0, nrows, 0);
    return;
  }
  const int64_t perThread = (nrows + threads - 1) / threads;
  parallelFor(threads, threads, [&](int64_t range, int) {
    const int64_t first = std::min(nrows, range * perThread);
    body(first, std::min(nrows, first + perThread), static_cast<int>(range));
  });
}

} // namespace

bool hasCodec(Format format) {
  return codec(format).decode && codec(format).encode;
}

bool supportsImportance(Format format) { return codec(format).usesImportance; }

bool requiresImportance(Format format) {
  // ggml_quantize_requires_imatrix(): GGML has no plain encoding of these.
  return format == Format::IQ2_XXS || format == Format::IQ2_XS ||
         format == Format::IQ1_S;
}

void dequantizeRow(Format format, const void *src, float *dst, int64_t n) {
  const Codec &c = codec(format);
  assert(c.decode && "no codec for this format");
  assert(n >= 0 && n % info(format).blockSize == 0 && "partial block");
  if (c.decode && n > 0)
    c.decode(src, dst, n);
}

bool quantizeRow(Format format, const float *src, void *dst, int64_t n,
                 const float *importance, std::string *why) {
  if (!checkShape(format, n, why) ||
      !checkImportance(format, importance, n, why) ||
      !checkRowValues(format, src, n, -1, why))
    return false;
  if (n > 0)
    codec(format).encode(src, dst, n,
                         codec(format).usesImportance ? importance : nullptr);
  return true;
}

bool quantizeRows(Format format, const float *src, void *dst, int64_t nrows,
                  int64_t n, const float *importance, int nthreads,
                  std::string *why) {
  if (!checkShape(format, n, why) ||
      !checkImportance(format, importance, n, why))
    return false;
  if (nrows <= 0 || n == 0)
    return true;
  const Codec &c = codec(format);
  const float *weights = c.usesImportance ? importance : nullptr;
  const uint64_t bytesPerRow = rowBytes(info(format), n);
  const int threads = threadCount(nthreads, nrows, n);
  // Each slot keeps its first failing row; the lowest one is reported, so
  // the message does not depend on the thread count either.
  std::vector<int64_t> failedRow(threads, -1);
  std::vector<std::string> failure(threads);
  parallelRows(nrows, threads, [&](int64_t first, int64_t end, int slot) {
    for (int64_t r = first; r < end; ++r) {
      const float *row = src + r * n;
      if (!checkRowValues(format, row, n, r, &failure[slot])) {
        failedRow[slot] = r;
        return;
      }
      c.encode(row, static_cast<uint8_t *>(dst) + r * bytesPerRow, n, weights);
    }
  });
  for (int t = 0; t < threads; ++t)
    if (failedRow[t] >= 0) {
      setWhy(why, failure[t]);
      return false;
    }
  return true;
}

void dequantizeRows(Format format, const void *src, float *dst, int64_t nrows,
                    int64_t n, int nthreads) {
  const Codec &c = codec(format);
  assert(c.decode && "no codec for this format");
  assert(n >= 0 && n % info(format).blockSize == 0 && "partial block");
  if (!c.decode || nrows <= 0 || n <= 0)
    return;
  const uint64_t bytesPerRow = rowBytes(info(format), n);
  parallelRows(nrows, threadCount(nthreads, nrows, n),
               [&](int64_t first, int64_t end, int) {
                 for (int64_t r = first; r < end; ++r)
                   c.decode(static_cast<const uint8_t *>(src) + r * bytesPerRow,
                            dst + r * n, n);
               });
}

} // namespace lowbit::formats
