//===- IRModel.cpp - lowbit IR as a model the executor runs ---------------===//
//
// Translates a module's `func.func @forward` op for op into the executor's
// graph (exec::Graph): one GraphOp per lowbit op, values numbered in program
// order, weights named by their symbols. Nothing here knows an architecture;
// what the IR says is what runs.
//
//===----------------------------------------------------------------------===//
#include "LowBit/Exec/IRModel.h"

#include "LowBit/IR/LowBit.h"
#include "LowBit/Translation/GGUFExport.h"
#include "LowBit/Translation/GGUFImport.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <functional>
#include <optional>

using namespace mlir;
using namespace mlir::lowbit;
namespace exec = ::lowbit::exec;
namespace formats = ::lowbit::formats;
namespace gguf = ::lowbit::gguf;

namespace {

/// "file:line:col" of a location (looking through names and call sites),
/// with the name of a NameLoc after it: what error messages point at.
std::string describeLocation(Location loc) {
  std::string where, name;
  loc->walk([&](Location inner) {
    if (auto file = dyn_cast<FileLineColLoc>(inner)) {
      if (where.empty())
        where = (file.getFilename().str() + ":" +
                 std::to_string(file.getLine()) + ":" +
                 std::to_string(file.getColumn()));
    } else if (auto named = dyn_cast<NameLoc>(inner)) {
      if (name.empty())
        name = named.getName().str();
    }
    return WalkResult::advance();
  });
  if (!name.empty())
    where += (where.empty() ? "" : " ") + ("(" + name + ")");
  return where;
}

class GraphTranslator {
public:
  GraphTranslator(ModuleOp module, exec::ModelDesc &out)
      : module(module), out(out), graph(out.graph) {}

  LogicalResult run();

private:
  /// The width of an activation value: a tensor<?xWxf32>.
  FailureOr<int64_t> width(Operation *user, Value v) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type || type.getRank() != 2 || !type.getElementType().isF32() ||
        ShapedType::isDynamic(type.getDimSize(1)))
      return user->emitOpError()
             << "operand of type " << v.getType()
             << " is not an activation the executor runs (tensor<?xNxf32>)";
    return type.getDimSize(1);
  }
  FailureOr<int32_t> input(Operation *user, Value v) {
    auto it = ids.find(v);
    if (it == ids.end())
      return user->emitOpError()
             << "reads a value the executor cannot compute";
    return it->second;
  }
  FailureOr<int32_t> result(Operation *op, Value v) {
    FailureOr<int64_t> w = width(op, v);
    if (failed(w))
      return failure();
    int32_t id = static_cast<int32_t>(graph.valueWidth.size());
    graph.valueWidth.push_back(*w);
    ids[v] = id;
    return id;
  }
  /// The symbol of a weight operand, recorded for the executor.
  FailureOr<std::string> weight(Operation *user, Value v) {
    auto ref = v.getDefiningOp<WeightOp>();
    if (!ref)
      return user->emitOpError()
             << "has a weight operand computed in the graph; the executor "
                "reads weights from lowbit.weight";
    std::string name = ref.getName().str();
    if (out.weights.count(name))
      return name;
    auto global = module.lookupSymbol<GlobalWeightOp>(name);
    if (!global)
      return user->emitOpError() << "uses weight @" << name
                                 << ", which the module does not declare";
    QTensorType type = global.getWeightType();
    if (type.getLayout() && type.getLayout().getRows() != 1)
      return user->emitOpError()
             << "uses weight @" << name << ", which is packed for a target ("
             << type.getLayout()
             << "); the executor reads row-major weights, so run it on the "
                "module before lowbit-pack-weights";
    return user->emitOpError() << "uses weight @" << name << " of type "
                               << type << ", which is not a matrix or vector";
  }
  LogicalResult requireArg(Operation *user, Value v, unsigned index,
                           const char *what) {
    auto arg = dyn_cast<BlockArgument>(v);
    if (!arg || arg.getOwner() != body || arg.getArgNumber() != index)
      return user->emitOpError()
             << "must take the " << what << " from @forward's argument #"
             << index;
    return success();
  }

  /// Appends `op` translated into `g` with its inputs and results.
  LogicalResult add(Operation *op, exec::GraphOp g, ValueRange inputs,
                    ValueRange results) {
    for (Value v : inputs) {
      FailureOr<int32_t> id = input(op, v);
      if (failed(id))
        return failure();
      g.inputs.push_back(*id);
    }
    for (Value v : results) {
      FailureOr<int32_t> id = result(op, v);
      if (failed(id))
        return failure();
      g.outputs.push_back(*id);
    }
    g.where = describeLocation(op->getLoc());
    graph.ops.push_back(std::move(g));
    return success();
  }

  LogicalResult translate(Operation &op);

  ModuleOp module;
  exec::ModelDesc &out;
  exec::Graph &graph;
  Block *body = nullptr;
  DenseMap<Value, int32_t> ids;
  bool sawReturn = false;
};

LogicalResult GraphTranslator::translate(Operation &op) {
  using exec::OpKind;
  auto kind = [](OpKind k) {
    exec::GraphOp g;
    g.kind = k;
    return g;
  };
  auto withWeight = [&](exec::GraphOp g, Value w, Value bias) ->
      FailureOr<exec::GraphOp> {
    FailureOr<std::string> name = weight(&op, w);
    if (failed(name))
      return failure();
    g.weight = *name;
    if (bias) {
      FailureOr<std::string> b = weight(&op, bias);
      if (failed(b))
        return failure();
      g.bias = *b;
    }
    return g;
  };
  return llvm::TypeSwitch<Operation *, LogicalResult>(&op)
      .Case<WeightOp>([](WeightOp) { return success(); })
      .Case<EmbeddingOp>([&](EmbeddingOp e) -> LogicalResult {
        if (failed(requireArg(&op, e.getIds(), 0, "token ids")))
          return failure();
        auto g = withWeight(kind(OpKind::Embedding), e.getTable(), {});
        return failed(g) ? failure() : add(&op, *g, {}, e.getResult());
      })
      .Case<MatmulOp>([&](MatmulOp m) -> LogicalResult {
        auto g = withWeight(kind(OpKind::Matmul), m.getWeight(), m.getBias());
        return failed(g) ? failure()
                         : add(&op, *g, m.getInput(), m.getResult());
      })
      .Case<MatmulResidualOp>([&](MatmulResidualOp m) -> LogicalResult {
        auto g = withWeight(kind(OpKind::MatmulResidual), m.getWeight(), {});
        return failed(g) ? failure()
                         : add(&op, *g, {m.getInput(), m.getResidual()},
                               m.getResult());
      })
      .Case<RMSNormOp>([&](RMSNormOp n) -> LogicalResult {
        auto g = withWeight(kind(OpKind::RMSNorm), n.getWeight(), {});
        if (failed(g))
          return failure();
        g->epsilon = n.getEpsilon().convertToFloat();
        g->group = n.getGroup().value_or(0);
        return add(&op, *g, n.getInput(), n.getResult());
      })
      .Case<LayerNormOp>([&](LayerNormOp n) -> LogicalResult {
        auto g = withWeight(kind(OpKind::LayerNorm), n.getWeight(),
                            n.getBias());
        if (failed(g))
          return failure();
        g->epsilon = n.getEpsilon().convertToFloat();
        return add(&op, *g, n.getInput(), n.getResult());
      })
      .Case<RopeOp>([&](RopeOp r) -> LogicalResult {
        if (failed(requireArg(&op, r.getPositions(), 1, "positions")))
          return failure();
        exec::GraphOp g = kind(OpKind::Rope);
        if (Value factors = r.getFactors()) {
          auto named = withWeight(g, factors, {});
          if (failed(named))
            return failure();
          g = *named;
        }
        if (Value longFactors = r.getLongFactors()) {
          FailureOr<std::string> name = weight(&op, longFactors);
          if (failed(name))
            return failure();
          g.longWeight = *name;
        }
        g.heads = r.getHeads();
        g.headDim = r.getHeadDim();
        g.ropeDims = r.getRopeDims();
        g.theta = r.getTheta().convertToFloat();
        g.freqScale = r.getFreqScale().convertToFloat();
        g.extFactor = r.getExtFactor().convertToFloat();
        g.attnFactor = r.getAttnFactor().convertToFloat();
        g.originalContext = r.getOriginalContext();
        g.betaFast = r.getBetaFast().convertToFloat();
        g.betaSlow = r.getBetaSlow().convertToFloat();
        g.ropeMode = r.getMode() == RopeMode::neox ? exec::RopeMode::NeoX
                                                   : exec::RopeMode::Normal;
        return add(&op, g, r.getInput(), r.getResult());
      })
      .Case<AttentionOp>([&](AttentionOp a) -> LogicalResult {
        if (failed(requireArg(&op, a.getPositions(), 1, "positions")) ||
            failed(requireArg(&op, a.getCache(), 2, "KV cache")))
          return failure();
        exec::GraphOp g = kind(OpKind::Attention);
        g.heads = a.getHeads();
        g.cacheLayer = a.getLayer();
        g.scale = a.getScale().convertToFloat();
        g.window = a.getWindow().value_or(0);
        g.softcap = a.getSoftcap().convertToFloat();
        return add(&op, g, {a.getQuery(), a.getKey(), a.getValue()},
                   a.getResult());
      })
      .Case<AddOp>([&](AddOp a) {
        return add(&op, kind(OpKind::Add), {a.getLhs(), a.getRhs()},
                   a.getResult());
      })
      .Case<MulOp>([&](MulOp m) -> LogicalResult {
        // mul(silu(g), u) is SwiGLU: one pass over memory (same arithmetic).
        for (auto [gate, up] : {std::pair(m.getLhs(), m.getRhs()),
                                std::pair(m.getRhs(), m.getLhs())}) {
          auto silu = gate.getDefiningOp<SiLUOp>();
          if (silu && silu->hasOneUse())
            return add(&op, kind(OpKind::SwiGLU), {silu.getInput(), up},
                       m.getResult());
        }
        return add(&op, kind(OpKind::Mul), {m.getLhs(), m.getRhs()},
                   m.getResult());
      })
      .Case<SiLUOp>([&](SiLUOp s) -> LogicalResult {
        if (s->hasOneUse() && isa<MulOp>(*s->user_begin()))
          return success(); // folded into the mul (above)
        return add(&op, kind(OpKind::SiLU), s.getInput(), s.getResult());
      })
      .Case<MoEFFNOp>([&](MoEFFNOp m) -> LogicalResult {
        auto g = withWeight(kind(OpKind::MoEFFN), m.getRouter(), {});
        if (failed(g))
          return failure();
        SmallVector<Value> experts = {m.getGateExps(), m.getUpExps(),
                                      m.getDownExps()};
        llvm::append_range(experts, m.getShared());
        for (Value w : experts) {
          FailureOr<std::string> name = weight(&op, w);
          if (failed(name))
            return failure();
          g->experts.push_back(*name);
        }
        g->topK = m.getTopK();
        g->normalize = m.getNormalize();
        return add(&op, *g, m.getInput(), m.getResult());
      })
      .Case<ScaleOp>([&](ScaleOp s) {
        exec::GraphOp g = kind(OpKind::Scale);
        g.scale = s.getFactor().convertToFloat();
        return add(&op, g, s.getInput(), s.getResult());
      })
      .Case<SoftCapOp>([&](SoftCapOp s) {
        exec::GraphOp g = kind(OpKind::SoftCap);
        g.scale = s.getCap().convertToFloat();
        return add(&op, g, s.getInput(), s.getResult());
      })
      .Case<GELUOp>([&](GELUOp s) {
        return add(&op, kind(OpKind::GELU), s.getInput(), s.getResult());
      })
      .Case<SoftmaxOp>([&](SoftmaxOp s) {
        return add(&op, kind(OpKind::Softmax), s.getInput(), s.getResult());
      })
      .Case<SwiGLUOp>([&](SwiGLUOp s) {
        return add(&op, kind(OpKind::SwiGLU), {s.getGate(), s.getUp()},
                   s.getResult());
      })
      .Case<SplitOp>([&](SplitOp s) {
        exec::GraphOp g = kind(OpKind::Split);
        g.sizes.assign(s.getSizes().begin(), s.getSizes().end());
        return add(&op, g, s.getInput(), s.getResults());
      })
      .Case<LayerBoundaryOp>([&](LayerBoundaryOp b) -> LogicalResult {
        if (failed(add(&op, kind(OpKind::Boundary), b.getInput(),
                       b.getResult())))
          return failure();
        graph.boundaries.push_back(graph.ops.size() - 1);
        return success();
      })
      .Case<func::ReturnOp>([&](func::ReturnOp r) -> LogicalResult {
        if (r.getNumOperands() != 1)
          return op.emitOpError() << "@forward must return the logits only";
        FailureOr<int32_t> id = input(&op, r.getOperand(0));
        if (failed(id))
          return failure();
        graph.result = *id;
        sawReturn = true;
        return success();
      })
      .Default([&](Operation *other) {
        return other->emitOpError()
               << "is not an op the reference executor runs";
      });
}

LogicalResult GraphTranslator::run() {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward || forward.isExternal())
    return module.emitError()
           << "the module has no func.func @forward to run"
           << (getModelAttr(module)
                   ? " (the importer has no graph for architecture '" +
                         getModelAttr(module).getArchitecture().str() +
                         "' yet)"
                   : "");
  if (!forward.getBody().hasOneBlock())
    return forward.emitOpError() << "@forward must be a single block";
  body = &forward.getBody().front();
  FunctionType type = forward.getFunctionType();
  auto ids = dyn_cast<RankedTensorType>(
      type.getNumInputs() > 0 ? type.getInput(0) : Type());
  if (type.getNumInputs() < 2 || type.getNumInputs() > 3 || !ids ||
      type.getInput(1) != ids || !ids.getElementType().isInteger(32) ||
      ids.getRank() != 1 ||
      (type.getNumInputs() == 3 && !isa<KVCacheType>(type.getInput(2))) ||
      type.getNumResults() != 1)
    return forward.emitOpError()
           << "@forward must take (tensor<?xi32> tokens, tensor<?xi32> "
              "positions[, !lowbit.kv_cache]) and return the logits";
  if (type.getNumInputs() == 3) {
    auto cache = cast<KVCacheType>(type.getInput(2));
    graph.cache = {cache.getLayers(), cache.getContextLength(),
                   cache.getKvHeads(), cache.getHeadDim()};
  }
  for (Operation &op : *body)
    if (failed(translate(op)))
      return failure();
  if (!sawReturn)
    return forward.emitOpError() << "@forward has no return";
  out.vocabSize = graph.valueWidth[graph.result];
  out.contextLength = graph.cache.context;
  return success();
}

/// Every 1-D/2-D weight of the module as the executor reads it.
LogicalResult collectWeights(ModuleOp module, exec::ModelDesc &out,
                             bool allowPacked, bool readData) {
  for (GlobalWeightOp weight : module.getOps<GlobalWeightOp>()) {
    QTensorType type = weight.getWeightType();
    ArrayRef<int64_t> shape = type.getShape();
    if (shape.empty() || shape.size() > 3)
      continue; // the graph cannot name it
    if (type.getLayout() && type.getLayout().getRows() != 1 && !allowPacked)
      continue; // packed for a target: the graph's translation reports it
    exec::WeightRef ref;
    ref.format = type.getFormat().getFormat();
    ref.cols = shape.back();
    // A stack of expert matrices [E, rows, cols] is E * rows rows.
    ref.rows = 1;
    for (int64_t dim : shape.drop_back())
      ref.rows *= dim;
    ref.rowBytes = formats::rowBytes(formats::info(ref.format),
                                     static_cast<uint64_t>(ref.cols));
    if (readData) {
      std::string why;
      ref.data = getWeightBytes(weight, why);
      if (!ref.data)
        return weight.emitOpError() << "cannot read its data: " << why;
    }
    out.weights.emplace(weight.getSymName().str(), ref);
  }
  return success();
}

/// Runs `fn` with diagnostics captured into `err` ("<location>: <message>";
/// without a location when it is the module's own, which callers name).
template <typename Fn>
bool captureDiagnostics(MLIRContext *context, std::string &err, Fn fn,
                        std::function<Location()> moduleLoc) {
  std::string captured;
  ScopedDiagnosticHandler handler(context, [&](Diagnostic &d) {
    if (captured.empty() && d.getSeverity() == DiagnosticSeverity::Error) {
      std::optional<Location> own = moduleLoc();
      std::string where = own && *own == d.getLocation()
                              ? ""
                              : describeLocation(d.getLocation());
      captured = (where.empty() ? "" : where + ": ") + d.str();
    }
    return success();
  });
  if (succeeded(fn()))
    return true;
  err = captured.empty() ? "the module cannot be run" : captured;
  return false;
}

} // namespace

LogicalResult mlir::lowbit::translateModel(ModuleOp module,
                                           exec::ModelDesc &out,
                                           bool allowPackedWeights,
                                           bool readWeightData) {
  out = exec::ModelDesc();
  if (failed(collectGGUFMetadata(module, out.metadata)))
    return failure();
  if (ModelAttr model = getModelAttr(module))
    out.architecture = model.getArchitecture().str();
  if (std::optional<std::string> n = getMetadataString(module, "general.name"))
    out.name = *n;
  if (failed(collectWeights(module, out, allowPackedWeights, readWeightData)) ||
      failed(GraphTranslator(module, out).run()))
    return failure();
  std::string err;
  if (!out.validate(err, readWeightData))
    return module.emitError() << err;
  return success();
}

bool mlir::lowbit::buildModelDesc(ModuleOp module, exec::ModelDesc &out,
                                  std::string &err) {
  return captureDiagnostics(
      module.getContext(), err, [&] { return translateModel(module, out); },
      [&] { return module.getLoc(); });
}

bool mlir::lowbit::loadGGUFModel(const std::string &path, exec::ModelDesc &out,
                                 std::string &err) {
  struct IRStorage {
    std::unique_ptr<MLIRContext> context;
    OwningOpRef<ModuleOp> module;
  };
  auto storage = std::make_shared<IRStorage>();
  storage->context = std::make_unique<MLIRContext>();
  // The importer's diagnostics are located in the file; its module's own
  // location (the file itself) is left out since the caller names the file.
  Location fileLoc = FileLineColLoc::get(storage->context.get(), path, 0, 0);
  bool ok = captureDiagnostics(
      storage->context.get(), err,
      [&] {
        storage->module = importGGUF(storage->context.get(), path);
        if (!storage->module)
          return failure();
        fileLoc = storage->module->getLoc();
        return translateModel(*storage->module, out);
      },
      [&] { return fileLoc; });
  if (!ok)
    return false;
  out.storage = storage;
  return true;
}

namespace {
/// 64-bit mixing hash over 8-byte words (splitmix64's finaliser per word);
/// a fingerprint, not a cryptographic digest.
class Hasher {
public:
  void add(const void *data, size_t size) {
    const auto *p = static_cast<const uint8_t *>(data);
    while (size >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      mix(word);
      p += 8;
      size -= 8;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p, size);
    mix(tail ^ (uint64_t(size) << 56));
  }
  void add(const std::string &s) {
    add(s.data(), s.size());
    mix(s.size());
  }
  void add(uint64_t v) { mix(v); }
  uint64_t value() const { return state_; }

private:
  void mix(uint64_t word) {
    uint64_t z = state_ ^ (word + 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    state_ = z ^ (z >> 31);
  }
  uint64_t state_ = 0x6c6f776269742d31ull; // "lowbit-1"
};
} // namespace

std::string mlir::lowbit::modelFingerprint(ModuleOp module, std::string &err) {
  constexpr uint64_t kSpans = 16, kSpanBytes = 4096;
  Hasher hash;
  for (GlobalWeightOp weight : module.getOps<GlobalWeightOp>()) {
    QTensorType type = weight.getWeightType();
    hash.add(weight.getSymName().str());
    hash.add(type.getFormat().getName().str());
    for (int64_t d : type.getShape())
      hash.add(static_cast<uint64_t>(d));
    std::string why;
    const uint8_t *bytes = getWeightBytes(weight, why);
    if (!bytes) {
      err = "tensor '" + weight.getSymName().str() + "': " + why;
      return "";
    }
    uint64_t size = type.getByteSize();
    if (size <= kSpans * kSpanBytes) {
      hash.add(bytes, size);
      continue;
    }
    for (uint64_t i = 0; i < kSpans; ++i) {
      uint64_t at = (size - kSpanBytes) / (kSpans - 1) * i;
      hash.add(bytes + at, kSpanBytes);
    }
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx",
                static_cast<unsigned long long>(hash.value()));
  return text;
}
