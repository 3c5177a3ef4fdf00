//===- Manifest.cpp - manifest.json of a native artifact ------------------===//
//
// nlohmann::json throws on malformed text and on type mismatches; every
// exception stays inside parseManifest and becomes an error message, and
// every field is checked for its type before it is read so that the message
// names the field.
//
//===----------------------------------------------------------------------===//

#include "lowbit/runtime/Manifest.h"

#include "lowbit/Formats/Formats.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace lowbit::runtime {

using nlohmann::json;

const ManifestTensor *Manifest::find(std::string_view name) const {
  for (const ManifestTensor &t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

namespace {

/// Field readers that fail with "<where>.<key>: <problem>".
class Reader {
public:
  explicit Reader(std::string &err) : err_(err) {}

  const json *field(const json &obj, const std::string &where,
                    const char *key, bool required) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (required)
        fail(where, key, "missing");
      return nullptr;
    }
    return &*it;
  }
  bool string(const json &obj, const std::string &where, const char *key,
              std::string &out, bool required = true) {
    const json *v = field(obj, where, key, required);
    if (!v)
      return !required;
    if (!v->is_string())
      return fail(where, key, "must be a string");
    out = v->get<std::string>();
    return true;
  }
  bool integer(const json &obj, const std::string &where, const char *key,
               int64_t &out, bool required = true, int64_t min = 0) {
    const json *v = field(obj, where, key, required);
    if (!v)
      return !required;
    if (!v->is_number_integer())
      return fail(where, key, "must be an integer");
    if (v->is_number_unsigned() &&
        v->get<uint64_t>() >
            static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return fail(where, key, "is too large");
    out = v->get<int64_t>();
    if (out < min)
      return fail(where, key, "must be at least " + std::to_string(min));
    return true;
  }
  bool unsignedInt(const json &obj, const std::string &where, const char *key,
                   uint64_t &out, bool required = true) {
    int64_t v = 0;
    if (!integer(obj, where, key, v, required, 0))
      return false;
    if (obj.contains(key) && !obj[key].is_null())
      out = static_cast<uint64_t>(v);
    return true;
  }
  bool boolean(const json &obj, const std::string &where, const char *key,
               bool &out, bool required = true) {
    const json *v = field(obj, where, key, required);
    if (!v)
      return !required;
    if (!v->is_boolean())
      return fail(where, key, "must be true or false");
    out = v->get<bool>();
    return true;
  }
  bool number(const json &obj, const std::string &where, const char *key,
              double &out, bool required = true) {
    const json *v = field(obj, where, key, required);
    if (!v)
      return !required;
    if (!v->is_number())
      return fail(where, key, "must be a number");
    out = v->get<double>();
    // Every number of the manifest is an f32 of the graph: one that does not
    // fit would turn into inf (written back as null).
    if (!(std::fabs(out) <= std::numeric_limits<float>::max()))
      return fail(where, key, "is out of the float range");
    return true;
  }
  bool fail(const std::string &where, const char *key,
            const std::string &what) {
    err_ = "manifest: " + where + (where.empty() ? "" : ".") + key + " " + what;
    return false;
  }

private:
  std::string &err_;
};

bool parseModel(Reader &r, const json &m, ModelInfo &p) {
  const std::string w = "model";
  if (!m.is_object())
    return r.fail("", "model", "must be an object");
  return r.string(m, w, "architecture", p.architecture, false) &&
         r.string(m, w, "name", p.name, false);
}

/// Reads an array of integers in [min, max].
bool integers(Reader &r, const json &obj, const std::string &where,
              const char *key, std::vector<int64_t> &out, int64_t min,
              int64_t max, bool required = true) {
  const json *v = r.field(obj, where, key, required);
  if (!v)
    return !required;
  if (!v->is_array())
    return r.fail(where, key, "must be an array");
  for (const json &e : *v) {
    if (!e.is_number_integer() || e.get<int64_t>() < min ||
        e.get<int64_t>() > max)
      return r.fail(where, key,
                    "must hold integers in [" + std::to_string(min) + ", " +
                        std::to_string(max) + "]");
    out.push_back(e.get<int64_t>());
  }
  return true;
}

bool strings(Reader &r, const json &obj, const std::string &where,
             const char *key, std::vector<std::string> &out) {
  const json *v = r.field(obj, where, key, false);
  if (!v)
    return true;
  if (!v->is_array())
    return r.fail(where, key, "must be an array");
  for (const json &e : *v) {
    if (!e.is_string())
      return r.fail(where, key, "must hold strings");
    out.push_back(e.get<std::string>());
  }
  return true;
}

bool parseGraph(Reader &r, const json &g, exec::Graph &out) {
  const std::string w = "graph";
  if (!g.is_object())
    return r.fail("", "graph", "must be an object");
  constexpr int64_t kMaxWidth = int64_t(1) << 31, kMaxValues = 1 << 24;
  std::vector<int64_t> widths, boundaries;
  int64_t result = 0;
  if (!integers(r, g, w, "values", widths, 1, kMaxWidth) ||
      widths.size() > kMaxValues ||
      !r.integer(g, w, "result", result, true, 0) ||
      !integers(r, g, w, "boundaries", boundaries, 0, kMaxValues, false))
    return widths.size() > kMaxValues ? r.fail(w, "values", "is too long")
                                      : false;
  const int64_t nValues = static_cast<int64_t>(widths.size());
  if (result >= nValues)
    return r.fail(w, "result", "is not a value");
  out.valueWidth = widths;
  out.result = static_cast<int32_t>(result);
  if (const json *c = r.field(g, w, "cache", false)) {
    const std::string cw = w + ".cache";
    if (!c->is_object() ||
        !r.integer(*c, cw, "layers", out.cache.layers, true, 0) ||
        !r.integer(*c, cw, "context", out.cache.context, true, 0) ||
        !r.integer(*c, cw, "kv_heads", out.cache.kvHeads, true, 0) ||
        !r.integer(*c, cw, "head_dim", out.cache.headDim, true, 0))
      return c->is_object() ? false : r.fail(w, "cache", "must be an object");
    if (out.cache.layers > (1 << 16) || out.cache.context > (1 << 24) ||
        out.cache.kvHeads > (1 << 16) || out.cache.headDim > (1 << 16))
      return r.fail(w, "cache", "is too large");
  }
  const json *ops = r.field(g, w, "ops", true);
  if (!ops)
    return false;
  if (!ops->is_array())
    return r.fail(w, "ops", "must be an array");
  for (size_t i = 0; i < ops->size(); ++i) {
    const json &o = (*ops)[i];
    const std::string ow = w + ".ops[" + std::to_string(i) + "]";
    if (!o.is_object())
      return r.fail(w, "ops", "must be objects");
    exec::GraphOp op;
    std::string kind, mode = "normal";
    std::vector<int64_t> in, outs;
    double epsilon = 0, theta = 10000, freqScale = 1, scale = 0;
    double extFactor = 0, attnFactor = 1, betaFast = 32, betaSlow = 1;
    double softcap = 0;
    if (!r.string(o, ow, "op", kind))
      return false;
    if (!exec::opKindFromName(kind, op.kind))
      return r.fail(ow, "op", "'" + kind + "' is not an op the runtime runs");
    if (!integers(r, o, ow, "in", in, 0, nValues - 1) ||
        !integers(r, o, ow, "out", outs, 0, nValues - 1) ||
        !r.string(o, ow, "weight", op.weight, false) ||
        !r.string(o, ow, "bias", op.bias, false) ||
        !r.string(o, ow, "long_factors", op.longWeight, false) ||
        !r.number(o, ow, "epsilon", epsilon, false) ||
        !r.number(o, ow, "theta", theta, false) ||
        !r.number(o, ow, "freq_scale", freqScale, false) ||
        !r.number(o, ow, "ext_factor", extFactor, false) ||
        !r.number(o, ow, "attn_factor", attnFactor, false) ||
        !r.integer(o, ow, "original_context", op.originalContext, false, 0) ||
        !r.number(o, ow, "beta_fast", betaFast, false) ||
        !r.number(o, ow, "beta_slow", betaSlow, false) ||
        !r.number(o, ow, "scale", scale, false) ||
        !r.number(o, ow, "softcap", softcap, false) ||
        !r.integer(o, ow, "heads", op.heads, false, 0) ||
        !r.integer(o, ow, "head_dim", op.headDim, false, 0) ||
        !r.integer(o, ow, "rope_dims", op.ropeDims, false, 0) ||
        !r.integer(o, ow, "layer", op.cacheLayer, false, 0) ||
        !r.integer(o, ow, "group", op.group, false, 0) ||
        !r.integer(o, ow, "window", op.window, false, 0) ||
        !r.integer(o, ow, "top_k", op.topK, false, 0) ||
        !r.boolean(o, ow, "normalize", op.normalize, false) ||
        !strings(r, o, ow, "experts", op.experts) ||
        !r.string(o, ow, "mode", mode, false) ||
        !integers(r, o, ow, "sizes", op.sizes, 1, kMaxWidth, false))
      return false;
    if (mode != "normal" && mode != "neox")
      return r.fail(ow, "mode", "must be \"normal\" or \"neox\"");
    op.ropeMode = mode == "neox" ? exec::RopeMode::NeoX : exec::RopeMode::Normal;
    op.inputs.assign(in.begin(), in.end());
    op.outputs.assign(outs.begin(), outs.end());
    op.epsilon = static_cast<float>(epsilon);
    op.theta = static_cast<float>(theta);
    op.freqScale = static_cast<float>(freqScale);
    op.extFactor = static_cast<float>(extFactor);
    op.attnFactor = static_cast<float>(attnFactor);
    op.betaFast = static_cast<float>(betaFast);
    op.betaSlow = static_cast<float>(betaSlow);
    op.scale = static_cast<float>(scale);
    op.softcap = static_cast<float>(softcap);
    op.where = ow;
    out.ops.push_back(std::move(op));
  }
  for (int64_t b : boundaries) {
    if (b >= static_cast<int64_t>(out.ops.size()))
      return r.fail(w, "boundaries", "must be op indices");
    out.boundaries.push_back(static_cast<size_t>(b));
  }
  return true;
}

bool parseTensor(Reader &r, const json &t, size_t index, uint64_t weightsSize,
                 ManifestTensor &out) {
  std::string w = "tensors[" + std::to_string(index) + "]";
  if (!t.is_object())
    return r.fail("", w.c_str(), "must be an object");
  if (!r.string(t, w, "name", out.name))
    return false;
  w += " (" + out.name + ")";
  if (!r.string(t, w, "format", out.format))
    return false;
  const formats::FormatInfo *fi = formats::findByName(out.format);
  if (!fi)
    return r.fail(w, "format", "'" + out.format + "' is not a known format");
  const json *shape = r.field(t, w, "shape", true);
  if (!shape)
    return false;
  if (!shape->is_array() || shape->empty() || shape->size() > 3)
    return r.fail(w, "shape", "must be an array of 1 to 3 dimensions");
  uint64_t elements = 1;
  for (const json &d : *shape) {
    if (!d.is_number_integer() || d.get<int64_t>() <= 0 ||
        d.get<int64_t>() > (int64_t(1) << 40))
      return r.fail(w, "shape", "dimensions must be positive integers");
    out.shape.push_back(d.get<int64_t>());
    elements *= static_cast<uint64_t>(d.get<int64_t>());
    if (elements > (uint64_t(1) << 44))
      return r.fail(w, "shape", "is too large");
  }
  int64_t interleave = 1;
  if (!r.integer(t, w, "interleave", interleave, false, 1))
    return false;
  if (interleave > 64 || (interleave & (interleave - 1)) != 0)
    return r.fail(w, "interleave", "must be a power of two in [1, 64]");
  out.interleave = static_cast<uint32_t>(interleave);
  if (out.rows() % interleave != 0)
    return r.fail(w, "interleave", "does not divide the row count");
  if (!r.unsignedInt(t, w, "offset", out.offset) ||
      !r.unsignedInt(t, w, "size", out.size) ||
      !r.string(t, w, "kernel", out.kernel, false) ||
      !r.string(t, w, "quantizer", out.quantizer, false) ||
      !r.unsignedInt(t, w, "activation_row_bytes", out.activationRowBytes,
                     false) ||
      !r.string(t, w, "note", out.note, false))
    return false;
  const uint64_t rowBytes = formats::rowBytes(*fi, out.cols());
  if (rowBytes == 0)
    return r.fail(w, "shape", "row length " + std::to_string(out.cols()) +
                                  " is not a multiple of " + fi->name +
                                  "'s block size");
  if (out.size != rowBytes * out.rows())
    return r.fail(w, "size", std::to_string(out.size) + " does not match " +
                                 fi->name + " " + std::to_string(out.rows()) +
                                 "x" + std::to_string(out.cols()) + " (" +
                                 std::to_string(rowBytes * out.rows()) +
                                 " bytes)");
  if (out.offset > weightsSize || out.size > weightsSize - out.offset)
    return r.fail(w, "offset", "and size reach past the " +
                                   std::to_string(weightsSize) +
                                   " bytes of the weights file");
  if (!out.quantizer.empty() && out.activationRowBytes == 0)
    return r.fail(w, "activation_row_bytes",
                  "must be set with a quantizer");
  if (const json *parts = r.field(t, w, "parts", false)) {
    if (!parts->is_array())
      return r.fail(w, "parts", "must be an array");
    int64_t rows = 0;
    for (size_t i = 0; i < parts->size(); ++i) {
      const json &p = (*parts)[i];
      TensorPart part;
      std::string pw = w + ".parts[" + std::to_string(i) + "]";
      if (!p.is_object() || !r.string(p, pw, "name", part.name) ||
          !r.integer(p, pw, "rows", part.rows, true, 1))
        return p.is_object() ? false : r.fail(w, "parts", "must be objects");
      rows += part.rows;
      out.parts.push_back(std::move(part));
    }
    if (rows != out.rows())
      return r.fail(w, "parts", "rows add up to " + std::to_string(rows) +
                                    ", not " + std::to_string(out.rows()));
  }
  return true;
}

} // namespace

bool parseManifest(std::string_view text, Manifest &out, std::string &err) {
  out = Manifest();
  Reader r(err);
  try {
    json doc = json::parse(text.begin(), text.end());
    if (!doc.is_object()) {
      err = "manifest: not a JSON object";
      return false;
    }
    std::string format;
    if (!r.string(doc, "", "format", format))
      return false;
    if (format != kManifestFormat)
      return r.fail("", "format", "is '" + format + "', expected '" +
                                      kManifestFormat + "'");
    if (!r.integer(doc, "", "version", out.version, true, 1))
      return false;
    if (out.version != kManifestVersion)
      return r.fail("", "version",
                    std::to_string(out.version) + " is not supported (this "
                    "runtime reads version " +
                        std::to_string(kManifestVersion) + ")");
    if (!r.integer(doc, "", "abi_version", out.abiVersion, true, 1) ||
        !r.string(doc, "", "target", out.target) ||
        !r.string(doc, "", "triple", out.triple, false))
      return false;
    const json *files = r.field(doc, "", "files", true);
    if (!files)
      return false;
    if (!files->is_object())
      return r.fail("", "files", "must be an object");
    if (!r.string(*files, "files", "code", out.codeFile, false) ||
        !r.string(*files, "files", "weights", out.weightsFile) ||
        !r.unsignedInt(*files, "files", "weights_size", out.weightsSize) ||
        !r.string(*files, "files", "weights_sha256", out.weightsSha256) ||
        !r.string(*files, "files", "metadata", out.metadataFile, false))
      return false;
    if (!out.codeFile.empty() &&
        (!r.unsignedInt(*files, "files", "code_size", out.codeSize) ||
         !r.string(*files, "files", "code_sha256", out.codeSha256)))
      return false;
    auto isSha256 = [](const std::string &h) {
      return h.size() == 64 &&
             h.find_first_not_of("0123456789abcdef") == std::string::npos;
    };
    if (!isSha256(out.weightsSha256))
      return r.fail("files", "weights_sha256",
                    "must be 64 lowercase hex digits (a SHA-256)");
    if (!out.codeFile.empty() && !isSha256(out.codeSha256))
      return r.fail("files", "code_sha256",
                    "must be 64 lowercase hex digits (a SHA-256)");
    for (const std::string *f :
         {&out.codeFile, &out.weightsFile, &out.metadataFile})
      if (f->find('/') != std::string::npos || *f == "." || *f == "..")
        return r.fail("files", "", "names must be plain file names, got '" +
                                       *f + "'");
    const json *model = r.field(doc, "", "model", false);
    if (model && !parseModel(r, *model, out.model))
      return false;
    const json *graph = r.field(doc, "", "graph", true);
    if (!graph || !parseGraph(r, *graph, out.graph))
      return false;
    const json *tensors = r.field(doc, "", "tensors", true);
    if (!tensors)
      return false;
    if (!tensors->is_array())
      return r.fail("", "tensors", "must be an array");
    for (size_t i = 0; i < tensors->size(); ++i) {
      ManifestTensor t;
      if (!parseTensor(r, (*tensors)[i], i, out.weightsSize, t))
        return false;
      if (out.find(t.name))
        return r.fail("", "tensors", "name '" + t.name + "' appears twice");
      if (!t.kernel.empty() && out.codeFile.empty())
        return r.fail("files", "code", "is missing but tensor '" + t.name +
                                           "' names a kernel");
      out.tensors.push_back(std::move(t));
    }
  } catch (const std::exception &e) {
    err = std::string("manifest: invalid JSON: ") + e.what();
    return false;
  }
  return true;
}

std::string writeManifest(const Manifest &m) {
  using ojson = nlohmann::ordered_json;
  ojson doc;
  doc["format"] = kManifestFormat;
  doc["version"] = m.version;
  doc["abi_version"] = m.abiVersion;
  doc["target"] = m.target;
  doc["triple"] = m.triple;
  ojson files;
  if (!m.codeFile.empty()) {
    files["code"] = m.codeFile;
    files["code_size"] = m.codeSize;
    files["code_sha256"] = m.codeSha256;
  }
  files["weights"] = m.weightsFile;
  files["weights_size"] = m.weightsSize;
  files["weights_sha256"] = m.weightsSha256;
  if (!m.metadataFile.empty())
    files["metadata"] = m.metadataFile;
  doc["files"] = files;
  doc["model"] = ojson{{"architecture", m.model.architecture},
                       {"name", m.model.name}};
  const exec::Graph &g = m.graph;
  ojson graph;
  graph["values"] = g.valueWidth;
  graph["result"] = g.result;
  graph["cache"] = ojson{{"layers", g.cache.layers},
                         {"context", g.cache.context},
                         {"kv_heads", g.cache.kvHeads},
                         {"head_dim", g.cache.headDim}};
  graph["boundaries"] = g.boundaries;
  ojson ops = ojson::array();
  for (const exec::GraphOp &op : g.ops) {
    ojson o;
    o["op"] = exec::opKindName(op.kind);
    o["in"] = op.inputs;
    o["out"] = op.outputs;
    if (!op.weight.empty())
      o["weight"] = op.weight;
    if (!op.bias.empty())
      o["bias"] = op.bias;
    switch (op.kind) {
    case exec::OpKind::RMSNorm:
    case exec::OpKind::LayerNorm:
      o["epsilon"] = op.epsilon;
      if (op.group)
        o["group"] = op.group;
      break;
    case exec::OpKind::Rope:
      o["heads"] = op.heads;
      o["head_dim"] = op.headDim;
      o["rope_dims"] = op.ropeDims;
      o["theta"] = op.theta;
      o["freq_scale"] = op.freqScale;
      if (!op.longWeight.empty())
        o["long_factors"] = op.longWeight;
      if (op.extFactor != 0 || op.attnFactor != 1 || !op.longWeight.empty()) {
        o["ext_factor"] = op.extFactor;
        o["attn_factor"] = op.attnFactor;
        o["original_context"] = op.originalContext;
        o["beta_fast"] = op.betaFast;
        o["beta_slow"] = op.betaSlow;
      }
      o["mode"] = op.ropeMode == exec::RopeMode::NeoX ? "neox" : "normal";
      break;
    case exec::OpKind::Attention:
      o["heads"] = op.heads;
      o["layer"] = op.cacheLayer;
      o["scale"] = op.scale;
      if (op.window)
        o["window"] = op.window;
      if (op.softcap)
        o["softcap"] = op.softcap;
      break;
    case exec::OpKind::Scale:
    case exec::OpKind::SoftCap:
      o["scale"] = op.scale;
      break;
    case exec::OpKind::MoEFFN:
      o["experts"] = op.experts;
      o["top_k"] = op.topK;
      o["normalize"] = op.normalize;
      break;
    case exec::OpKind::Split:
      o["sizes"] = op.sizes;
      break;
    default:
      break;
    }
    ops.push_back(std::move(o));
  }
  graph["ops"] = ops;
  doc["graph"] = graph;
  ojson tensors = ojson::array();
  for (const ManifestTensor &t : m.tensors) {
    ojson o;
    o["name"] = t.name;
    o["format"] = t.format;
    o["shape"] = t.shape;
    o["interleave"] = t.interleave;
    o["offset"] = t.offset;
    o["size"] = t.size;
    if (!t.kernel.empty())
      o["kernel"] = t.kernel;
    if (!t.quantizer.empty()) {
      o["quantizer"] = t.quantizer;
      o["activation_row_bytes"] = t.activationRowBytes;
    }
    if (!t.parts.empty()) {
      ojson parts = ojson::array();
      for (const TensorPart &part : t.parts)
        parts.push_back(ojson{{"name", part.name}, {"rows", part.rows}});
      o["parts"] = parts;
    }
    if (!t.note.empty())
      o["note"] = t.note;
    tensors.push_back(std::move(o));
  }
  doc["tensors"] = tensors;
  return doc.dump(2) + "\n";
}

} // namespace lowbit::runtime
