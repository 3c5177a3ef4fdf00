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
         r.string(m, w, "name", p.name, false) &&
         r.integer(m, w, "vocab", p.vocab, false) &&
         r.integer(m, w, "context", p.context, false) &&
         r.integer(m, w, "embedding", p.embedding, false) &&
         r.integer(m, w, "layers", p.layers, false) &&
         r.integer(m, w, "heads", p.heads, false) &&
         r.integer(m, w, "kv_heads", p.kvHeads, false) &&
         r.integer(m, w, "head_dim", p.headDim, false) &&
         r.integer(m, w, "feed_forward", p.feedForward, false);
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
    if (!r.string(*files, "files", "code", out.codeFile) ||
        !r.string(*files, "files", "weights", out.weightsFile) ||
        !r.unsignedInt(*files, "files", "weights_size", out.weightsSize) ||
        !r.string(*files, "files", "weights_sha256", out.weightsSha256) ||
        !r.string(*files, "files", "metadata", out.metadataFile, false))
      return false;
    if (out.codeFile.empty())
      return r.fail("files", "code", "must name the code file");
    if (!r.unsignedInt(*files, "files", "code_size", out.codeSize) ||
        !r.string(*files, "files", "code_sha256", out.codeSha256))
      return false;
    auto isSha256 = [](const std::string &h) {
      return h.size() == 64 &&
             h.find_first_not_of("0123456789abcdef") == std::string::npos;
    };
    if (!isSha256(out.weightsSha256))
      return r.fail("files", "weights_sha256",
                    "must be 64 lowercase hex digits (a SHA-256)");
    if (!isSha256(out.codeSha256))
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
  const ModelInfo &mi = m.model;
  doc["model"] = ojson{{"architecture", mi.architecture},
                       {"name", mi.name},
                       {"vocab", mi.vocab},
                       {"context", mi.context},
                       {"embedding", mi.embedding},
                       {"layers", mi.layers},
                       {"heads", mi.heads},
                       {"kv_heads", mi.kvHeads},
                       {"head_dim", mi.headDim},
                       {"feed_forward", mi.feedForward}};
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
