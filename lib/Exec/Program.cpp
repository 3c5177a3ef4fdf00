//===- Program.cpp - Buffer plan and op records of a graph ----------------===//

#include "lowbit/Exec/Program.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <map>

namespace lowbit::exec {

static_assert(static_cast<int>(OpKind::Embedding) == LB_OP_EMBEDDING &&
                  static_cast<int>(OpKind::Matmul) == LB_OP_MATMUL &&
                  static_cast<int>(OpKind::MatmulResidual) ==
                      LB_OP_MATMUL_RESIDUAL &&
                  static_cast<int>(OpKind::RMSNorm) == LB_OP_RMS_NORM &&
                  static_cast<int>(OpKind::LayerNorm) == LB_OP_LAYER_NORM &&
                  static_cast<int>(OpKind::Rope) == LB_OP_ROPE &&
                  static_cast<int>(OpKind::Attention) == LB_OP_ATTENTION &&
                  static_cast<int>(OpKind::Add) == LB_OP_ADD &&
                  static_cast<int>(OpKind::Mul) == LB_OP_MUL &&
                  static_cast<int>(OpKind::SiLU) == LB_OP_SILU &&
                  static_cast<int>(OpKind::GELU) == LB_OP_GELU &&
                  static_cast<int>(OpKind::Softmax) == LB_OP_SOFTMAX &&
                  static_cast<int>(OpKind::SwiGLU) == LB_OP_SWIGLU &&
                  static_cast<int>(OpKind::Split) == LB_OP_SPLIT &&
                  static_cast<int>(OpKind::Scale) == LB_OP_SCALE &&
                  static_cast<int>(OpKind::MoEFFN) == LB_OP_MOE_FFN &&
                  static_cast<int>(OpKind::SoftCap) == LB_OP_SOFTCAP &&
                  static_cast<int>(OpKind::Boundary) ==
                      LB_OP_LAYER_BOUNDARY &&
                  static_cast<int>(OpKind::Boundary) + 1 == LB_OP_KIND_COUNT,
              "lb_op_kind must list exec::OpKind in order");
// The generator writes the records field by field: no hidden padding.
static_assert(sizeof(lb_op) == 184 && sizeof(lb_program) == 120 &&
                  offsetof(lb_op, original_context) == 80 &&
                  offsetof(lb_program, cache_layers) == 32,
              "lb_op / lb_program layout changed: update the generator");

namespace {

/// Ops that compute each output row from the same row of their inputs (and
/// may therefore run on the wanted rows only).
bool isRowWise(OpKind kind) {
  switch (kind) {
  case OpKind::Embedding:
  case OpKind::Rope:
  case OpKind::Attention:
    return false;
  default:
    return true;
  }
}

/// Ops that may write their result over their first input (element i of the
/// result depends only on element i of the inputs, or the op rewrites its
/// input in place anyway).
bool mayOverwriteInput(OpKind kind) {
  switch (kind) {
  case OpKind::Rope:
  case OpKind::Add:
  case OpKind::Mul:
  case OpKind::SiLU:
  case OpKind::GELU:
  case OpKind::Softmax:
  case OpKind::SwiGLU:
  case OpKind::Scale:
  case OpKind::SoftCap:
    return true;
  default:
    return false;
  }
}

} // namespace

ProgramPlan planProgram(const Graph &g) {
  ProgramPlan p;
  const size_t nValues = g.valueWidth.size(), nOps = g.ops.size();
  constexpr size_t kNever = std::numeric_limits<size_t>::max();
  p.definedAt.assign(nValues, kNever);
  std::vector<size_t> lastUse(nValues, kNever);
  for (size_t i = 0; i < nOps; ++i) {
    for (int32_t v : g.ops[i].outputs)
      p.definedAt[v] = i;
    for (int32_t v : g.ops[i].inputs)
      lastUse[v] = i;
    if (g.ops[i].kind == OpKind::Attention)
      p.maxAttentionHeads = std::max(p.maxAttentionHeads, g.ops[i].heads);
  }
  lastUse[g.result] = nOps; // read by eval() after the last op

  // The output head: the ops after the last boundary, when all are row-wise.
  p.headStart = nOps;
  if (!g.boundaries.empty()) {
    const size_t b = g.boundaries.back();
    bool rowWise = true;
    for (size_t i = b + 1; i < nOps; ++i)
      rowWise &= isRowWise(g.ops[i].kind);
    if (rowWise)
      p.headStart = b + 1;
  }
  p.resultInHead = p.definedAt[g.result] >= p.headStart;

  // Which boundaries cut the graph: nothing but their state is read across.
  p.boundaryCut.assign(g.boundaries.size(), true);
  for (size_t j = 0; j < nOps; ++j)
    for (int32_t v : g.ops[j].inputs)
      for (size_t b = 0; b < g.boundaries.size(); ++b) {
        const size_t at = g.boundaries[b];
        if (p.definedAt[v] <= at && at < j && v != g.ops[at].outputs[0])
          p.boundaryCut[b] = false;
      }

  // Widths per token: every buffer holds a batch of rows of its width, so
  // comparing widths compares sizes.
  p.bufferOf.assign(nValues, -1);
  std::vector<int64_t> &capacity = p.bufferWidth;
  std::vector<int> refs; // live values per buffer
  std::vector<int32_t> freeList;
  auto take = [&](int64_t floats) -> int32_t {
    int32_t best = -1;
    size_t bestAt = 0;
    for (size_t k = 0; k < freeList.size(); ++k) {
      const int32_t b = freeList[k];
      if (capacity[b] >= floats &&
          (best < 0 || capacity[b] < capacity[best])) {
        best = b;
        bestAt = k;
      }
    }
    if (best >= 0) {
      freeList.erase(freeList.begin() + bestAt);
      return best;
    }
    capacity.push_back(floats);
    refs.push_back(0);
    return static_cast<int32_t>(capacity.size() - 1);
  };
  auto release = [&](int32_t v) {
    if (--refs[p.bufferOf[v]] == 0)
      freeList.push_back(p.bufferOf[v]);
  };
  for (size_t i = 0; i < nOps; ++i) {
    const GraphOp &op = g.ops[i];
    for (size_t k = 0; k < op.outputs.size(); ++k) {
      const int32_t out = op.outputs[k];
      const int64_t floats = g.valueWidth[out];
      int32_t buffer = -1;
      if (k == 0 && !op.inputs.empty()) {
        const int32_t in = op.inputs[0];
        const bool crossesHead =
            i >= p.headStart && p.definedAt[in] < p.headStart;
        if (op.kind == OpKind::Boundary && !crossesHead)
          buffer = p.bufferOf[in];
        else if (mayOverwriteInput(op.kind) && !crossesHead &&
                 lastUse[in] == i && refs[p.bufferOf[in]] == 1 &&
                 capacity[p.bufferOf[in]] >= floats)
          buffer = p.bufferOf[in];
      }
      if (buffer < 0)
        buffer = take(floats);
      p.bufferOf[out] = buffer;
      ++refs[buffer];
    }
    std::vector<int32_t> inputs = op.inputs;
    std::sort(inputs.begin(), inputs.end());
    inputs.erase(std::unique(inputs.begin(), inputs.end()), inputs.end());
    for (int32_t v : inputs)
      if (lastUse[v] == i)
        release(v);
    for (int32_t v : op.outputs)
      if (lastUse[v] == kNever)
        release(v); // computed but never read (e.g. an unused split part)
  }
  return p;
}

void buildOpRecords(const Graph &g, const ProgramPlan &plan, OpRecords &out) {
  out.ops.clear();
  out.weightNames.clear();
  out.weightUse.clear();
  std::map<std::string, int32_t> index;
  auto weight = [&](const std::string &name) -> int32_t {
    if (name.empty())
      return -1;
    auto [it, added] = index.emplace(
        name, static_cast<int32_t>(out.weightNames.size()));
    if (added) {
      out.weightNames.push_back(name);
      out.weightUse.push_back(0);
    }
    return it->second;
  };
  auto ints = [&](std::vector<int32_t> v) -> const int32_t * {
    if (v.empty())
      return nullptr;
    out.ints_.push_back(std::move(v));
    return out.ints_.back().data();
  };
  for (size_t i = 0; i < g.ops.size(); ++i) {
    const GraphOp &op = g.ops[i];
    lb_op r = {};
    r.kind = static_cast<int32_t>(op.kind);
    const bool head = i >= plan.headStart;
    r.flags = (head ? LB_OP_IN_HEAD : 0u) |
              (op.normalize ? LB_OP_NORMALIZE : 0u) |
              (op.ropeMode == RopeMode::NeoX ? LB_OP_ROPE_NEOX : 0u);
    r.num_inputs = static_cast<int32_t>(op.inputs.size());
    r.num_outputs = static_cast<int32_t>(op.outputs.size());
    for (size_t k = 0; k < op.inputs.size() && k < 32; ++k)
      if (head && plan.definedAt[op.inputs[k]] < plan.headStart)
        r.inputs_before_head |= 1u << k;
    r.weight = weight(op.weight);
    if (op.kind == OpKind::Matmul || op.kind == OpKind::MatmulResidual)
      out.weightUse[r.weight] |= LB_WEIGHT_MATMUL;
    r.bias = weight(op.bias);
    r.long_weight = weight(op.longWeight);
    r.epsilon = op.epsilon;
    r.theta = op.theta;
    r.freq_scale = op.freqScale;
    r.ext_factor = op.extFactor;
    r.attn_factor = op.attnFactor;
    r.beta_fast = op.betaFast;
    r.beta_slow = op.betaSlow;
    r.scale = op.scale;
    r.softcap = op.softcap;
    r.original_context = op.originalContext;
    r.heads = op.heads;
    r.head_dim = op.headDim;
    r.rope_dims = op.ropeDims;
    r.cache_layer = op.cacheLayer;
    r.group = op.group;
    r.window = op.window;
    r.top_k = op.topK;
    r.inputs = ints(op.inputs);
    r.outputs = ints(op.outputs);
    std::vector<int32_t> experts;
    for (const std::string &e : op.experts) {
      experts.push_back(weight(e));
      if (experts.size() <= 3) // the routed stacks: gate, up, down
        out.weightUse[experts.back()] |= LB_WEIGHT_EXPERTS;
    }
    r.num_experts = static_cast<int32_t>(experts.size());
    r.experts = ints(std::move(experts));
    r.num_sizes = static_cast<int32_t>(op.sizes.size());
    if (!op.sizes.empty()) {
      out.sizes_.push_back(op.sizes);
      r.sizes = out.sizes_.back().data();
    }
    out.locations_.push_back(op.where);
    r.location = out.locations_.back().c_str();
    out.ops.push_back(r);
  }
}

} // namespace lowbit::exec
