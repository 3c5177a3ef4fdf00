//===- GPTQ.cpp - GPTQ error feedback inside GGML block formats -----------===//
//
// See GPTQ.h for the method. Notation: K columns, bs the format's block,
// perm[p] the original column processed p-th, U the upper Cholesky factor of
// (P^T (H + damp I) P)^-1 in processing order.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Quant/GPTQ.h"
#include "lowbit/Support/Parallel.h"
#include "Quadratic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <vector>

using namespace lowbit;
using namespace lowbit::quant;
using formats::Format;

namespace {

/// Processing order: blocks by decreasing total diag(H), then columns by
/// decreasing diag(H) inside each block. Blocks stay whole so that every
/// block is still encoded from the columns the format stores together.
std::vector<int64_t> processingOrder(const std::vector<double> &diag,
                                     int64_t bs, bool actOrder) {
  int64_t k = static_cast<int64_t>(diag.size());
  std::vector<int64_t> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  if (!actOrder)
    return perm;
  int64_t nb = k / bs;
  std::vector<double> total(nb, 0.0);
  for (int64_t c = 0; c < k; ++c)
    total[c / bs] += diag[c];
  std::vector<int64_t> blocks(nb);
  std::iota(blocks.begin(), blocks.end(), 0);
  // Ties keep storage order (std::sort with the index as tie-break).
  std::sort(blocks.begin(), blocks.end(), [&](int64_t a, int64_t b) {
    return total[a] != total[b] ? total[a] > total[b] : a < b;
  });
  perm.clear();
  for (int64_t b : blocks) {
    size_t first = perm.size();
    for (int64_t c = b * bs; c < (b + 1) * bs; ++c)
      perm.push_back(c);
    std::sort(perm.begin() + first, perm.end(), [&](int64_t a, int64_t c) {
      return diag[a] != diag[c] ? diag[a] > diag[c] : a < c;
    });
  }
  return perm;
}

/// Where each weight's code sits in a block, learned from the format's own
/// decoder: a bit belongs to weight e's code when flipping it changes the
/// decoded value of e and of no other weight. With that map GPTQ can round
/// one column at a time on the grid of scales the encoder chose (setting a
/// code leaves the scales alone), without a second copy of any block
/// layout. Formats whose codes are not separate bit fields (the base-3
/// packing of TQ1_0) or have more than 8 bits per weight get no map.
struct CodeLayout {
  int bits = 0; // per weight; 0 = no map
  /// bit[e * bits + i]: bit index in the block of bit i of weight e's code.
  std::vector<uint32_t> bit;
};

CodeLayout discoverCodeLayout(Format format) {
  const formats::FormatInfo &fi = formats::info(format);
  const int64_t bs = fi.blockSize, nbits = int64_t(fi.blockBytes) * 8;
  CodeLayout none;
  if (fi.kind == formats::FormatKind::Float)
    return none;
  // owner[i]: -1 unseen, -2 shared (moves several weights), else the weight.
  std::vector<int64_t> owner(nbits, -1);
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(bs), base(bs), flipped(bs);
  std::vector<uint8_t> bytes(fi.blockBytes);
  for (int trial = 0; trial < 6; ++trial) {
    for (int64_t e = 0; e < bs; ++e)
      x[e] = normal(rng) * (1.0f + float(e % 7)) + (trial % 2 ? 0.5f : 0.0f);
    if (!formats::quantizeRow(format, x.data(), bytes.data(), bs, nullptr))
      return none;
    formats::dequantizeRow(format, bytes.data(), base.data(), bs);
    for (int64_t i = 0; i < nbits; ++i) {
      bytes[i / 8] ^= uint8_t(1u << (i % 8));
      formats::dequantizeRow(format, bytes.data(), flipped.data(), bs);
      bytes[i / 8] ^= uint8_t(1u << (i % 8));
      int64_t changed = -1, count = 0;
      for (int64_t e = 0; e < bs; ++e)
        if (std::memcmp(&base[e], &flipped[e], sizeof(float)) != 0) {
          changed = e;
          ++count;
        }
      if (count > 1 || (count == 1 && owner[i] >= 0 && owner[i] != changed))
        owner[i] = -2;
      else if (count == 1 && owner[i] == -1)
        owner[i] = changed;
    }
  }
  std::vector<std::vector<uint32_t>> perWeight(bs);
  for (int64_t i = 0; i < nbits; ++i)
    if (owner[i] >= 0)
      perWeight[owner[i]].push_back(static_cast<uint32_t>(i));
  size_t bits = perWeight[0].size();
  if (bits == 0 || bits > 8)
    return none;
  CodeLayout layout;
  for (const std::vector<uint32_t> &b : perWeight) {
    if (b.size() != bits)
      return none;
    layout.bit.insert(layout.bit.end(), b.begin(), b.end());
  }
  layout.bits = static_cast<int>(bits);
  return layout;
}

/// discoverCodeLayout, once per format.
const CodeLayout &codeLayout(Format format) {
  static std::mutex mutex;
  static std::map<Format, CodeLayout> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(format);
  if (it == cache.end())
    it = cache.emplace(format, discoverCodeLayout(format)).first;
  return it->second;
}

/// Sets weight e's code to `code` in a block.
inline void setCode(const CodeLayout &layout, uint8_t *block, int64_t e,
                    uint32_t code) {
  const uint32_t *bit = &layout.bit[e * layout.bits];
  for (int i = 0; i < layout.bits; ++i) {
    uint8_t mask = uint8_t(1u << (bit[i] % 8));
    if (code >> i & 1)
      block[bit[i] / 8] |= mask;
    else
      block[bit[i] / 8] &= uint8_t(~mask);
  }
}

/// U with U^T U = (A + damp I)^-1, A = P^T H P in processing order (dead
/// columns decoupled, with a unit diagonal). Works on the index-reversed
/// matrix: if J A J = L L^T then A^-1 = U^T U with U = J L^-1 J upper
/// triangular, so one Cholesky and one triangular inverse suffice (GPTQ's
/// reference code does Cholesky, inverse, Cholesky again).
/// False when a pivot is not positive (A + damp I not positive definite).
bool factorInverse(const float *hessian, const std::vector<int64_t> &perm,
                   const std::vector<char> &dead, int64_t k, double damp,
                   int threads, std::vector<float> &u) {
  auto rev = [k](int64_t i) { return k - 1 - i; };
  // Built from H on every try (no K x K double copy is kept between tries).
  std::vector<double> l(static_cast<size_t>(k * k));
  for (int64_t i = 0; i < k; ++i) {
    int64_t ci = perm[rev(i)];
    for (int64_t j = 0; j <= i; ++j) {
      int64_t cj = perm[rev(j)];
      double v = hessian[ci * k + cj];
      // A dead column's input is always zero: decouple it.
      if (dead[ci] || dead[cj])
        v = ci == cj ? 1.0 : 0.0;
      l[i * k + j] = v + (i == j ? damp : 0.0);
    }
  }

  // Column-oriented Cholesky: column j needs rows < j only, rows of a column
  // are independent (threaded for large K).
  const int64_t rowTask = 64;
  int workers = k >= 512 ? threads : 1;
  for (int64_t j = 0; j < k; ++j) {
    double *lj = &l[j * k];
    double s = lj[j];
    for (int64_t t = 0; t < j; ++t)
      s -= lj[t] * lj[t];
    if (!(s > 0) || !std::isfinite(s))
      return false;
    double pivot = std::sqrt(s);
    lj[j] = pivot;
    int64_t below = k - j - 1;
    int64_t tasks = (below + rowTask - 1) / rowTask;
    auto column = [&](int64_t task, int) {
      int64_t end = std::min(k, j + 1 + (task + 1) * rowTask);
      for (int64_t i = j + 1 + task * rowTask; i < end; ++i) {
        double *li = &l[i * k];
        double v = li[j];
        for (int64_t t = 0; t < j; ++t)
          v -= li[t] * lj[t];
        li[j] = v / pivot;
      }
    };
    if (workers > 1 && below > rowTask)
      ::lowbit::parallelFor(tasks, workers, column);
    else
      for (int64_t task = 0; task < tasks; ++task)
        column(task, 0);
  }

  // Columns of L^-1 by forward substitution; column j of L^-1 is column
  // rev(j) of U.
  u.assign(static_cast<size_t>(k * k), 0.0f);
  ::lowbit::parallelFor(k, threads, [&](int64_t j, int) {
    std::vector<double> x(static_cast<size_t>(k - j));
    for (int64_t i = j; i < k; ++i) {
      const double *li = &l[i * k];
      double v = i == j ? 1.0 : 0.0;
      for (int64_t t = j; t < i; ++t)
        v -= li[t] * x[t - j];
      x[i - j] = v / li[i];
      u[rev(i) * k + rev(j)] = static_cast<float>(x[i - j]);
    }
  });
  return true;
}

/// Everything the row workers share.
struct Problem {
  Format format;
  int64_t rows, cols, bs, blockBytes, rowBytes, batch;
  std::vector<int64_t> perm;
  std::vector<char> dead;        // original column order
  std::vector<float> importance; // original column order
  std::vector<float> u;          // K x K, processing order
  CodeLayout layout;
  const float *hessian; // as given, for the RTN guard
  bool guardRTN;
  const RowLoader *load;
  uint8_t *out;
  int refinePasses;
};

/// Per-thread scratch for one chunk of rows.
struct Worker {
  std::vector<float> orig, w, errors, blockIn, decoded, comp, blockErr, wd;
  std::vector<uint8_t> bytes, prevBytes, bestBytes, scratchBlock;
  std::vector<double> best, rowErr, work;
  std::vector<float> candidates, decodedRow;
  std::vector<uint8_t> rtnBytes;
  std::vector<float> diff;
  double loss = 0, gptqError = 0, rtnError = 0;
  int64_t rtnRows = 0;
};

class Runner {
public:
  explicit Runner(const Problem &p) : p_(p) {}

  bool runChunk(Worker &s, int64_t row0, int64_t count, std::string &error) {
    const int64_t k = p_.cols;
    s.orig.resize(count * k);
    if (!(*p_.load)(row0, count, s.orig.data(), error))
      return false;
    s.w.resize(count * k);
    for (int64_t r = 0; r < count; ++r)
      for (int64_t q = 0; q < k; ++q) {
        int64_t c = p_.perm[q];
        s.w[r * k + q] = p_.dead[c] ? 0.0f : s.orig[r * k + c];
      }
    s.errors.assign(count * p_.batch, 0.0f);
    for (int64_t b0 = 0; b0 < k; b0 += p_.batch) {
      int64_t b1 = std::min(k, b0 + p_.batch);
      for (int64_t c0 = b0; c0 < b1; c0 += p_.bs) {
        if (!runBlock(s, row0, count, c0, b0, error))
          return false;
        // Errors of this block reach the rest of the batch now...
        updateColumns(s, count, c0, c0 + p_.bs, c0 - b0, c0 + p_.bs, b1);
      }
      // ... and the columns after the batch once per batch (lazy update).
      updateColumns(s, count, b0, b1, 0, b1, k);
    }
    return p_.guardRTN ? keepBetterOfRTN(s, row0, count, error) : true;
  }

  /// GPTQ's loss only approximates the output error once a format clips or
  /// re-scales, so each row is compared with plain RTN (the same encoder and
  /// importance) on the true objective e^T H e, and the better one is kept.
  bool keepBetterOfRTN(Worker &s, int64_t row0, int64_t count,
                       std::string &error) {
    const int64_t k = p_.cols;
    uint8_t *out = p_.out + row0 * p_.rowBytes;
    s.rtnBytes.resize(count * p_.rowBytes);
    std::string why;
    if (!formats::quantizeRows(p_.format, s.orig.data(), s.rtnBytes.data(),
                               count, k, p_.importance.data(), 1, &why)) {
      error = why + " (counting from row " + std::to_string(row0) + ")";
      return false;
    }
    s.decodedRow.resize(k);
    s.diff.resize(k);
    for (int64_t r = 0; r < count; ++r) {
      formats::dequantizeRow(p_.format, out + r * p_.rowBytes,
                             s.decodedRow.data(), k);
      double gptq = rowError(s, &s.orig[r * k]);
      formats::dequantizeRow(p_.format, s.rtnBytes.data() + r * p_.rowBytes,
                             s.decodedRow.data(), k);
      double rtn = rowError(s, &s.orig[r * k]);
      s.gptqError += std::min(gptq, rtn);
      s.rtnError += rtn;
      if (rtn < gptq) {
        std::memcpy(out + r * p_.rowBytes, s.rtnBytes.data() + r * p_.rowBytes,
                    p_.rowBytes);
        ++s.rtnRows;
      }
    }
    return true;
  }

  /// e^T H e for e = w - s.decodedRow, H the caller's Hessian.
  double rowError(Worker &s, const float *w) {
    for (int64_t c = 0; c < p_.cols; ++c)
      s.diff[c] = w[c] - s.decodedRow[c];
    return detail::quadraticForm(p_.hessian, s.diff.data(), p_.cols);
  }

private:
  /// w[:, to0:to1] -= E[:, from0-b0 ...] U[from0:from1, to0:to1], where E
  /// is held in s.errors starting at column `errOffset`.
  void updateColumns(Worker &s, int64_t count, int64_t from0, int64_t from1,
                     int64_t errOffset, int64_t to0, int64_t to1) {
    const int64_t k = p_.cols;
    if (to0 >= to1)
      return;
    for (int64_t r = 0; r < count; ++r) {
      float *wr = &s.w[r * k];
      const float *er = &s.errors[r * p_.batch + errOffset];
      for (int64_t j = from0; j < from1; ++j) {
        float e = er[j - from0];
        if (e == 0.0f)
          continue;
        const float *uj = &p_.u[j * k];
        for (int64_t t = to0; t < to1; ++t)
          wr[t] -= e * uj[t];
      }
    }
  }

  /// Quantizes processing-order columns [c0, c0 + bs) (one storage block)
  /// of every row of the chunk; writes the bytes and the errors e_j.
  bool runBlock(Worker &s, int64_t row0, int64_t count, int64_t c0, int64_t b0,
                std::string &error) {
    const int64_t k = p_.cols, bs = p_.bs, bb = p_.blockBytes;
    const int64_t block = p_.perm[c0] / bs; // storage block index
    s.comp.resize(count * bs);
    for (int64_t r = 0; r < count; ++r)
      std::memcpy(&s.comp[r * bs], &s.w[r * k + c0], bs * sizeof(float));
    s.blockIn.resize(count * bs);
    s.decoded.resize(count * bs);
    s.bytes.resize(count * bb);
    s.prevBytes.assign(count * bb, 0);
    s.bestBytes.resize(count * bb);
    s.blockErr.resize(count * bs);
    s.best.assign(count, std::numeric_limits<double>::infinity());
    s.rowErr.resize(bs);
    s.work.resize(bs);
    s.wd.resize(bs);
    if (p_.layout.bits)
      s.candidates.resize((size_t(1) << p_.layout.bits) * bs);

    for (int pass = 0; pass <= p_.refinePasses; ++pass) {
      // The encoder sees the block in storage order and picks its scales.
      for (int64_t r = 0; r < count; ++r)
        for (int64_t j = 0; j < bs; ++j)
          s.blockIn[r * bs + (p_.perm[c0 + j] - block * bs)] =
              s.comp[r * bs + j];
      std::string why;
      if (!formats::quantizeRows(p_.format, s.blockIn.data(), s.bytes.data(),
                                 count, bs, &p_.importance[block * bs], 1,
                                 &why)) {
        error = why + " (block at column " + std::to_string(block * bs) +
                ", counting from row " + std::to_string(row0) + ")";
        return false;
      }
      if (!p_.layout.bits)
        formats::dequantizeRows(p_.format, s.bytes.data(), s.decoded.data(),
                                count, bs, 1);
      bool any = false;
      for (int64_t r = 0; r < count; ++r) {
        uint8_t *bytes = &s.bytes[r * bb];
        double loss = p_.layout.bits
                          ? roundColumns(s, r, c0, block, bytes)
                          : blockErrors(s, r, c0, block, &s.decoded[r * bs]);
        if (pass > 0 && std::memcmp(bytes, &s.prevBytes[r * bb], bb) == 0)
          continue; // A fixed point: the next pass would repeat this one.
        any = true;
        std::memcpy(&s.prevBytes[r * bb], bytes, bb);
        if (loss < s.best[r]) {
          s.best[r] = loss;
          std::memcpy(&s.bestBytes[r * bb], bytes, bb);
          for (int64_t j = 0; j < bs; ++j)
            s.blockErr[r * bs + j] = static_cast<float>(s.rowErr[j]);
        }
        std::memcpy(&s.comp[r * bs], s.wd.data(), bs * sizeof(float));
      }
      if (pass > 0 && !any)
        break;
    }
    for (int64_t r = 0; r < count; ++r) {
      std::memcpy(p_.out + (row0 + r) * p_.rowBytes + block * bb,
                  &s.bestBytes[r * bb], bb);
      std::memcpy(&s.errors[r * p_.batch + (c0 - b0)], &s.blockErr[r * bs],
                  bs * sizeof(float));
      s.loss += s.best[r];
    }
    return true;
  }

  /// GPTQ proper inside one block of row r: columns in processing order, each
  /// rounded to the nearest value its code can take under the block's
  /// scales, its error pushed onto the block's later columns. Rewrites the
  /// codes in `bytes`; leaves e_j in s.rowErr, the compensated weights in
  /// s.wd, and returns sum e_j^2.
  double roundColumns(Worker &s, int64_t r, int64_t c0, int64_t block,
                      uint8_t *bytes) {
    const int64_t k = p_.cols, bs = p_.bs, bb = p_.blockBytes;
    const uint32_t codes = 1u << p_.layout.bits;
    // candidates[c * bs + e]: weight e's value with code c.
    s.scratchBlock.assign(bytes, bytes + bb);
    for (uint32_t c = 0; c < codes; ++c) {
      for (int64_t e = 0; e < bs; ++e)
        setCode(p_.layout, s.scratchBlock.data(), e, c);
      formats::dequantizeRow(p_.format, s.scratchBlock.data(),
                             &s.candidates[c * bs], bs);
    }
    double *w = s.work.data();
    for (int64_t j = 0; j < bs; ++j)
      w[j] = s.w[r * k + c0 + j];
    double loss = 0;
    for (int64_t j = 0; j < bs; ++j) {
      const int64_t e = p_.perm[c0 + j] - block * bs;
      const double target = w[j];
      uint32_t bestCode = 0;
      double bestDist = std::numeric_limits<double>::infinity(), q = 0;
      for (uint32_t c = 0; c < codes; ++c) {
        double v = s.candidates[c * bs + e];
        double d = std::fabs(v - target);
        if (d < bestDist) {
          bestDist = d;
          bestCode = c;
          q = v;
        }
      }
      setCode(p_.layout, bytes, e, bestCode);
      loss += propagate(s, c0, j, w, q);
    }
    return loss;
  }

  /// The block-level update for formats without a code map: the encoder's
  /// values `q` (storage order) are fixed, the errors follow from U_BB.
  double blockErrors(Worker &s, int64_t r, int64_t c0, int64_t block,
                     const float *q) {
    const int64_t k = p_.cols, bs = p_.bs;
    double *w = s.work.data();
    for (int64_t j = 0; j < bs; ++j)
      w[j] = s.w[r * k + c0 + j];
    double loss = 0;
    for (int64_t j = 0; j < bs; ++j)
      loss += propagate(s, c0, j, w, q[p_.perm[c0 + j] - block * bs]);
    return loss;
  }

  /// Column j of the block (processing order) is stored as q: records its
  /// error and pushes it onto the block's later columns. Returns e_j^2.
  double propagate(Worker &s, int64_t c0, int64_t j, double *w, double q) {
    const int64_t k = p_.cols, bs = p_.bs;
    const float *uj = &p_.u[(c0 + j) * k + c0];
    double e = (w[j] - q) / uj[j];
    s.rowErr[j] = e;
    s.wd[j] = static_cast<float>(w[j]);
    for (int64_t t = j + 1; t < bs; ++t)
      w[t] -= e * uj[t];
    return e * e;
  }

  const Problem &p_;
};

} // namespace

int lowbit::quant::gptqCodeBits(Format format) {
  return formats::hasCodec(format) ? codeLayout(format).bits : 0;
}

bool lowbit::quant::quantizeGPTQ(Format format, int64_t rows, int64_t cols,
                                 const RowLoader &load, const float *hessian,
                                 const GPTQOptions &options, uint8_t *out,
                                 std::string &error, GPTQReport *report) {
  const formats::FormatInfo &fi = formats::info(format);
  if (!formats::hasCodec(format)) {
    error = std::string(fi.name) + " has no encoder";
    return false;
  }
  if (rows < 0 || cols <= 0 || cols % fi.blockSize != 0) {
    error = "row length " + std::to_string(cols) +
            " is not a multiple of the block size " +
            std::to_string(fi.blockSize) + " of " + fi.name;
    return false;
  }
  if (options.percDamp < 0 || !std::isfinite(options.percDamp)) {
    error = "damping must be a finite non-negative fraction";
    return false;
  }
  const int64_t k = cols;
  const int threads = ::lowbit::resolveThreads(options.threads);

  // Dead columns and the diagonal.
  std::vector<double> diag(k);
  std::vector<char> dead(k, 0);
  int64_t deadCount = 0;
  for (int64_t c = 0; c < k; ++c) {
    double d = hessian[c * k + c];
    if (!std::isfinite(d)) {
      error = "the Hessian is not finite at (" + std::to_string(c) + ", " +
              std::to_string(c) + ")";
      return false;
    }
    if (d <= 0) {
      dead[c] = 1;
      ++deadCount;
      d = 1.0;
    }
    diag[c] = d;
  }
  double meanDiag = std::accumulate(diag.begin(), diag.end(), 0.0) / k;

  Problem p;
  p.format = format;
  p.rows = rows;
  p.cols = k;
  p.bs = fi.blockSize;
  p.blockBytes = fi.blockBytes;
  p.rowBytes = static_cast<int64_t>(formats::rowBytes(fi, k));
  p.batch =
      std::max<int64_t>(
          1, (std::max<int64_t>(options.lazyBatch, 1) + p.bs - 1) / p.bs) *
      p.bs;
  p.batch = std::min(p.batch, k);
  p.perm = processingOrder(diag, p.bs, options.actOrder);
  p.dead = dead;
  p.load = &load;
  p.out = out;
  p.refinePasses = std::max(0, options.refinePasses);
  p.layout = codeLayout(format);
  p.hessian = hessian;
  p.guardRTN = options.guardRTN;

  for (int64_t i = 0; i < k * k; ++i)
    if (!std::isfinite(hessian[i])) {
      error = "the Hessian is not finite at (" + std::to_string(i / k) + ", " +
              std::to_string(i % k) + ")";
      return false;
    }

  double damp = options.percDamp * meanDiag;
  int raises = 0;
  while (!factorInverse(hessian, p.perm, dead, k, damp, threads, p.u)) {
    if (++raises > 8) {
      error = "the Hessian is not positive definite even with damping " +
              std::to_string(damp) + " (mean diagonal " +
              std::to_string(meanDiag) + ")";
      return false;
    }
    damp = damp > 0 ? damp * 10 : 1e-6 * meanDiag;
  }
  p.importance.resize(k);
  for (int64_t c = 0; c < k; ++c)
    p.importance[c] = static_cast<float>(dead[c] ? damp : diag[c] + damp);

  // Threads over chunks of rows.
  const int64_t chunk = std::max<int64_t>(1, options.rowsPerChunk);
  const int64_t chunks = (rows + chunk - 1) / chunk;
  std::vector<Worker> workers(threads);
  Runner runner(p);
  std::mutex errorMutex;
  int64_t firstBad = -1;
  std::string firstError;
  ::lowbit::parallelFor(chunks, threads, [&](int64_t c, int worker) {
    {
      std::lock_guard<std::mutex> lock(errorMutex);
      if (firstBad >= 0)
        return;
    }
    std::string why;
    int64_t row0 = c * chunk;
    if (!runner.runChunk(workers[worker], row0, std::min(chunk, rows - row0),
                         why)) {
      std::lock_guard<std::mutex> lock(errorMutex);
      if (firstBad < 0 || row0 < firstBad) {
        firstBad = row0;
        firstError = why;
      }
    }
  });
  if (firstBad >= 0) {
    error = firstError;
    return false;
  }
  if (report) {
    *report = GPTQReport();
    report->damp = damp;
    report->dampRaises = raises;
    report->deadColumns = deadCount;
    for (const Worker &w : workers) {
      report->loss += w.loss;
      report->outputError += w.gptqError;
      report->rtnOutputError += w.rtnError;
      report->rtnRows += w.rtnRows;
    }
  }
  return true;
}

bool lowbit::quant::quantizeGPTQ(Format format, const float *weights,
                                 int64_t rows, int64_t cols,
                                 const float *hessian,
                                 const GPTQOptions &options, uint8_t *out,
                                 std::string &error, GPTQReport *report) {
  RowLoader load = [&](int64_t row, int64_t count, float *dst, std::string &) {
    std::memcpy(dst, weights + row * cols, count * cols * sizeof(float));
    return true;
  };
  return quantizeGPTQ(format, rows, cols, load, hessian, options, out, error,
                      report);
}

double lowbit::quant::outputError(const float *w, const float *q, int64_t rows,
                                  int64_t cols, const float *hessian,
                                  int threads) {
  std::vector<double> partial(rows, 0.0);
  ::lowbit::parallelFor(rows, threads, [&](int64_t r, int) {
    std::vector<float> e(cols);
    for (int64_t c = 0; c < cols; ++c)
      e[c] = w[r * cols + c] - q[r * cols + c];
    partial[r] = detail::quadraticForm(hessian, e.data(), cols);
  });
  return std::accumulate(partial.begin(), partial.end(), 0.0);
}
