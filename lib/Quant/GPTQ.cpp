//===- GPTQ.cpp - GPTQ error feedback inside GGML block formats -----------===//
//
// See GPTQ.h for the method. Notation: K columns, bs the format's block,
// perm[p] the original column processed p-th, U the upper Cholesky factor of
// (P^T (H + damp I) P)^-1 in processing order.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Quant/GPTQ.h"
#include "Parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <numeric>
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
  std::stable_sort(blocks.begin(), blocks.end(),
                   [&](int64_t a, int64_t b) { return total[a] > total[b]; });
  perm.clear();
  for (int64_t b : blocks) {
    size_t first = perm.size();
    for (int64_t c = b * bs; c < (b + 1) * bs; ++c)
      perm.push_back(c);
    std::stable_sort(perm.begin() + first, perm.end(),
                     [&](int64_t a, int64_t c) { return diag[a] > diag[c]; });
  }
  return perm;
}

/// U with U^T U = (A + damp I)^-1, A = `hp` (K x K, processing order). Works
/// on the index-reversed matrix: if J A J = L L^T then A^-1 = U^T U with
/// U = J L^-1 J upper triangular, so one Cholesky and one triangular inverse
/// suffice (GPTQ's reference code does Cholesky, inverse, Cholesky again).
/// False when a pivot is not positive (A + damp I not positive definite).
bool factorInverse(const std::vector<double> &hp, int64_t k, double damp,
                   int threads, std::vector<float> &u) {
  auto rev = [k](int64_t i) { return k - 1 - i; };
  std::vector<double> l(static_cast<size_t>(k * k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j <= i; ++j)
      l[i * k + j] = hp[rev(i) * k + rev(j)] + (i == j ? damp : 0.0);

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
      detail::parallelFor(tasks, workers, column);
    else
      for (int64_t task = 0; task < tasks; ++task)
        column(task, 0);
  }

  // Columns of L^-1 by forward substitution; column j of L^-1 is column
  // rev(j) of U.
  u.assign(static_cast<size_t>(k * k), 0.0f);
  detail::parallelFor(k, threads, [&](int64_t j, int) {
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
  const RowLoader *load;
  uint8_t *out;
  int refinePasses;
};

/// Per-thread scratch for one chunk of rows.
struct Worker {
  std::vector<float> orig, w, errors, blockIn, decoded, comp, blockErr, wd;
  std::vector<uint8_t> bytes, bestBytes;
  std::vector<double> best, rowErr, work;
  std::vector<char> changed;
  std::vector<float> prevDecoded;
  double loss = 0;
};

class Runner {
public:
  Runner(const Problem &p) : p_(p) {}

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
    return true;
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

  bool runBlock(Worker &s, int64_t row0, int64_t count, int64_t c0,
                int64_t b0, std::string &error) {
    const int64_t k = p_.cols, bs = p_.bs, bb = p_.blockBytes;
    const int64_t block = p_.perm[c0] / bs; // original block index
    const int64_t *order = &p_.perm[c0];
    s.comp.resize(count * bs);
    for (int64_t r = 0; r < count; ++r)
      std::memcpy(&s.comp[r * bs], &s.w[r * k + c0], bs * sizeof(float));
    s.blockIn.resize(count * bs);
    s.decoded.resize(count * bs);
    s.prevDecoded.resize(count * bs);
    s.bytes.resize(count * bb);
    s.bestBytes.resize(count * bb);
    s.blockErr.resize(count * bs);
    s.best.assign(count, std::numeric_limits<double>::infinity());
    s.changed.assign(count, 1);
    s.rowErr.resize(bs);
    s.work.resize(bs);
    s.wd.resize(bs);

    for (int pass = 0; pass <= p_.refinePasses; ++pass) {
      // The encoder sees the block in storage order.
      for (int64_t r = 0; r < count; ++r)
        for (int64_t j = 0; j < bs; ++j)
          s.blockIn[r * bs + (order[j] - block * bs)] = s.comp[r * bs + j];
      std::string why;
      if (!formats::quantizeRows(p_.format, s.blockIn.data(), s.bytes.data(),
                                 count, bs, &p_.importance[block * bs], 1,
                                 &why)) {
        error = why + " (block at column " + std::to_string(block * bs) +
                ", counting from row " + std::to_string(row0) + ")";
        return false;
      }
      formats::dequantizeRows(p_.format, s.bytes.data(), s.decoded.data(),
                              count, bs, 1);
      bool any = false;
      for (int64_t r = 0; r < count; ++r) {
        const float *q = &s.decoded[r * bs];
        if (pass > 0 &&
            std::memcmp(q, &s.prevDecoded[r * bs], bs * sizeof(float)) == 0)
          continue; // Fixed point: the same codes give the same result.
        any = true;
        // Errors in processing order; w as it is when column j is reached.
        double *w = s.work.data();
        for (int64_t j = 0; j < bs; ++j)
          w[j] = s.w[r * k + c0 + j];
        double loss = 0;
        for (int64_t j = 0; j < bs; ++j) {
          const float *uj = &p_.u[(c0 + j) * k + c0];
          double e = (w[j] - q[order[j] - block * bs]) / uj[j];
          s.rowErr[j] = e;
          s.wd[j] = static_cast<float>(w[j]);
          loss += e * e;
          for (int64_t t = j + 1; t < bs; ++t)
            w[t] -= e * uj[t];
        }
        if (loss < s.best[r]) {
          s.best[r] = loss;
          std::memcpy(&s.bestBytes[r * bb], &s.bytes[r * bb], bb);
          for (int64_t j = 0; j < bs; ++j)
            s.blockErr[r * bs + j] = static_cast<float>(s.rowErr[j]);
        }
        std::memcpy(&s.comp[r * bs], s.wd.data(), bs * sizeof(float));
      }
      if (pass > 0 && !any)
        break;
      std::swap(s.prevDecoded, s.decoded);
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

  const Problem &p_;
};

} // namespace

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
  const int threads = detail::resolveThreads(options.threads);

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
  p.batch = std::max<int64_t>(1, (std::max<int64_t>(options.lazyBatch, 1) +
                                  p.bs - 1) / p.bs) * p.bs;
  p.batch = std::min(p.batch, k);
  p.perm = processingOrder(diag, p.bs, options.actOrder);
  p.dead = dead;
  p.load = &load;
  p.out = out;
  p.refinePasses = std::max(0, options.refinePasses);

  std::vector<double> hp(static_cast<size_t>(k * k));
  for (int64_t i = 0; i < k; ++i) {
    int64_t ci = p.perm[i];
    for (int64_t j = 0; j < k; ++j) {
      int64_t cj = p.perm[j];
      double v = hessian[ci * k + cj];
      if (!std::isfinite(v)) {
        error = "the Hessian is not finite at (" + std::to_string(ci) + ", " +
                std::to_string(cj) + ")";
        return false;
      }
      // A dead column's input is always zero: decouple it.
      if (dead[ci] || dead[cj])
        v = ci == cj ? 1.0 : 0.0;
      hp[i * k + j] = v;
    }
  }

  double damp = options.percDamp * meanDiag;
  int raises = 0;
  while (!factorInverse(hp, k, damp, threads, p.u)) {
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
  detail::parallelFor(chunks, threads, [&](int64_t c, int worker) {
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
    report->damp = damp;
    report->dampRaises = raises;
    report->deadColumns = deadCount;
    report->loss = 0;
    for (const Worker &w : workers)
      report->loss += w.loss;
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
  detail::parallelFor(rows, threads, [&](int64_t r, int) {
    std::vector<double> e(cols);
    for (int64_t c = 0; c < cols; ++c)
      e[c] = double(w[r * cols + c]) - double(q[r * cols + c]);
    double sum = 0;
    for (int64_t i = 0; i < cols; ++i) {
      if (e[i] == 0)
        continue;
      const float *hi = hessian + i * cols;
      double v = 0;
      for (int64_t j = 0; j < cols; ++j)
        v += hi[j] * e[j];
      sum += e[i] * v;
    }
    partial[r] = sum;
  });
  return std::accumulate(partial.begin(), partial.end(), 0.0);
}
