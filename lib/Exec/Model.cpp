//===- Model.cpp - The executor's graph and its validation ----------------===//

#include "lowbit/Exec/Model.h"

#include <cmath>
#include <set>

namespace lowbit::exec {

const char *opKindName(OpKind kind) {
  switch (kind) {
  case OpKind::Embedding:
    return "embedding";
  case OpKind::Matmul:
    return "matmul";
  case OpKind::MatmulResidual:
    return "matmul_residual";
  case OpKind::RMSNorm:
    return "rms_norm";
  case OpKind::LayerNorm:
    return "layer_norm";
  case OpKind::Rope:
    return "rope";
  case OpKind::Attention:
    return "attention";
  case OpKind::Add:
    return "add";
  case OpKind::Mul:
    return "mul";
  case OpKind::SiLU:
    return "silu";
  case OpKind::GELU:
    return "gelu";
  case OpKind::Softmax:
    return "softmax";
  case OpKind::SwiGLU:
    return "swiglu";
  case OpKind::Split:
    return "split";
  case OpKind::Scale:
    return "scale";
  case OpKind::MoEFFN:
    return "moe_ffn";
  case OpKind::SoftCap:
    return "softcap";
  case OpKind::Boundary:
    return "layer_boundary";
  }
  return "?";
}

bool opKindFromName(const std::string &name, OpKind &kind) {
  for (int k = 0; k <= static_cast<int>(OpKind::Boundary); ++k)
    if (name == opKindName(static_cast<OpKind>(k))) {
      kind = static_cast<OpKind>(k);
      return true;
    }
  return false;
}

GraphSummary summarize(const Graph &g) {
  GraphSummary s;
  if (g.result >= 0 && g.result < static_cast<int32_t>(g.valueWidth.size()))
    s.vocab = g.valueWidth[g.result];
  s.layers = g.boundaries.empty() ? g.cache.layers
                                  : static_cast<int64_t>(g.boundaries.size()) - 1;
  s.kvHeads = g.cache.kvHeads;
  s.headDim = g.cache.headDim;
  s.context = g.cache.context;
  auto width = [&](int32_t v) {
    return v >= 0 && v < static_cast<int32_t>(g.valueWidth.size())
               ? g.valueWidth[v]
               : 0;
  };
  for (const GraphOp &op : g.ops) {
    if (op.outputs.empty())
      continue;
    if (op.kind == OpKind::Embedding && !s.embedding)
      s.embedding = width(op.outputs[0]);
    else if (op.kind == OpKind::Attention && !s.heads)
      s.heads = op.heads;
    else if ((op.kind == OpKind::SwiGLU || op.kind == OpKind::GELU) &&
             !s.feedForward)
      s.feedForward = width(op.outputs[0]);
  }
  return s;
}

const WeightRef *ModelDesc::find(const std::string &name) const {
  auto it = weights.find(name);
  return it == weights.end() ? nullptr : &it->second;
}

std::string ModelDesc::outputWeight() const {
  for (auto it = graph.ops.rbegin(); it != graph.ops.rend(); ++it)
    for (int32_t out : it->outputs)
      if (out == graph.result)
        return it->weight;
  return "";
}

namespace {

std::string str(int64_t v) { return std::to_string(v); }

/// Checks one op against the value widths and the weights.
class GraphChecker {
public:
  GraphChecker(const ModelDesc &model, bool requireData, std::string &err)
      : m_(model), requireData_(requireData), g_(model.graph), err_(err) {}

  bool run() {
    const Graph &g = g_;
    if (g.valueWidth.empty() || g.result < 0 ||
        g.result >= static_cast<int32_t>(g.valueWidth.size()))
      return fail(nullptr, "the graph has no result");
    for (int64_t w : g.valueWidth)
      if (w <= 0)
        return fail(nullptr, "a value has width " + str(w));
    if (m_.vocabSize != g.valueWidth[g.result])
      return fail(nullptr, "the logits have width " +
                               str(g.valueWidth[g.result]) +
                               " but the vocabulary has " +
                               str(m_.vocabSize) + " tokens");
    const KVCacheShape &c = g.cache;
    if (c.layers < 0 || c.context < 0 || c.kvHeads < 0 || c.headDim < 0)
      return fail(nullptr, "invalid KV cache shape");
    // Sizes come from files (a manifest): keep every product far from
    // overflowing before anything is allocated.
    if (double(c.layers) * double(c.context) * double(c.kvHeads) *
            double(c.headDim) >
        double(int64_t(1) << 40))
      return fail(nullptr, "the KV cache would hold more than 2^40 values");
    for (int64_t w : g.valueWidth)
      if (w > (int64_t(1) << 31))
        return fail(nullptr, "a value is wider than 2^31");
    for (const GraphOp &op : g.ops)
      if (!check(op))
        return false;
    if (!defined_.count(g.result))
      return fail(nullptr, "the result value is never computed");
    for (size_t i = 0; i < g.boundaries.size(); ++i)
      if (g.boundaries[i] >= g.ops.size() ||
          g.ops[g.boundaries[i]].kind != OpKind::Boundary ||
          (i > 0 && g.boundaries[i] <= g.boundaries[i - 1]))
        return fail(nullptr, "invalid layer boundary list");
    return true;
  }

private:
  bool fail(const GraphOp *op, const std::string &what) {
    err_ = op ? (op->where.empty() ? "" : op->where + ": ") +
                    std::string("'") + opKindName(op->kind) + "': " + what
              : what;
    return false;
  }
  int64_t width(int32_t v) const { return g_.valueWidth[v]; }

  /// The weight `name` as rows x cols (rows = -1: any).
  const WeightRef *weight(const GraphOp &op, const std::string &name,
                          int64_t rows, int64_t cols) {
    const WeightRef *w = m_.find(name);
    if (!w) {
      fail(&op, "weight '" + name + "' is missing");
      return nullptr;
    }
    if ((rows >= 0 && w->rows != rows) || w->cols != cols) {
      fail(&op, "weight '" + name + "' is [" + str(w->rows) + ", " +
                    str(w->cols) + "], expected [" +
                    (rows >= 0 ? str(rows) : std::string("?")) + ", " +
                    str(cols) + "]");
      return nullptr;
    }
    const formats::FormatInfo &fi = formats::info(w->format);
    if (!formats::hasCodec(w->format)) {
      fail(&op, "weight '" + name + "' has format " + fi.name +
                    ", which has no decoder");
      return nullptr;
    }
    if (w->rowBytes != formats::rowBytes(fi, static_cast<uint64_t>(cols)) ||
        w->rowBytes == 0 || (requireData_ && !w->data)) {
      fail(&op, "weight '" + name + "': rows of " + str(cols) +
                    " weights do not fit format " + fi.name);
      return nullptr;
    }
    return w;
  }

  bool arity(const GraphOp &op, size_t inputs, size_t outputs) {
    if (op.inputs.size() != inputs || op.outputs.size() != outputs)
      return fail(&op, "takes " + str(inputs) + " inputs and " +
                           str(outputs) + " results");
    return true;
  }

  bool sameWidths(const GraphOp &op) {
    for (int32_t v : op.inputs)
      if (width(v) != width(op.outputs[0]))
        return fail(&op, "operand widths " + str(width(v)) + " and " +
                             str(width(op.outputs[0])) + " differ");
    return true;
  }

  bool check(const GraphOp &op) {
    const int32_t n = static_cast<int32_t>(g_.valueWidth.size());
    for (int32_t v : op.inputs)
      if (v < 0 || v >= n || !defined_.count(v))
        return fail(&op, "reads a value that is not computed before it");
    for (int32_t v : op.outputs)
      if (v < 0 || v >= n || !defined_.insert(v).second)
        return fail(&op, "result value numbering is invalid");
    switch (op.kind) {
    case OpKind::Embedding: {
      if (!arity(op, 0, 1))
        return false;
      const WeightRef *w = weight(op, op.weight, -1, width(op.outputs[0]));
      if (!w)
        return false;
      if (w->rows != m_.vocabSize)
        return fail(&op, "the table has " + str(w->rows) +
                             " rows but the vocabulary has " +
                             str(m_.vocabSize) + " tokens");
      return true;
    }
    case OpKind::Matmul:
    case OpKind::MatmulResidual: {
      if (!arity(op, op.kind == OpKind::Matmul ? 1 : 2, 1))
        return false;
      const int64_t out = width(op.outputs[0]);
      if (!weight(op, op.weight, out, width(op.inputs[0])))
        return false;
      if (!op.bias.empty() && !weight(op, op.bias, 1, out))
        return false;
      if (op.kind == OpKind::MatmulResidual && width(op.inputs[1]) != out)
        return fail(&op, "the residual has width " + str(width(op.inputs[1])) +
                             ", the product " + str(out));
      return true;
    }
    case OpKind::RMSNorm:
    case OpKind::LayerNorm: {
      if (!arity(op, 1, 1) || !sameWidths(op))
        return false;
      int64_t d = width(op.inputs[0]);
      if (op.group != 0) {
        if (op.kind != OpKind::RMSNorm || op.group < 0 || d % op.group != 0)
          return fail(&op, "group " + str(op.group) +
                               " does not divide the width " + str(d));
        d = op.group;
      }
      if (!weight(op, op.weight, 1, d) ||
          (!op.bias.empty() && !weight(op, op.bias, 1, d)))
        return false;
      if (!(op.epsilon >= 0.0f))
        return fail(&op, "invalid epsilon");
      return true;
    }
    case OpKind::Rope:
      if (!arity(op, 1, 1) || !sameWidths(op))
        return false;
      if (op.heads <= 0 || op.headDim <= 0 ||
          op.heads * op.headDim != width(op.inputs[0]))
        return fail(&op, str(op.heads) + " heads of " + str(op.headDim) +
                             " do not make the input width " +
                             str(width(op.inputs[0])));
      if (op.ropeDims <= 0 || op.ropeDims > op.headDim || op.ropeDims % 2)
        return fail(&op, "invalid rotated dimension count " +
                             str(op.ropeDims) + " (head size " +
                             str(op.headDim) + ")");
      if (!op.weight.empty() && !weight(op, op.weight, 1, op.ropeDims / 2))
        return false;
      if (!op.longWeight.empty() &&
          (op.weight.empty() || op.originalContext <= 0 ||
           !weight(op, op.longWeight, 1, op.ropeDims / 2)))
        return op.weight.empty() || op.originalContext <= 0
                   ? fail(&op, "long RoPE factors need short ones and the "
                               "original context")
                   : false;
      if (!(op.theta > 0) || !(op.freqScale > 0) ||
          !std::isfinite(op.attnFactor) || !std::isfinite(op.extFactor))
        return fail(&op, "RoPE base and frequency scale must be positive, "
                         "and the YaRN factors finite");
      if (op.extFactor != 0 &&
          (op.originalContext <= 0 || !(op.betaFast > 0) ||
           !(op.betaSlow > 0)))
        return fail(&op, "YaRN needs the original context length and "
                         "positive beta_fast and beta_slow");
      return true;
    case OpKind::Attention: {
      if (!arity(op, 3, 1))
        return false;
      const KVCacheShape &c = g_.cache;
      if (op.cacheLayer < 0 || op.cacheLayer >= c.layers)
        return fail(&op, "cache layer " + str(op.cacheLayer) +
                             " is outside the cache's " + str(c.layers));
      if (op.window < 0)
        return fail(&op, "negative attention window");
      if (!(op.softcap >= 0) || !std::isfinite(op.softcap))
        return fail(&op, "the attention soft cap must be >= 0");
      if (op.heads <= 0 || c.kvHeads <= 0 || op.heads % c.kvHeads != 0)
        return fail(&op, str(op.heads) + " query heads do not group over " +
                             str(c.kvHeads) + " KV heads");
      const int64_t q = op.heads * c.headDim, kv = c.kvHeads * c.headDim;
      if (width(op.inputs[0]) != q || width(op.outputs[0]) != q ||
          width(op.inputs[1]) != kv || width(op.inputs[2]) != kv)
        return fail(&op, "query/output width must be " + str(q) +
                             " and key/value width " + str(kv));
      return true;
    }
    case OpKind::Add:
    case OpKind::Mul:
    case OpKind::SwiGLU:
      return arity(op, 2, 1) && sameWidths(op);
    case OpKind::SiLU:
    case OpKind::GELU:
    case OpKind::Softmax:
    case OpKind::Scale:
    case OpKind::Boundary:
      return arity(op, 1, 1) && sameWidths(op);
    case OpKind::SoftCap:
      if (!arity(op, 1, 1) || !sameWidths(op))
        return false;
      if (!(op.scale > 0) || !std::isfinite(op.scale))
        return fail(&op, "the soft cap must be positive");
      return true;
    case OpKind::MoEFFN: {
      if (!arity(op, 1, 1) || !sameWidths(op))
        return false;
      const int64_t d = width(op.inputs[0]);
      const WeightRef *router = weight(op, op.weight, -1, d);
      if (!router)
        return false;
      const int64_t e = router->rows;
      if (op.experts.size() != 3 && op.experts.size() != 7)
        return fail(&op, "needs gate, up and down expert weights (and four "
                         "shared-expert weights, or none)");
      if (op.topK <= 0 || op.topK > e)
        return fail(&op,
                    "top_k " + str(op.topK) + " is not in [1, " + str(e) + "]");
      const WeightRef *gate = m_.find(op.experts[0]);
      if (!gate || gate->rows % e != 0)
        return fail(&op, "gate experts must stack " + str(e) + " matrices");
      const int64_t f = gate->rows / e;
      if (!weight(op, op.experts[0], e * f, d) ||
          !weight(op, op.experts[1], e * f, d) ||
          !weight(op, op.experts[2], e * d, f))
        return false;
      if (op.experts.size() == 7) {
        const WeightRef *sg = m_.find(op.experts[3]);
        if (!sg)
          return fail(&op, "weight '" + op.experts[3] + "' is missing");
        if (!weight(op, op.experts[3], sg->rows, d) ||
            !weight(op, op.experts[4], sg->rows, d) ||
            !weight(op, op.experts[5], d, sg->rows) ||
            !weight(op, op.experts[6], 1, d))
          return false;
      }
      return true;
    }
    case OpKind::Split: {
      if (op.inputs.size() != 1 || op.outputs.size() != op.sizes.size() ||
          op.sizes.empty())
        return fail(&op, "needs one input and a result per size");
      int64_t total = 0;
      for (size_t i = 0; i < op.sizes.size(); ++i) {
        if (op.sizes[i] != width(op.outputs[i]))
          return fail(&op, "result widths do not match the sizes");
        total += op.sizes[i];
      }
      if (total != width(op.inputs[0]))
        return fail(&op, "sizes add up to " + str(total) + ", not " +
                             str(width(op.inputs[0])));
      return true;
    }
    }
    return fail(&op, "unknown op");
  }

  const ModelDesc &m_;
  bool requireData_ = true;
  const Graph &g_;
  std::string &err_;
  std::set<int32_t> defined_;
};

} // namespace

bool ModelDesc::validate(std::string &err, bool requireData) const {
  if (vocabSize <= 0) {
    err = "the model has no vocabulary";
    return false;
  }
  return GraphChecker(*this, requireData, err).run();
}

} // namespace lowbit::exec
