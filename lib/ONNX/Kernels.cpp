//===- Kernels.cpp - Reference kernels of ONNX operators ------------------===//
#include "lowbit/ONNX/Kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>

namespace lowbit::onnxrt {

//===----------------------------------------------------------------------===//
// Tensors and attributes
//===----------------------------------------------------------------------===//

int64_t Tensor::count() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// The nearest IEEE half (ties to even), as a double.
static double roundToHalf(double v) {
  if (!std::isfinite(v))
    return v;
  double a = std::fabs(v);
  if (a >= 65520.0)
    return std::copysign(std::numeric_limits<double>::infinity(), v);
  int e;
  std::frexp(a, &e); // a = m * 2^e, m in [0.5, 1)
  // Spacing of halfs near a: 2^(e-11) for normals, 2^-24 below 2^-14.
  double ulp = e - 11 < -24 ? std::ldexp(1.0, -24) : std::ldexp(1.0, e - 11);
  return std::copysign(std::nearbyint(a / ulp) * ulp, v);
}

static bool isFloatType(int32_t t) {
  return t == 1 || t == 10 || t == 11 || t == 16;
}

void Tensor::round() {
  for (double &v : values) {
    switch (dataType) {
    case 1: // FLOAT
      v = double(float(v));
      break;
    case 10: // FLOAT16
      v = roundToHalf(v);
      break;
    case 16: { // BFLOAT16: the float's top 16 bits, rounded to nearest even
      float f = float(v);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      if ((bits & 0x7f800000u) != 0x7f800000u)
        bits = (bits + 0x7fffu + ((bits >> 16) & 1)) & 0xffff0000u;
      else
        bits &= 0xffff0000u | (bits & 0xffff ? 0x10000u : 0);
      std::memcpy(&f, &bits, 4);
      v = f;
      break;
    }
    case 9: // BOOL
      v = v != 0 ? 1 : 0;
      break;
    case 2:
      v = double(uint8_t(int64_t(v)));
      break;
    case 3:
      v = double(int8_t(int64_t(v)));
      break;
    case 4:
      v = double(uint16_t(int64_t(v)));
      break;
    case 5:
      v = double(int16_t(int64_t(v)));
      break;
    case 6:
      v = double(int32_t(int64_t(v)));
      break;
    case 12:
      v = double(uint32_t(int64_t(v)));
      break;
    default:
      break;
    }
  }
}

bool Attributes::has(const std::string &n) const {
  return ints.count(n) || floats.count(n) || strings.count(n) ||
         intLists.count(n) || floatLists.count(n) || tensors.count(n);
}
int64_t Attributes::getInt(const std::string &n, int64_t fallback) const {
  auto it = ints.find(n);
  return it == ints.end() ? fallback : it->second;
}
double Attributes::getFloat(const std::string &n, double fallback) const {
  auto it = floats.find(n);
  return it == floats.end() ? fallback : it->second;
}
std::string Attributes::getString(const std::string &n,
                                  const std::string &fallback) const {
  auto it = strings.find(n);
  return it == strings.end() ? fallback : it->second;
}

namespace {

using Shape = std::vector<int64_t>;

struct Context {
  const std::string &op;
  int64_t opset;
  const std::vector<const Tensor *> &in;
  const Attributes &attrs;
  size_t outputCount;
  std::vector<Tensor> &out;
  std::string &error;

  bool fail(const std::string &message) {
    error = op + ": " + message;
    return false;
  }
  const Tensor *input(size_t i) const {
    return i < in.size() ? in[i] : nullptr;
  }
  Tensor &output(size_t i) {
    if (out.size() <= i)
      out.resize(i + 1);
    return out[i];
  }
  /// An integer list from input `i` when present, else attribute `name`.
  bool intList(size_t i, const std::string &name, std::vector<int64_t> &list,
               bool &present) {
    present = false;
    if (const Tensor *t = input(i)) {
      present = true;
      list.assign(t->values.begin(), t->values.end());
      return true;
    }
    auto it = attrs.intLists.find(name);
    if (it != attrs.intLists.end()) {
      present = true;
      list = it->second;
    }
    return true;
  }
};

Shape stridesOf(const Shape &shape) {
  Shape strides(shape.size(), 1);
  for (int64_t i = int64_t(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

bool normalizeAxis(int64_t &axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    return false;
  if (axis < 0)
    axis += rank;
  return true;
}

bool broadcastShapes(const std::vector<const Tensor *> &ts, Shape &out) {
  size_t rank = 0;
  for (const Tensor *t : ts)
    rank = std::max(rank, t->shape.size());
  out.assign(rank, 1);
  for (const Tensor *t : ts) {
    size_t offset = rank - t->shape.size();
    for (size_t i = 0; i < t->shape.size(); ++i) {
      int64_t d = t->shape[i];
      int64_t &o = out[offset + i];
      if (d == o || d == 1)
        continue;
      if (o != 1)
        return false;
      o = d;
    }
  }
  return true;
}

/// For each output index, the flat index into `t` under broadcasting.
std::vector<int64_t> broadcastIndex(const Tensor &t, const Shape &out) {
  int64_t count = 1;
  for (int64_t d : out)
    count *= d;
  std::vector<int64_t> map(count);
  Shape strides = stridesOf(t.shape);
  size_t offset = out.size() - t.shape.size();
  Shape idx(out.size(), 0);
  for (int64_t flat = 0; flat < count; ++flat) {
    int64_t src = 0;
    for (size_t i = 0; i < t.shape.size(); ++i)
      if (t.shape[i] != 1)
        src += idx[offset + i] * strides[i];
    map[flat] = src;
    for (int64_t i = int64_t(out.size()) - 1; i >= 0; --i) {
      if (++idx[i] < out[i])
        break;
      idx[i] = 0;
    }
  }
  return map;
}

bool elementwise(Context &c, size_t arity, int32_t resultType,
                 const std::function<double(const double *)> &fn) {
  std::vector<const Tensor *> ts;
  for (size_t i = 0; i < arity; ++i) {
    if (!c.input(i))
      return c.fail("missing input " + std::to_string(i));
    ts.push_back(c.input(i));
  }
  Shape shape;
  if (!broadcastShapes(ts, shape))
    return c.fail("shapes do not broadcast");
  std::vector<std::vector<int64_t>> maps;
  for (const Tensor *t : ts)
    maps.push_back(broadcastIndex(*t, shape));
  Tensor &r = c.output(0);
  r.dataType = resultType;
  r.shape = shape;
  int64_t count = r.count();
  r.values.resize(count);
  std::vector<double> args(arity);
  for (int64_t i = 0; i < count; ++i) {
    for (size_t k = 0; k < arity; ++k)
      args[k] = ts[k]->values[maps[k][i]];
    r.values[i] = fn(args.data());
  }
  r.round();
  return true;
}

bool unary(Context &c, const std::function<double(double)> &fn) {
  if (!c.input(0))
    return c.fail("missing input");
  return elementwise(c, 1, c.input(0)->dataType,
                     [&](const double *a) { return fn(a[0]); });
}

/// Variadic Max/Min/Sum/Mean: fold pairwise with broadcasting.
bool variadic(Context &c, const std::function<double(double, double)> &fn,
              bool mean) {
  if (c.in.empty() || !c.input(0))
    return c.fail("needs inputs");
  Tensor acc = *c.input(0);
  for (size_t i = 1; i < c.in.size(); ++i) {
    std::vector<const Tensor *> pair = {&acc, c.input(i)};
    std::vector<Tensor> out;
    std::string error;
    Context sub{c.op, c.opset, pair, c.attrs, 1, out, error};
    if (!elementwise(sub, 2, acc.dataType,
                     [&](const double *a) { return fn(a[0], a[1]); }))
      return c.fail(error);
    acc = out[0];
  }
  if (mean)
    for (double &v : acc.values)
      v /= double(c.in.size());
  acc.round();
  c.output(0) = acc;
  return true;
}

double roundHalfEven(double v) { return std::nearbyint(v); }

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

bool matmul(Context &c) {
  const Tensor *a = c.input(0), *b = c.input(1);
  if (!a || !b)
    return c.fail("needs two inputs");
  Tensor A = *a, B = *b;
  bool aVec = A.shape.size() == 1, bVec = B.shape.size() == 1;
  if (aVec)
    A.shape.insert(A.shape.begin(), 1);
  if (bVec)
    B.shape.push_back(1);
  if (A.shape.size() < 2 || B.shape.size() < 2)
    return c.fail("rank 0 operand");
  int64_t M = A.shape[A.shape.size() - 2], K = A.shape.back();
  int64_t K2 = B.shape[B.shape.size() - 2], N = B.shape.back();
  if (K != K2)
    return c.fail("inner dimensions differ");
  Tensor batchA, batchB;
  batchA.shape.assign(A.shape.begin(), A.shape.end() - 2);
  batchB.shape.assign(B.shape.begin(), B.shape.end() - 2);
  Shape batch;
  if (!broadcastShapes({&batchA, &batchB}, batch))
    return c.fail("batch dimensions do not broadcast");
  std::vector<int64_t> mapA = broadcastIndex(batchA, batch);
  std::vector<int64_t> mapB = broadcastIndex(batchB, batch);
  Tensor &r = c.output(0);
  r.dataType = a->dataType;
  r.shape = batch;
  if (!aVec)
    r.shape.push_back(M);
  if (!bVec)
    r.shape.push_back(N);
  int64_t batches = int64_t(mapA.size());
  r.values.assign(batches * M * N, 0.0);
  for (int64_t bi = 0; bi < batches; ++bi) {
    const double *pa = A.values.data() + mapA[bi] * M * K;
    const double *pb = B.values.data() + mapB[bi] * K * N;
    double *pr = r.values.data() + bi * M * N;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) {
        double x = pa[m * K + k];
        for (int64_t n = 0; n < N; ++n)
          pr[m * N + n] += x * pb[k * N + n];
      }
  }
  r.round();
  return true;
}

bool gemm(Context &c) {
  const Tensor *a = c.input(0), *b = c.input(1), *cc = c.input(2);
  if (!a || !b || a->shape.size() != 2 || b->shape.size() != 2)
    return c.fail("needs 2-D A and B");
  bool ta = c.attrs.getInt("transA", 0), tb = c.attrs.getInt("transB", 0);
  double alpha = c.attrs.getFloat("alpha", 1.0),
         beta = c.attrs.getFloat("beta", 1.0);
  int64_t M = ta ? a->shape[1] : a->shape[0], K = ta ? a->shape[0] : a->shape[1];
  int64_t K2 = tb ? b->shape[1] : b->shape[0], N = tb ? b->shape[0] : b->shape[1];
  if (K != K2)
    return c.fail("inner dimensions differ");
  Tensor &r = c.output(0);
  r.dataType = a->dataType;
  r.shape = {M, N};
  r.values.assign(M * N, 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += a->values[ta ? k * M + m : m * K + k] *
             b->values[tb ? n * K + k : k * N + n];
      r.values[m * N + n] = alpha * s;
    }
  if (cc) {
    std::vector<int64_t> map = broadcastIndex(*cc, r.shape);
    for (int64_t i = 0; i < M * N; ++i)
      r.values[i] += beta * cc->values[map[i]];
  }
  r.round();
  return true;
}

//===----------------------------------------------------------------------===//
// Reductions and normalizations
//===----------------------------------------------------------------------===//

/// Applies `fn` to each group of `inner`-strided values along the axes
/// marked in `reduce`.
bool reduce(Context &c, const std::string &kind) {
  const Tensor *x = c.input(0);
  if (!x)
    return c.fail("missing input");
  int64_t rank = int64_t(x->shape.size());
  std::vector<int64_t> axes;
  bool present = false;
  bool axesAsInput = c.opset >= 18 || (kind == "Sum" && c.opset >= 13);
  if (axesAsInput) {
    if (const Tensor *t = c.input(1)) {
      axes.assign(t->values.begin(), t->values.end());
      present = true;
    }
  } else if (c.attrs.intLists.count("axes")) {
    axes = c.attrs.intLists.at("axes");
    present = true;
  }
  bool keep = c.attrs.getInt("keepdims", 1) != 0;
  if (!present || axes.empty()) {
    if (c.attrs.getInt("noop_with_empty_axes", 0)) {
      c.output(0) = *x;
      return true;
    }
    axes.resize(rank);
    std::iota(axes.begin(), axes.end(), 0);
  }
  std::vector<bool> reduced(rank, false);
  for (int64_t a : axes) {
    if (!normalizeAxis(a, rank))
      return c.fail("axis out of range");
    reduced[a] = true;
  }
  Shape outShape, keptShape;
  for (int64_t i = 0; i < rank; ++i) {
    keptShape.push_back(reduced[i] ? 1 : x->shape[i]);
    if (!reduced[i] || keep)
      outShape.push_back(reduced[i] ? 1 : x->shape[i]);
  }
  Tensor kept;
  kept.shape = keptShape;
  int64_t outCount = kept.count();
  std::vector<double> acc(outCount), count(outCount, 0.0);
  bool isMax = kind == "Max", isMin = kind == "Min", isProd = kind == "Prod";
  double init = isMax ? -std::numeric_limits<double>::infinity()
                : isMin ? std::numeric_limits<double>::infinity()
                : isProd ? 1.0 : 0.0;
  std::fill(acc.begin(), acc.end(), init);
  Shape strides = stridesOf(keptShape);
  Shape idx(rank, 0);
  for (int64_t flat = 0; flat < x->count(); ++flat) {
    int64_t o = 0;
    for (int64_t i = 0; i < rank; ++i)
      if (!reduced[i])
        o += idx[i] * strides[i];
    double v = x->values[flat];
    double &a = acc[o];
    if (isMax)
      a = std::max(a, v);
    else if (isMin)
      a = std::min(a, v);
    else if (isProd)
      a *= v;
    else if (kind == "SumSquare" || kind == "L2")
      a += v * v;
    else if (kind == "L1")
      a += std::fabs(v);
    else if (kind == "LogSumExp")
      a += std::exp(v);
    else
      a += v;
    count[o] += 1;
    for (int64_t i = rank - 1; i >= 0; --i) {
      if (++idx[i] < x->shape[i])
        break;
      idx[i] = 0;
    }
  }
  for (int64_t o = 0; o < outCount; ++o) {
    if (kind == "Mean")
      acc[o] /= count[o];
    else if (kind == "L2")
      acc[o] = std::sqrt(acc[o]);
    else if (kind == "LogSumExp" || kind == "LogSum")
      acc[o] = std::log(acc[o]);
  }
  Tensor &r = c.output(0);
  r.dataType = x->dataType;
  r.shape = outShape;
  r.values = acc;
  r.round();
  return true;
}

/// Softmax, LogSoftmax, Hardmax over `axis` (opset >= 13), or over the
/// flattened trailing dimensions from `axis` (older opsets).
bool softmax(Context &c, int mode) {
  const Tensor *x = c.input(0);
  if (!x)
    return c.fail("missing input");
  int64_t rank = int64_t(x->shape.size());
  int64_t axis = c.attrs.getInt("axis", c.opset >= 13 ? -1 : 1);
  if (!normalizeAxis(axis, rank))
    return c.fail("axis out of range");
  int64_t outer = 1, n = 1, inner = 1;
  if (c.opset >= 13) {
    for (int64_t i = 0; i < axis; ++i)
      outer *= x->shape[i];
    n = x->shape[axis];
    for (int64_t i = axis + 1; i < rank; ++i)
      inner *= x->shape[i];
  } else {
    for (int64_t i = 0; i < axis; ++i)
      outer *= x->shape[i];
    for (int64_t i = axis; i < rank; ++i)
      n *= x->shape[i];
  }
  Tensor &r = c.output(0);
  r = *x;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      auto at = [&](int64_t k) -> double & {
        return r.values[(o * n + k) * inner + in];
      };
      double mx = -std::numeric_limits<double>::infinity();
      int64_t arg = 0;
      for (int64_t k = 0; k < n; ++k)
        if (at(k) > mx) {
          mx = at(k);
          arg = k;
        }
      if (mode == 2) {
        for (int64_t k = 0; k < n; ++k)
          at(k) = k == arg ? 1 : 0;
        continue;
      }
      double sum = 0;
      for (int64_t k = 0; k < n; ++k)
        sum += std::exp(at(k) - mx);
      for (int64_t k = 0; k < n; ++k)
        at(k) = mode == 1 ? at(k) - mx - std::log(sum)
                          : std::exp(at(k) - mx) / sum;
    }
  r.round();
  return true;
}

/// LayerNormalization and the RMS forms (SimplifiedLayerNormalization,
/// RMSNormalization, com.microsoft SkipSimplifiedLayerNormalization): over
/// the dimensions from `axis` on.
bool normalize(Context &c, bool rms, bool skip) {
  const Tensor *x0 = c.input(0);
  if (!x0)
    return c.fail("missing input");
  Tensor x = *x0;
  size_t scaleInput = 1, biasInput = 2;
  if (skip) {
    const Tensor *s = c.input(1);
    if (!s || s->count() != x.count())
      return c.fail("needs a skip input of the input's size");
    for (int64_t i = 0; i < x.count(); ++i)
      x.values[i] += s->values[i];
    scaleInput = 2;
    biasInput = 3;
    if (const Tensor *b = c.input(3); b && c.op == "SkipSimplifiedLayerNormalization") {
      std::vector<int64_t> map = broadcastIndex(*b, x.shape);
      for (int64_t i = 0; i < x.count(); ++i)
        x.values[i] += b->values[map[i]];
      biasInput = 99;
    }
    x.round();
  }
  int64_t rank = int64_t(x.shape.size());
  int64_t axis = c.attrs.getInt("axis", -1);
  if (!normalizeAxis(axis, rank))
    return c.fail("axis out of range");
  double eps = c.attrs.getFloat("epsilon", 1e-5);
  int64_t outer = 1, n = 1;
  for (int64_t i = 0; i < axis; ++i)
    outer *= x.shape[i];
  for (int64_t i = axis; i < rank; ++i)
    n *= x.shape[i];
  const Tensor *scale = c.input(scaleInput);
  const Tensor *bias = rms && !skip ? nullptr : c.input(biasInput);
  Tensor normShape;
  normShape.shape.assign(x.shape.begin() + axis, x.shape.end());
  std::vector<int64_t> scaleMap, biasMap;
  if (scale)
    scaleMap = broadcastIndex(*scale, normShape.shape);
  if (bias)
    biasMap = broadcastIndex(*bias, normShape.shape);
  Tensor &y = c.output(0);
  y = x;
  Tensor mean, inv;
  mean.dataType = inv.dataType = 1;
  mean.shape = inv.shape = x.shape;
  for (int64_t i = axis; i < rank; ++i)
    mean.shape[i] = inv.shape[i] = 1;
  for (int64_t o = 0; o < outer; ++o) {
    double *p = y.values.data() + o * n;
    double mu = 0, var = 0;
    if (!rms) {
      for (int64_t k = 0; k < n; ++k)
        mu += p[k];
      mu /= double(n);
    }
    for (int64_t k = 0; k < n; ++k)
      var += (p[k] - mu) * (p[k] - mu);
    var /= double(n);
    double invStd = 1.0 / std::sqrt(var + eps);
    mean.values.push_back(mu);
    inv.values.push_back(invStd);
    for (int64_t k = 0; k < n; ++k) {
      double v = (p[k] - mu) * invStd;
      if (scale)
        v *= scale->values[scaleMap[k]];
      if (bias)
        v += bias->values[biasMap[k]];
      p[k] = v;
    }
  }
  y.round();
  if (skip) {
    // SkipSimplifiedLayerNormalization: output, mean, inv_std, sum.
    if (c.outputCount > 1)
      c.output(1) = mean;
    if (c.outputCount > 2)
      c.output(2) = inv;
    if (c.outputCount > 3)
      c.output(3) = x;
  } else {
    if (c.outputCount > 1)
      c.output(1) = rms ? inv : mean;
    if (c.outputCount > 2)
      c.output(2) = inv;
  }
  return true;
}

bool batchNorm(Context &c) {
  if (c.attrs.getInt("training_mode", 0))
    return c.fail("training mode is not run by the executor");
  const Tensor *x = c.input(0), *s = c.input(1), *b = c.input(2),
               *m = c.input(3), *v = c.input(4);
  if (!x || !s || !b || !m || !v || x->shape.size() < 2)
    return c.fail("needs X, scale, B, mean and var");
  double eps = c.attrs.getFloat("epsilon", 1e-5);
  int64_t C = x->shape[1], inner = x->count() / (x->shape[0] * C);
  Tensor &y = c.output(0);
  y = *x;
  for (int64_t i = 0; i < x->count(); ++i) {
    int64_t ch = (i / inner) % C;
    y.values[i] = (x->values[i] - m->values[ch]) /
                      std::sqrt(v->values[ch] + eps) * s->values[ch] +
                  b->values[ch];
  }
  y.round();
  return true;
}

//===----------------------------------------------------------------------===//
// Convolution and pooling (N spatial dimensions)
//===----------------------------------------------------------------------===//

struct Window {
  Shape kernel, strides, dilations, padBegin, padEnd, out;
};

bool windowOf(Context &c, const Shape &in, const Shape &kernel, Window &w,
              bool ceilMode) {
  size_t n = kernel.size();
  w.kernel = kernel;
  w.strides = c.attrs.intLists.count("strides") ? c.attrs.intLists.at("strides")
                                                : Shape(n, 1);
  w.dilations = c.attrs.intLists.count("dilations")
                    ? c.attrs.intLists.at("dilations")
                    : Shape(n, 1);
  Shape pads = c.attrs.intLists.count("pads") ? c.attrs.intLists.at("pads")
                                              : Shape(2 * n, 0);
  if (w.strides.size() != n || w.dilations.size() != n || pads.size() != 2 * n)
    return c.fail("strides, dilations or pads of the wrong length");
  std::string autoPad = c.attrs.getString("auto_pad", "NOTSET");
  w.padBegin.assign(pads.begin(), pads.begin() + n);
  w.padEnd.assign(pads.begin() + n, pads.end());
  w.out.resize(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t span = (kernel[i] - 1) * w.dilations[i] + 1;
    if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      int64_t out = (in[i] + w.strides[i] - 1) / w.strides[i];
      int64_t total =
          std::max<int64_t>(0, (out - 1) * w.strides[i] + span - in[i]);
      w.padBegin[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
      w.padEnd[i] = total - w.padBegin[i];
      w.out[i] = out;
      continue;
    }
    if (autoPad == "VALID")
      w.padBegin[i] = w.padEnd[i] = 0;
    int64_t room = in[i] + w.padBegin[i] + w.padEnd[i] - span;
    if (room < 0)
      return c.fail("kernel larger than the padded input");
    w.out[i] = (ceilMode ? (room + w.strides[i] - 1) / w.strides[i]
                         : room / w.strides[i]) +
               1;
    // A window that would start in the end padding is dropped.
    if (ceilMode && (w.out[i] - 1) * w.strides[i] >= in[i] + w.padBegin[i])
      --w.out[i];
  }
  return true;
}

/// Calls fn(outFlat, inputOffsetsOfTheWindow...) for each output position.
template <typename Fn>
void forEachWindow(const Shape &in, const Window &w, Fn fn) {
  size_t n = in.size();
  Shape inStrides = stridesOf(in);
  Shape o(n, 0);
  int64_t outCount = 1;
  for (int64_t d : w.out)
    outCount *= d;
  Shape k(n, 0);
  for (int64_t flat = 0; flat < outCount; ++flat) {
    std::vector<int64_t> offsets;
    int64_t inWindow = 0;
    std::fill(k.begin(), k.end(), 0);
    int64_t kernelCount = 1;
    for (int64_t d : w.kernel)
      kernelCount *= d;
    for (int64_t kf = 0; kf < kernelCount; ++kf) {
      int64_t off = 0;
      bool inside = true, inPadded = true;
      for (size_t i = 0; i < n; ++i) {
        int64_t pos = o[i] * w.strides[i] + k[i] * w.dilations[i] -
                      w.padBegin[i];
        if (pos < 0 || pos >= in[i])
          inside = false;
        if (pos < -w.padBegin[i] || pos >= in[i] + w.padEnd[i])
          inPadded = false;
        off += pos * inStrides[i];
      }
      offsets.push_back(inside ? off : -1);
      inWindow += inPadded;
      for (int64_t i = int64_t(n) - 1; i >= 0; --i) {
        if (++k[i] < w.kernel[i])
          break;
        k[i] = 0;
      }
    }
    fn(flat, offsets, inWindow);
    for (int64_t i = int64_t(n) - 1; i >= 0; --i) {
      if (++o[i] < w.out[i])
        break;
      o[i] = 0;
    }
  }
}

bool conv(Context &c) {
  const Tensor *x = c.input(0), *wt = c.input(1), *b = c.input(2);
  if (!x || !wt || x->shape.size() < 3 || wt->shape.size() != x->shape.size())
    return c.fail("needs X [N, C, ...] and W [M, C/group, ...]");
  int64_t group = c.attrs.getInt("group", 1);
  int64_t N = x->shape[0], C = x->shape[1], M = wt->shape[0];
  if (group <= 0 || C % group || M % group || wt->shape[1] != C / group)
    return c.fail("channels do not match the groups");
  Shape spatial(x->shape.begin() + 2, x->shape.end());
  Shape kernel(wt->shape.begin() + 2, wt->shape.end());
  Window w;
  if (!windowOf(c, spatial, kernel, w, false))
    return false;
  int64_t inSize = 1, outSize = 1, kSize = 1;
  for (int64_t d : spatial)
    inSize *= d;
  for (int64_t d : w.out)
    outSize *= d;
  for (int64_t d : kernel)
    kSize *= d;
  Tensor &y = c.output(0);
  y.dataType = x->dataType;
  y.shape = {N, M};
  y.shape.insert(y.shape.end(), w.out.begin(), w.out.end());
  y.values.assign(N * M * outSize, 0.0);
  int64_t cPerGroup = C / group, mPerGroup = M / group;
  std::vector<std::vector<int64_t>> windows(outSize);
  forEachWindow(spatial, w, [&](int64_t flat, const std::vector<int64_t> &off,
                                int64_t) { windows[flat] = off; });
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m) {
      int64_t g = m / mPerGroup;
      for (int64_t o = 0; o < outSize; ++o) {
        double s = b ? b->values[m] : 0.0;
        for (int64_t ci = 0; ci < cPerGroup; ++ci) {
          const double *xin =
              x->values.data() + (n * C + g * cPerGroup + ci) * inSize;
          const double *wk =
              wt->values.data() + (m * cPerGroup + ci) * kSize;
          for (int64_t k = 0; k < kSize; ++k)
            if (windows[o][k] >= 0)
              s += xin[windows[o][k]] * wk[k];
        }
        y.values[(n * M + m) * outSize + o] = s;
      }
    }
  y.round();
  return true;
}

bool pool(Context &c, bool isMax, bool global) {
  const Tensor *x = c.input(0);
  if (!x || x->shape.size() < 3)
    return c.fail("needs X [N, C, ...]");
  Shape spatial(x->shape.begin() + 2, x->shape.end());
  Window w;
  if (global) {
    w.kernel = spatial;
    w.strides = w.dilations = Shape(spatial.size(), 1);
    w.padBegin = w.padEnd = Shape(spatial.size(), 0);
    w.out = Shape(spatial.size(), 1);
  } else {
    if (!c.attrs.intLists.count("kernel_shape"))
      return c.fail("needs kernel_shape");
    if (!windowOf(c, spatial, c.attrs.intLists.at("kernel_shape"), w,
                  c.attrs.getInt("ceil_mode", 0) != 0))
      return false;
  }
  bool includePad = c.attrs.getInt("count_include_pad", 0) != 0;
  int64_t planes = x->shape[0] * x->shape[1], inSize = 1, outSize = 1;
  for (int64_t d : spatial)
    inSize *= d;
  for (int64_t d : w.out)
    outSize *= d;
  Tensor &y = c.output(0);
  y.dataType = x->dataType;
  y.shape = {x->shape[0], x->shape[1]};
  y.shape.insert(y.shape.end(), w.out.begin(), w.out.end());
  y.values.assign(planes * outSize, 0.0);
  forEachWindow(spatial, w, [&](int64_t o, const std::vector<int64_t> &off,
                                int64_t inPadded) {
    for (int64_t p = 0; p < planes; ++p) {
      const double *xin = x->values.data() + p * inSize;
      double acc = isMax ? -std::numeric_limits<double>::infinity() : 0.0;
      int64_t count = 0;
      for (int64_t k : off)
        if (k >= 0) {
          acc = isMax ? std::max(acc, xin[k]) : acc + xin[k];
          ++count;
        }
      if (!isMax)
        acc /= double(includePad ? inPadded : std::max<int64_t>(count, 1));
      y.values[p * outSize + o] = acc;
    }
  });
  y.round();
  return true;
}

//===----------------------------------------------------------------------===//
// Shapes and data movement
//===----------------------------------------------------------------------===//

bool reshapeTo(Context &c, const Tensor &x, Shape shape) {
  Tensor &r = c.output(0);
  r = x;
  r.shape = shape;
  if (r.count() != x.count())
    return c.fail("element counts differ");
  return true;
}

bool transpose(Context &c) {
  const Tensor *x = c.input(0);
  if (!x)
    return c.fail("missing input");
  size_t rank = x->shape.size();
  Shape perm(rank);
  if (c.attrs.intLists.count("perm"))
    perm = c.attrs.intLists.at("perm");
  else
    for (size_t i = 0; i < rank; ++i)
      perm[i] = int64_t(rank - 1 - i);
  if (perm.size() != rank)
    return c.fail("perm of the wrong length");
  Tensor &r = c.output(0);
  r.dataType = x->dataType;
  r.shape.resize(rank);
  for (size_t i = 0; i < rank; ++i)
    r.shape[i] = x->shape[perm[i]];
  r.values.resize(x->count());
  Shape inStrides = stridesOf(x->shape);
  Shape idx(rank, 0);
  for (int64_t flat = 0; flat < x->count(); ++flat) {
    int64_t src = 0;
    for (size_t i = 0; i < rank; ++i)
      src += idx[i] * inStrides[perm[i]];
    r.values[flat] = x->values[src];
    for (int64_t i = int64_t(rank) - 1; i >= 0; --i) {
      if (++idx[i] < r.shape[i])
        break;
      idx[i] = 0;
    }
  }
  return true;
}

bool concat(Context &c) {
  std::vector<const Tensor *> ts;
  for (const Tensor *t : c.in)
    if (t)
      ts.push_back(t);
  if (ts.empty())
    return c.fail("needs inputs");
  int64_t rank = int64_t(ts[0]->shape.size());
  int64_t axis = c.attrs.getInt("axis", 0);
  if (!normalizeAxis(axis, rank))
    return c.fail("axis out of range");
  Tensor &r = c.output(0);
  r.dataType = ts[0]->dataType;
  r.shape = ts[0]->shape;
  r.shape[axis] = 0;
  for (const Tensor *t : ts) {
    if (int64_t(t->shape.size()) != rank)
      return c.fail("ranks differ");
    r.shape[axis] += t->shape[axis];
  }
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i)
    outer *= r.shape[i];
  r.values.clear();
  for (int64_t o = 0; o < outer; ++o)
    for (const Tensor *t : ts) {
      int64_t chunk = t->count() / std::max<int64_t>(outer, 1);
      r.values.insert(r.values.end(), t->values.begin() + o * chunk,
                      t->values.begin() + (o + 1) * chunk);
    }
  return true;
}

bool split(Context &c) {
  const Tensor *x = c.input(0);
  if (!x)
    return c.fail("missing input");
  int64_t rank = int64_t(x->shape.size());
  int64_t axis = c.attrs.getInt("axis", 0);
  if (!normalizeAxis(axis, rank))
    return c.fail("axis out of range");
  std::vector<int64_t> sizes;
  bool present;
  c.intList(1, "split", sizes, present);
  int64_t dim = x->shape[axis];
  if (!present) {
    int64_t parts = c.attrs.getInt("num_outputs", int64_t(c.outputCount));
    int64_t each = (dim + parts - 1) / parts;
    for (int64_t p = 0; p < parts; ++p)
      sizes.push_back(std::min(each, dim - p * each));
  }
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i)
    outer *= x->shape[i];
  for (int64_t i = axis + 1; i < rank; ++i)
    inner *= x->shape[i];
  int64_t start = 0;
  for (size_t p = 0; p < sizes.size(); ++p) {
    Tensor &r = c.output(p);
    r.dataType = x->dataType;
    r.shape = x->shape;
    r.shape[axis] = sizes[p];
    r.values.clear();
    for (int64_t o = 0; o < outer; ++o)
      r.values.insert(r.values.end(),
                      x->values.begin() + (o * dim + start) * inner,
                      x->values.begin() + (o * dim + start + sizes[p]) * inner);
    start += sizes[p];
  }
  if (start != dim)
    return c.fail("split sizes do not add up");
  return true;
}

bool slice(Context &c) {
  const Tensor *x = c.input(0);
  if (!x)
    return c.fail("missing input");
  int64_t rank = int64_t(x->shape.size());
  std::vector<int64_t> starts, ends, axes, steps;
  bool present;
  if (c.opset >= 10) {
    c.intList(1, "", starts, present);
    c.intList(2, "", ends, present);
    c.intList(3, "", axes, present);
    c.intList(4, "", steps, present);
  } else {
    starts = c.attrs.intLists.count("starts") ? c.attrs.intLists.at("starts")
                                              : Shape();
    ends = c.attrs.intLists.count("ends") ? c.attrs.intLists.at("ends")
                                          : Shape();
    if (c.attrs.intLists.count("axes"))
      axes = c.attrs.intLists.at("axes");
  }
  if (axes.empty()) {
    axes.resize(starts.size());
    std::iota(axes.begin(), axes.end(), 0);
  }
  if (steps.empty())
    steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size())
    return c.fail("starts, ends, axes and steps differ in length");
  Shape begin(rank, 0), step(rank, 1), count(x->shape);
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t a = axes[i];
    if (!normalizeAxis(a, rank) || steps[i] == 0)
      return c.fail("bad axis or step");
    int64_t d = x->shape[a], s = starts[i], e = ends[i];
    if (s < 0)
      s += d;
    if (e < 0)
      e += d;
    if (steps[i] > 0) {
      s = std::clamp<int64_t>(s, 0, d);
      e = std::clamp<int64_t>(e, 0, d);
      count[a] = std::max<int64_t>(0, (e - s + steps[i] - 1) / steps[i]);
    } else {
      s = std::clamp<int64_t>(s, -1, d - 1);
      e = std::clamp<int64_t>(e, -1, d - 1);
      count[a] = std::max<int64_t>(0, (s - e + (-steps[i]) - 1) / -steps[i]);
    }
    begin[a] = s;
    step[a] = steps[i];
  }
  Tensor &r = c.output(0);
  r.dataType = x->dataType;
  r.shape = count;
  r.values.resize(r.count());
  Shape inStrides = stridesOf(x->shape);
  Shape idx(rank, 0);
  for (int64_t flat = 0; flat < r.count(); ++flat) {
    int64_t src = 0;
    for (int64_t i = 0; i < rank; ++i)
      src += (begin[i] + idx[i] * step[i]) * inStrides[i];
    r.values[flat] = x->values[src];
    for (int64_t i = rank - 1; i >= 0; --i) {
      if (++idx[i] < count[i])
        break;
      idx[i] = 0;
    }
  }
  return true;
}

bool gather(Context &c) {
  const Tensor *x = c.input(0), *ids = c.input(1);
  if (!x || !ids)
    return c.fail("needs data and indices");
  int64_t rank = int64_t(x->shape.size());
  int64_t axis = c.attrs.getInt("axis", 0);
  if (!normalizeAxis(axis, rank))
    return c.fail("axis out of range");
  int64_t outer = 1, inner = 1, dim = x->shape[axis];
  for (int64_t i = 0; i < axis; ++i)
    outer *= x->shape[i];
  for (int64_t i = axis + 1; i < rank; ++i)
    inner *= x->shape[i];
  Tensor &r = c.output(0);
  r.dataType = x->dataType;
  r.shape.assign(x->shape.begin(), x->shape.begin() + axis);
  r.shape.insert(r.shape.end(), ids->shape.begin(), ids->shape.end());
  r.shape.insert(r.shape.end(), x->shape.begin() + axis + 1, x->shape.end());
  r.values.clear();
  for (int64_t o = 0; o < outer; ++o)
    for (double idv : ids->values) {
      int64_t id = int64_t(idv);
      if (id < 0)
        id += dim;
      if (id < 0 || id >= dim)
        return c.fail("index " + std::to_string(int64_t(idv)) +
                      " out of range");
      r.values.insert(r.values.end(),
                      x->values.begin() + (o * dim + id) * inner,
                      x->values.begin() + (o * dim + id + 1) * inner);
    }
  return true;
}

bool expand(Context &c) {
  const Tensor *x = c.input(0), *s = c.input(1);
  if (!x || !s)
    return c.fail("needs input and shape");
  Tensor target;
  target.shape.assign(s->values.begin(), s->values.end());
  Shape shape;
  if (!broadcastShapes({x, &target}, shape))
    return c.fail("shapes do not broadcast");
  std::vector<int64_t> map = broadcastIndex(*x, shape);
  Tensor &r = c.output(0);
  r.dataType = x->dataType;
  r.shape = shape;
  r.values.resize(map.size());
  for (size_t i = 0; i < map.size(); ++i)
    r.values[i] = x->values[map[i]];
  return true;
}

bool cast(Context &c, int32_t to) {
  const Tensor *x = c.input(0);
  if (!x)
    return c.fail("missing input");
  Tensor &r = c.output(0);
  r = *x;
  r.dataType = int32_t(to);
  if (!isFloatType(to) && to != 9)
    for (double &v : r.values)
      v = std::isfinite(v) ? std::trunc(v) : 0;
  r.round();
  return true;
}


/// Visits every index of `shape` (row-major) with its flat position.
template <typename Fn> void forEachIndex(const Shape &shape, Fn fn) {
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  Shape idx(shape.size(), 0);
  for (int64_t flat = 0; flat < count; ++flat) {
    fn(flat, idx);
    for (int64_t i = int64_t(shape.size()) - 1; i >= 0; --i) {
      if (++idx[i] < shape[i])
        break;
      idx[i] = 0;
    }
  }
}

bool tile(Context &c) {
  const Tensor *x = c.input(0), *reps = c.input(1);
  if (!x || !reps || int64_t(reps->values.size()) != int64_t(x->shape.size()))
    return c.fail("needs input and one repeat per dimension");
  Tensor &r = c.output(0);
  r.dataType = x->dataType;
  r.shape = x->shape;
  for (size_t i = 0; i < r.shape.size(); ++i)
    r.shape[i] *= int64_t(reps->values[i]);
  Shape strides = stridesOf(x->shape);
  r.values.resize(r.count());
  forEachIndex(r.shape, [&](int64_t flat, const Shape &idx) {
    int64_t src = 0;
    for (size_t i = 0; i < idx.size(); ++i)
      src += (idx[i] % x->shape[i]) * strides[i];
    r.values[flat] = x->values[src];
  });
  return true;
}

bool pad(Context &c) {
  const Tensor *x = c.input(0);
  if (!x)
    return c.fail("missing input");
  int64_t rank = int64_t(x->shape.size());
  std::vector<int64_t> pads, axes;
  bool present;
  c.intList(1, "pads", pads, present);
  double value = c.opset >= 11 ? (c.input(2) ? c.input(2)->values.at(0) : 0.0)
                               : c.attrs.getFloat("value", 0.0);
  c.intList(3, "", axes, present);
  if (axes.empty()) {
    axes.resize(rank);
    std::iota(axes.begin(), axes.end(), 0);
  }
  if (pads.size() != 2 * axes.size())
    return c.fail("pads of the wrong length");
  Shape before(rank, 0), after(rank, 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t a = axes[i];
    if (!normalizeAxis(a, rank))
      return c.fail("axis out of range");
    before[a] = pads[i];
    after[a] = pads[i + axes.size()];
  }
  std::string mode = c.attrs.getString("mode", "constant");
  Tensor &r = c.output(0);
  r.dataType = x->dataType;
  r.shape = x->shape;
  for (int64_t i = 0; i < rank; ++i)
    r.shape[i] += before[i] + after[i];
  Shape strides = stridesOf(x->shape);
  r.values.resize(r.count());
  forEachIndex(r.shape, [&](int64_t flat, const Shape &idx) {
    int64_t src = 0;
    bool outside = false;
    for (int64_t i = 0; i < rank; ++i) {
      int64_t p = idx[i] - before[i], d = x->shape[i];
      if (p < 0 || p >= d) {
        if (mode == "edge")
          p = std::clamp<int64_t>(p, 0, d - 1);
        else if (mode == "reflect" && d > 1) {
          int64_t period = 2 * (d - 1);
          p = ((p % period) + period) % period;
          if (p >= d)
            p = period - p;
        } else if (mode == "wrap")
          p = ((p % d) + d) % d;
        else
          outside = true;
      }
      src += p * strides[i];
    }
    r.values[flat] = outside ? value : x->values[src];
  });
  return true;
}

bool cumsum(Context &c) {
  const Tensor *x = c.input(0), *a = c.input(1);
  if (!x || !a)
    return c.fail("needs input and axis");
  int64_t rank = int64_t(x->shape.size()), axis = int64_t(a->values.at(0));
  if (!normalizeAxis(axis, rank))
    return c.fail("axis out of range");
  bool exclusive = c.attrs.getInt("exclusive", 0), reverse = c.attrs.getInt("reverse", 0);
  int64_t outer = 1, n = x->shape[axis], inner = 1;
  for (int64_t i = 0; i < axis; ++i)
    outer *= x->shape[i];
  for (int64_t i = axis + 1; i < rank; ++i)
    inner *= x->shape[i];
  Tensor &r = c.output(0);
  r = *x;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      double sum = 0;
      for (int64_t step = 0; step < n; ++step) {
        int64_t k = reverse ? n - 1 - step : step;
        int64_t at = (o * n + k) * inner + in;
        double v = x->values[at];
        r.values[at] = exclusive ? sum : sum + v;
        sum += v;
      }
    }
  r.round();
  return true;
}

bool trilu(Context &c) {
  const Tensor *x = c.input(0);
  if (!x || x->shape.size() < 2)
    return c.fail("needs a matrix");
  int64_t k = c.input(1) ? int64_t(c.input(1)->values.at(0)) : 0;
  bool upper = c.attrs.getInt("upper", 1) != 0;
  int64_t rows = x->shape[x->shape.size() - 2], cols = x->shape.back();
  Tensor &r = c.output(0);
  r = *x;
  for (int64_t i = 0; i < r.count(); ++i) {
    int64_t col = i % cols, row = (i / cols) % rows;
    bool keep = upper ? col - row >= k : col - row <= k;
    if (!keep)
      r.values[i] = 0;
  }
  return true;
}

/// QuantizeLinear / DequantizeLinear: per tensor, per axis, or blocked
/// (opset 21 block_size) scale and zero point.
bool quantizeLinear(Context &c, bool quantize) {
  const Tensor *x = c.input(0), *scale = c.input(1), *zero = c.input(2);
  if (!x || !scale)
    return c.fail("needs input and scale");
  int64_t rank = int64_t(x->shape.size());
  int64_t axis = c.attrs.getInt("axis", 1);
  int64_t block = c.attrs.getInt("block_size", 0);
  if (scale->count() > 1 && !normalizeAxis(axis, rank))
    return c.fail("axis out of range");
  Shape strides = stridesOf(x->shape);
  Shape scaleStrides = stridesOf(scale->shape);
  auto paramIndex = [&](const Shape &idx) -> int64_t {
    if (scale->count() == 1)
      return 0;
    if (block <= 0)
      return idx[axis];
    int64_t at = 0;
    for (int64_t i = 0; i < rank; ++i)
      at += (i == axis ? idx[i] / block : idx[i]) * scaleStrides[i];
    return at;
  };
  int32_t outType = quantize ? (zero ? zero->dataType
                                     : int32_t(c.attrs.getInt("output_dtype", 2)))
                             : scale->dataType;
  if (quantize && outType == 0)
    outType = 2;
  double lo = 0, hi = 255;
  if (outType == 3)
    lo = -128, hi = 127;
  else if (outType == 22)
    lo = -8, hi = 7;
  else if (outType == 21)
    lo = 0, hi = 15;
  else if (outType == 5)
    lo = -32768, hi = 32767;
  else if (outType == 4)
    lo = 0, hi = 65535;
  else if (outType == 6)
    lo = -2147483648.0, hi = 2147483647.0;
  Tensor &r = c.output(0);
  r.dataType = outType;
  r.shape = x->shape;
  r.values.resize(x->count());
  forEachIndex(x->shape, [&](int64_t flat, const Shape &idx) {
    int64_t p = paramIndex(idx);
    double z = zero ? zero->values[p] : 0.0, s = scale->values[p];
    r.values[flat] =
        quantize ? std::clamp(std::nearbyint(x->values[flat] / s) + z, lo, hi)
                 : (x->values[flat] - z) * s;
  });
  r.round();
  return true;
}

bool instanceNorm(Context &c) {
  const Tensor *x = c.input(0), *s = c.input(1), *b = c.input(2);
  if (!x || !s || !b || x->shape.size() < 3)
    return c.fail("needs X [N, C, ...], scale and B");
  double eps = c.attrs.getFloat("epsilon", 1e-5);
  int64_t C = x->shape[1], inner = x->count() / (x->shape[0] * C);
  Tensor &r = c.output(0);
  r = *x;
  for (int64_t plane = 0; plane < x->shape[0] * C; ++plane) {
    double *p = r.values.data() + plane * inner;
    double mu = 0, var = 0;
    for (int64_t i = 0; i < inner; ++i)
      mu += p[i];
    mu /= double(inner);
    for (int64_t i = 0; i < inner; ++i)
      var += (p[i] - mu) * (p[i] - mu);
    var /= double(inner);
    int64_t ch = plane % C;
    for (int64_t i = 0; i < inner; ++i)
      p[i] = (p[i] - mu) / std::sqrt(var + eps) * s->values[ch] + b->values[ch];
  }
  r.round();
  return true;
}

bool depthToSpace(Context &c, bool toSpace) {
  const Tensor *x = c.input(0);
  int64_t bs = c.attrs.getInt("blocksize", 0);
  if (!x || x->shape.size() != 4 || bs <= 0)
    return c.fail("needs X [N, C, H, W] and blocksize");
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  bool crd = c.attrs.getString("mode", "DCR") == "CRD";
  Tensor &r = c.output(0);
  r.dataType = x->dataType;
  if (toSpace) {
    if (C % (bs * bs))
      return c.fail("channels not a multiple of blocksize^2");
    r.shape = {N, C / (bs * bs), H * bs, W * bs};
  } else {
    if (H % bs || W % bs)
      return c.fail("spatial size not a multiple of blocksize");
    r.shape = {N, C * bs * bs, H / bs, W / bs};
  }
  r.values.resize(x->count());
  Shape in = stridesOf(x->shape), out = stridesOf(r.shape);
  if (toSpace) {
    int64_t Co = C / (bs * bs);
    forEachIndex(r.shape, [&](int64_t flat, const Shape &o) {
      int64_t n = o[0], co = o[1], h = o[2] / bs, bh = o[2] % bs,
              w = o[3] / bs, bw = o[3] % bs;
      int64_t ci = crd ? co * bs * bs + bh * bs + bw
                       : (bh * bs + bw) * Co + co;
      r.values[flat] = x->values[n * in[0] + ci * in[1] + h * in[2] + w * in[3]];
    });
  } else {
    forEachIndex(r.shape, [&](int64_t flat, const Shape &o) {
      int64_t n = o[0], co = o[1], h = o[2], w = o[3];
      int64_t ci = co % C, b = co / C, bh = b / bs, bw = b % bs;
      r.values[flat] =
          x->values[n * in[0] + ci * in[1] + (h * bs + bh) * in[2] + (w * bs + bw) * in[3]];
    });
  }
  (void)out;
  return true;
}

/// Resize (opsets 10-19): nearest, linear and cubic interpolation, separable
/// over the axes, with ONNX's coordinate transformations.
bool resize(Context &c) {
  const Tensor *x = c.input(0);
  if (!x)
    return c.fail("missing input");
  size_t rank = x->shape.size();
  const Tensor *roi = c.opset >= 11 ? c.input(1) : nullptr;
  const Tensor *scalesIn = c.opset >= 11 ? c.input(2) : c.input(1);
  const Tensor *sizesIn = c.opset >= 11 ? c.input(3) : nullptr;
  if (c.attrs.has("axes") || c.attrs.getInt("antialias", 0))
    return c.fail("axes and antialias are not run by the executor yet");
  std::vector<double> scales(rank, 1.0);
  Shape out(x->shape);
  if (sizesIn && sizesIn->count() > 0) {
    if (size_t(sizesIn->count()) != rank)
      return c.fail("sizes of the wrong length");
    for (size_t i = 0; i < rank; ++i) {
      out[i] = int64_t(sizesIn->values[i]);
      scales[i] = double(out[i]) / double(x->shape[i]);
    }
  } else if (scalesIn && scalesIn->count() > 0) {
    if (size_t(scalesIn->count()) != rank)
      return c.fail("scales of the wrong length");
    for (size_t i = 0; i < rank; ++i) {
      scales[i] = scalesIn->values[i];
      out[i] = int64_t(std::floor(double(x->shape[i]) * scales[i]));
    }
  } else {
    return c.fail("needs scales or sizes");
  }
  std::string mode = c.attrs.getString("mode", "nearest");
  std::string transform = c.attrs.getString(
      "coordinate_transformation_mode",
      c.opset >= 11 ? "half_pixel" : "asymmetric");
  std::string nearest = c.attrs.getString(
      "nearest_mode", c.opset >= 11 ? "round_prefer_floor" : "floor");
  double cubicA = c.attrs.getFloat("cubic_coeff_a", -0.75);
  bool excludeOutside = c.attrs.getInt("exclude_outside", 0) != 0;
  double extrapolation = c.attrs.getFloat("extrapolation_value", 0.0);

  // Per axis and output coordinate: taps (input index, weight), or none when
  // the coordinate falls outside a tf_crop_and_resize box.
  struct Tap {
    int64_t index;
    double weight;
  };
  std::vector<std::vector<std::vector<Tap>>> taps(rank);
  std::vector<std::vector<bool>> outside(rank);
  for (size_t a = 0; a < rank; ++a) {
    int64_t in = x->shape[a], len = out[a];
    taps[a].resize(len);
    outside[a].assign(len, false);
    for (int64_t o = 0; o < len; ++o) {
      double s = scales[a], xo;
      if (transform == "half_pixel")
        xo = (o + 0.5) / s - 0.5;
      else if (transform == "pytorch_half_pixel")
        xo = len > 1 ? (o + 0.5) / s - 0.5 : 0.0;
      else if (transform == "align_corners")
        // ONNX's reference divides by the unrounded output length when
        // scales (not sizes) give it.
        xo = len == 1 ? 0.0
                      : double(o) * double(in - 1) /
                            ((sizesIn && sizesIn->count() > 0
                                  ? double(len)
                                  : double(in) * s) -
                             1);
      else if (transform == "asymmetric")
        xo = o / s;
      else if (transform == "tf_half_pixel_for_nn")
        xo = (o + 0.5) / s;
      else if (transform == "tf_crop_and_resize") {
        if (!roi || size_t(roi->count()) != 2 * rank)
          return c.fail("tf_crop_and_resize needs an roi of 2 x rank");
        double start = roi->values[a], end = roi->values[a + rank];
        xo = len > 1 ? start * (in - 1) + o * (end - start) * (in - 1) / (len - 1)
                     : 0.5 * (start + end) * (in - 1);
        if (xo < 0 || xo > double(in - 1))
          outside[a][o] = true;
      } else {
        return c.fail("coordinate_transformation_mode " + transform +
                      " is not known");
      }
      auto clampIndex = [&](int64_t i) {
        return std::clamp<int64_t>(i, 0, in - 1);
      };
      std::vector<Tap> &t = taps[a][o];
      if (mode == "nearest") {
        double f = std::floor(xo), frac = xo - f;
        int64_t i;
        if (nearest == "floor")
          i = int64_t(f);
        else if (nearest == "ceil")
          i = int64_t(std::ceil(xo));
        else if (nearest == "round_prefer_ceil")
          i = int64_t(frac >= 0.5 ? f + 1 : f);
        else
          i = int64_t(frac > 0.5 ? f + 1 : f);
        t.push_back({clampIndex(i), 1.0});
      } else if (mode == "linear") {
        double f = std::floor(xo), w = xo - f;
        t.push_back({clampIndex(int64_t(f)), 1 - w});
        t.push_back({clampIndex(int64_t(f) + 1), w});
      } else if (mode == "cubic") {
        double f = std::floor(xo), r = xo - f;
        auto kernel = [&](double d) {
          d = std::fabs(d);
          if (d <= 1)
            return ((cubicA + 2) * d - (cubicA + 3)) * d * d + 1;
          if (d < 2)
            return ((cubicA * d - 5 * cubicA) * d + 8 * cubicA) * d - 4 * cubicA;
          return 0.0;
        };
        double sum = 0;
        for (int k = -1; k <= 2; ++k) {
          int64_t i = int64_t(f) + k;
          double w = kernel(r - k);
          if (excludeOutside && (i < 0 || i >= in))
            w = 0;
          sum += w;
          t.push_back({clampIndex(i), w});
        }
        if (excludeOutside && sum != 0)
          for (Tap &tap : t)
            tap.weight /= sum;
      } else {
        return c.fail("mode " + mode + " is not known");
      }
    }
  }
  Tensor &r = c.output(0);
  r.dataType = x->dataType;
  r.shape = out;
  r.values.resize(r.count());
  Shape strides = stridesOf(x->shape);
  forEachIndex(out, [&](int64_t flat, const Shape &idx) {
    for (size_t a = 0; a < rank; ++a)
      if (outside[a][idx[a]]) {
        r.values[flat] = extrapolation;
        return;
      }
    // Sum over the product of the axes' taps.
    double sum = 0;
    std::vector<size_t> pick(rank, 0);
    for (;;) {
      double w = 1;
      int64_t src = 0;
      for (size_t a = 0; a < rank; ++a) {
        const Tap &tap = taps[a][idx[a]][pick[a]];
        w *= tap.weight;
        src += tap.index * strides[a];
      }
      sum += w * x->values[src];
      int64_t a = int64_t(rank) - 1;
      for (; a >= 0; --a) {
        if (++pick[a] < taps[a][idx[a]].size())
          break;
        pick[a] = 0;
      }
      if (a < 0)
        break;
    }
    r.values[flat] = sum;
  });
  r.round();
  return true;
}

} // namespace

//===----------------------------------------------------------------------===//
// Dispatch
//===----------------------------------------------------------------------===//

static const char *const kOperators[] = {
    "Abs", "Acos", "Acosh", "Add", "Asinh", "Atanh", "Cosh", "CumSum",
    "DepthToSpace", "DequantizeLinear", "InstanceNormalization", "IsInf",
    "IsNaN", "PRelu", "Pad", "QuantizeLinear", "ReduceLogSum", "Sinh",
    "SpaceToDepth", "Tile", "Trilu", "And", "ArgMax", "ArgMin", "Asin", "Atan",
    "AveragePool", "BatchNormalization", "Cast", "Ceil", "Celu", "Clip",
    "Concat", "Constant", "ConstantOfShape", "Conv", "Cos", "Div", "Dropout",
    "Elu", "Equal", "Erf", "Exp", "Expand", "Flatten", "Floor", "Gather",
    "Gelu", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Greater",
    "GreaterOrEqual", "HardSigmoid", "HardSwish", "Hardmax", "Identity",
    "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log",
    "LogSoftmax", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mod", "Mul",
    "Neg", "Not", "Or", "Pow", "RMSNormalization", "Range", "Reciprocal",
    "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu",
    "Reshape", "Resize", "Round", "Selu", "Shape", "Sigmoid", "Sign", "SimplifiedLayerNormalization",
    "Sin", "Size", "Slice", "Softmax", "Softplus", "Softsign", "Split",
    "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu",
    "Transpose", "Unsqueeze", "Where", "Xor"};

bool hasOperator(const std::string &domain, const std::string &opType) {
  if (domain == "com.microsoft")
    return opType == "SimplifiedLayerNormalization" ||
           opType == "SkipSimplifiedLayerNormalization";
  if (!domain.empty() && domain != "ai.onnx")
    return false;
  return std::find(std::begin(kOperators), std::end(kOperators), opType) !=
         std::end(kOperators);
}

bool runOperator(const std::string &domain, const std::string &op,
                 int64_t opset, const std::vector<const Tensor *> &inputs,
                 const Attributes &attrs, size_t outputCount,
                 std::vector<Tensor> &outputs, std::string &error) {
  outputs.clear();
  Context c{op, opset, inputs, attrs, outputCount, outputs, error};
  if (!hasOperator(domain, op))
    return c.fail("operator " + (domain.empty() ? "" : domain + ".") + op +
                  " is not supported by lowbit's executor yet");
  const Tensor *x = c.input(0);
  int32_t type = x ? x->dataType : 1;
  auto bin = [&](auto fn) {
    return elementwise(c, 2, type, [&](const double *a) { return fn(a[0], a[1]); });
  };
  auto cmp = [&](auto fn) {
    return elementwise(c, 2, 9, [&](const double *a) { return double(fn(a[0], a[1])); });
  };
  const double alpha = attrs.getFloat("alpha", 0), beta = attrs.getFloat("beta", 0);
  bool isInt = x && !isFloatType(type);
  if (op == "Add") return bin([](double a, double b) { return a + b; });
  if (op == "Sub") return bin([](double a, double b) { return a - b; });
  if (op == "Mul") return bin([](double a, double b) { return a * b; });
  if (op == "Div")
    return bin([&](double a, double b) {
      return isInt ? (b == 0 ? 0 : std::trunc(a / b)) : a / b;
    });
  if (op == "Pow") return bin([](double a, double b) { return std::pow(a, b); });
  if (op == "Mod") {
    bool fmod = attrs.getInt("fmod", 0) != 0;
    return bin([&](double a, double b) {
      if (b == 0)
        return isInt ? 0.0 : std::nan("");
      double r = std::fmod(a, b);
      if (!fmod && r != 0 && ((r < 0) != (b < 0)))
        r += b;
      return r;
    });
  }
  if (op == "Equal") return cmp([](double a, double b) { return a == b; });
  if (op == "Less") return cmp([](double a, double b) { return a < b; });
  if (op == "Greater") return cmp([](double a, double b) { return a > b; });
  if (op == "LessOrEqual") return cmp([](double a, double b) { return a <= b; });
  if (op == "GreaterOrEqual") return cmp([](double a, double b) { return a >= b; });
  if (op == "And") return cmp([](double a, double b) { return a != 0 && b != 0; });
  if (op == "Or") return cmp([](double a, double b) { return a != 0 || b != 0; });
  if (op == "Xor") return cmp([](double a, double b) { return (a != 0) != (b != 0); });
  if (op == "Where") {
    if (!c.input(1))
      return c.fail("missing input");
    return elementwise(c, 3, c.input(1)->dataType,
                       [](const double *a) { return a[0] != 0 ? a[1] : a[2]; });
  }
  if (op == "Max")
    return variadic(c, [](double a, double b) {
      return std::isnan(a) || std::isnan(b) ? std::nan("") : std::max(a, b);
    }, false);
  if (op == "Min")
    return variadic(c, [](double a, double b) {
      return std::isnan(a) || std::isnan(b) ? std::nan("") : std::min(a, b);
    }, false);
  if (op == "Sum") return variadic(c, [](double a, double b) { return a + b; }, false);
  if (op == "Mean") return variadic(c, [](double a, double b) { return a + b; }, true);

  if (op == "Relu") return unary(c, [](double v) { return std::max(v, 0.0); });
  if (op == "Sigmoid") return unary(c, [](double v) { return 1 / (1 + std::exp(-v)); });
  if (op == "Tanh") return unary(c, [](double v) { return std::tanh(v); });
  if (op == "Exp") return unary(c, [](double v) { return std::exp(v); });
  if (op == "Log") return unary(c, [](double v) { return std::log(v); });
  if (op == "Sqrt") return unary(c, [](double v) { return std::sqrt(v); });
  if (op == "Neg") return unary(c, [](double v) { return -v; });
  if (op == "Abs") return unary(c, [](double v) { return std::fabs(v); });
  if (op == "Erf") return unary(c, [](double v) { return std::erf(v); });
  if (op == "Reciprocal") return unary(c, [](double v) { return 1 / v; });
  if (op == "Floor") return unary(c, [](double v) { return std::floor(v); });
  if (op == "Ceil") return unary(c, [](double v) { return std::ceil(v); });
  if (op == "Round") return unary(c, roundHalfEven);
  if (op == "Sin") return unary(c, [](double v) { return std::sin(v); });
  if (op == "Cos") return unary(c, [](double v) { return std::cos(v); });
  if (op == "Tan") return unary(c, [](double v) { return std::tan(v); });
  if (op == "Asin") return unary(c, [](double v) { return std::asin(v); });
  if (op == "Acos") return unary(c, [](double v) { return std::acos(v); });
  if (op == "Atan") return unary(c, [](double v) { return std::atan(v); });
  if (op == "Sinh") return unary(c, [](double v) { return std::sinh(v); });
  if (op == "Cosh") return unary(c, [](double v) { return std::cosh(v); });
  if (op == "Asinh") return unary(c, [](double v) { return std::asinh(v); });
  if (op == "Acosh") return unary(c, [](double v) { return std::acosh(v); });
  if (op == "Atanh") return unary(c, [](double v) { return std::atanh(v); });
  if (op == "IsNaN")
    return elementwise(c, 1, 9, [](const double *a) { return double(std::isnan(a[0])); });
  if (op == "IsInf") {
    bool pos = attrs.getInt("detect_positive", 1), neg = attrs.getInt("detect_negative", 1);
    return elementwise(c, 1, 9, [&](const double *a) {
      return double(std::isinf(a[0]) && ((a[0] > 0 && pos) || (a[0] < 0 && neg)));
    });
  }
  if (op == "PRelu")
    return bin([](double v, double slope) { return v < 0 ? slope * v : v; });
  if (op == "Sign") return unary(c, [](double v) { return double((v > 0) - (v < 0)); });
  if (op == "Not") return unary(c, [](double v) { return v == 0 ? 1.0 : 0.0; });
  if (op == "Softplus") return unary(c, [](double v) { return std::log1p(std::exp(v)); });
  if (op == "Softsign") return unary(c, [](double v) { return v / (1 + std::fabs(v)); });
  if (op == "Identity" || op == "Dropout") {
    if (!x)
      return c.fail("missing input");
    if (op == "Dropout" && c.input(2) && c.input(2)->values.at(0) != 0)
      return c.fail("training mode (random) is not run by the executor");
    c.output(0) = *x;
    if (op == "Dropout" && outputCount > 1) {
      Tensor &mask = c.output(1);
      mask.dataType = 9;
      mask.shape = x->shape;
      mask.values.assign(x->count(), 1.0);
    }
    return true;
  }
  if (op == "HardSigmoid") {
    double a = attrs.getFloat("alpha", 0.2), b = attrs.getFloat("beta", 0.5);
    return unary(c, [&](double v) { return std::clamp(a * v + b, 0.0, 1.0); });
  }
  if (op == "HardSwish")
    return unary(c, [](double v) { return v * std::clamp(v / 6 + 0.5, 0.0, 1.0); });
  if (op == "LeakyRelu") {
    double a = attrs.getFloat("alpha", 0.01);
    return unary(c, [&](double v) { return v < 0 ? a * v : v; });
  }
  if (op == "Elu") {
    double a = attrs.getFloat("alpha", 1.0);
    return unary(c, [&](double v) { return v < 0 ? a * (std::exp(v) - 1) : v; });
  }
  if (op == "Celu") {
    double a = attrs.getFloat("alpha", 1.0);
    return unary(c, [&](double v) {
      return std::max(0.0, v) + std::min(0.0, a * (std::exp(v / a) - 1));
    });
  }
  if (op == "Selu") {
    double a = attrs.getFloat("alpha", 1.67326319217681884765625),
           g = attrs.getFloat("gamma", 1.05070102214813232421875);
    return unary(c, [&](double v) { return g * (v > 0 ? v : a * (std::exp(v) - 1)); });
  }
  if (op == "ThresholdedRelu") {
    double a = attrs.getFloat("alpha", 1.0);
    return unary(c, [&](double v) { return v > a ? v : 0.0; });
  }
  if (op == "Gelu") {
    bool tanhForm = attrs.getString("approximate", "none") == "tanh";
    return unary(c, [&](double v) {
      return tanhForm ? 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) *
                                                  (v + 0.044715 * v * v * v)))
                      : 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    });
  }
  (void)alpha;
  (void)beta;
  if (op == "Clip") {
    double lo = -std::numeric_limits<double>::infinity(),
           hi = std::numeric_limits<double>::infinity();
    if (opset < 11) {
      lo = attrs.getFloat("min", lo);
      hi = attrs.getFloat("max", hi);
    } else {
      if (const Tensor *t = c.input(1))
        lo = t->values.at(0);
      if (const Tensor *t = c.input(2))
        hi = t->values.at(0);
    }
    return unary(c, [&](double v) { return std::min(std::max(v, lo), hi); });
  }
  if (op == "MatMul") return matmul(c);
  if (op == "Gemm") return gemm(c);
  if (op == "Softmax") return softmax(c, 0);
  if (op == "LogSoftmax") return softmax(c, 1);
  if (op == "Hardmax") return softmax(c, 2);
  if (op.rfind("Reduce", 0) == 0) return reduce(c, op.substr(6));
  if (op == "LayerNormalization") return normalize(c, false, false);
  if (op == "SimplifiedLayerNormalization" || op == "RMSNormalization")
    return normalize(c, true, false);
  if (op == "SkipSimplifiedLayerNormalization") return normalize(c, true, true);
  if (op == "BatchNormalization") return batchNorm(c);
  if (op == "Conv") return conv(c);
  if (op == "MaxPool") return pool(c, true, false);
  if (op == "AveragePool") return pool(c, false, false);
  if (op == "GlobalAveragePool") return pool(c, false, true);
  if (op == "GlobalMaxPool") return pool(c, true, true);
  if (op == "Transpose") return transpose(c);
  if (op == "Tile") return tile(c);
  if (op == "Resize") return resize(c);
  if (op == "Pad") return pad(c);
  if (op == "CumSum") return cumsum(c);
  if (op == "Trilu") return trilu(c);
  if (op == "DequantizeLinear" || op == "QuantizeLinear")
    return quantizeLinear(c, op == "QuantizeLinear");
  if (op == "InstanceNormalization") return instanceNorm(c);
  if (op == "DepthToSpace" || op == "SpaceToDepth")
    return depthToSpace(c, op == "DepthToSpace");
  if (op == "Concat") return concat(c);
  if (op == "Split") return split(c);
  if (op == "Slice") return slice(c);
  if (op == "Gather") return gather(c);
  if (op == "Expand") return expand(c);
  if (op == "Cast") return cast(c, int32_t(attrs.getInt("to", 1)));
  if (op == "ArgMax" || op == "ArgMin") {
    if (!x)
      return c.fail("missing input");
    int64_t rank = int64_t(x->shape.size()), axis = attrs.getInt("axis", 0);
    if (!normalizeAxis(axis, rank))
      return c.fail("axis out of range");
    bool last = attrs.getInt("select_last_index", 0) != 0;
    bool keep = attrs.getInt("keepdims", 1) != 0;
    int64_t outer = 1, inner = 1, n = x->shape[axis];
    for (int64_t i = 0; i < axis; ++i)
      outer *= x->shape[i];
    for (int64_t i = axis + 1; i < rank; ++i)
      inner *= x->shape[i];
    Tensor &r = c.output(0);
    r.dataType = 7;
    r.shape = x->shape;
    if (keep)
      r.shape[axis] = 1;
    else
      r.shape.erase(r.shape.begin() + axis);
    r.values.clear();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t in = 0; in < inner; ++in) {
        int64_t best = 0;
        for (int64_t k = 1; k < n; ++k) {
          double v = x->values[(o * n + k) * inner + in];
          double b = x->values[(o * n + best) * inner + in];
          bool better = op == "ArgMax" ? (last ? v >= b : v > b)
                                       : (last ? v <= b : v < b);
          if (better)
            best = k;
        }
        r.values.push_back(double(best));
      }
    return true;
  }
  if (op == "Shape" || op == "Size") {
    if (!x)
      return c.fail("missing input");
    Tensor &r = c.output(0);
    r.dataType = 7;
    if (op == "Size") {
      r.shape = {};
      r.values = {double(x->count())};
      return true;
    }
    int64_t rank = int64_t(x->shape.size());
    int64_t start = attrs.getInt("start", 0), end = attrs.getInt("end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    r.shape = {end - start};
    r.values.assign(x->shape.begin() + start, x->shape.begin() + end);
    return true;
  }
  if (op == "Reshape") {
    const Tensor *s = c.input(1);
    Shape shape;
    if (s)
      shape.assign(s->values.begin(), s->values.end());
    else if (attrs.intLists.count("shape"))
      shape = attrs.intLists.at("shape");
    if (!x)
      return c.fail("missing input");
    bool allowZero = attrs.getInt("allowzero", 0) != 0;
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 0 && !allowZero) {
        if (i >= x->shape.size())
          return c.fail("0 in shape past the input's rank");
        shape[i] = x->shape[i];
      }
      if (shape[i] == -1) {
        if (infer >= 0)
          return c.fail("two -1 in shape");
        infer = int64_t(i);
      } else {
        known *= shape[i];
      }
    }
    if (infer >= 0)
      shape[infer] = known ? x->count() / known : 0;
    return reshapeTo(c, *x, shape);
  }
  if (op == "Flatten") {
    if (!x)
      return c.fail("missing input");
    int64_t rank = int64_t(x->shape.size()), axis = attrs.getInt("axis", 1);
    if (axis < 0)
      axis += rank;
    if (axis < 0 || axis > rank)
      return c.fail("axis out of range");
    int64_t outer = 1;
    for (int64_t i = 0; i < axis; ++i)
      outer *= x->shape[i];
    return reshapeTo(c, *x, {outer, outer ? x->count() / outer : 0});
  }
  if (op == "Squeeze" || op == "Unsqueeze") {
    if (!x)
      return c.fail("missing input");
    std::vector<int64_t> axes;
    bool present;
    c.intList(1, "axes", axes, present);
    Shape shape = x->shape;
    if (op == "Squeeze") {
      int64_t rank = int64_t(shape.size());
      std::vector<bool> drop(rank, false);
      if (!present)
        for (int64_t i = 0; i < rank; ++i)
          drop[i] = shape[i] == 1;
      for (int64_t a : axes) {
        if (!normalizeAxis(a, rank) || shape[a] != 1)
          return c.fail("cannot squeeze that axis");
        drop[a] = true;
      }
      Shape out;
      for (int64_t i = 0; i < rank; ++i)
        if (!drop[i])
          out.push_back(shape[i]);
      return reshapeTo(c, *x, out);
    }
    int64_t rank = int64_t(shape.size() + axes.size());
    for (int64_t &a : axes)
      if (!normalizeAxis(a, rank))
        return c.fail("axis out of range");
    std::sort(axes.begin(), axes.end());
    for (int64_t a : axes)
      shape.insert(shape.begin() + a, 1);
    return reshapeTo(c, *x, shape);
  }
  if (op == "Constant") {
    Tensor &r = c.output(0);
    if (attrs.tensors.count("value")) {
      r = attrs.tensors.at("value");
    } else if (attrs.floats.count("value_float")) {
      r.dataType = 1;
      r.values = {attrs.floats.at("value_float")};
    } else if (attrs.ints.count("value_int")) {
      r.dataType = 7;
      r.values = {double(attrs.ints.at("value_int"))};
    } else if (attrs.floatLists.count("value_floats")) {
      r.dataType = 1;
      r.values = attrs.floatLists.at("value_floats");
      r.shape = {int64_t(r.values.size())};
    } else if (attrs.intLists.count("value_ints")) {
      r.dataType = 7;
      const auto &v = attrs.intLists.at("value_ints");
      r.values.assign(v.begin(), v.end());
      r.shape = {int64_t(v.size())};
    } else {
      return c.fail("no value attribute lowbit reads");
    }
    r.round();
    return true;
  }
  if (op == "ConstantOfShape") {
    Tensor &r = c.output(0);
    r.dataType = 1;
    double v = 0;
    if (attrs.tensors.count("value")) {
      r.dataType = attrs.tensors.at("value").dataType;
      v = attrs.tensors.at("value").values.at(0);
    }
    if (x)
      r.shape.assign(x->values.begin(), x->values.end());
    r.values.assign(r.count(), v);
    return true;
  }
  if (op == "Range") {
    const Tensor *s = c.input(0), *l = c.input(1), *d = c.input(2);
    if (!s || !l || !d)
      return c.fail("needs start, limit and delta");
    double start = s->values.at(0), limit = l->values.at(0),
           delta = d->values.at(0);
    if (delta == 0)
      return c.fail("delta is 0");
    int64_t n = std::max<int64_t>(0, int64_t(std::ceil((limit - start) / delta)));
    Tensor &r = c.output(0);
    r.dataType = s->dataType;
    r.shape = {n};
    r.values.resize(n);
    for (int64_t i = 0; i < n; ++i)
      r.values[i] = start + double(i) * delta;
    r.round();
    return true;
  }
  return c.fail("operator not dispatched");
}

} // namespace lowbit::onnxrt
