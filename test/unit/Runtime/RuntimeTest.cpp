//===- RuntimeTest.cpp - The native runtime -------------------------------===//
//
// Artifacts are built here from stories260K without the compiler (weights
// copied or quantized, optionally fused and interleaved, a hand-written
// kernel library as model.so whose program is assembled here from the
// executor's records of the graph, with a C++ loop standing in for the
// generated lb_forward), so that the runtime is checked on its own:
// against the reference executor (bit for bit on the f32 and fall-back
// paths), and against every kind of broken artifact.
//
//===----------------------------------------------------------------------===//

#include "lowbit/runtime.h"

#include "lowbit/Exec/Executor.h"
#include "lowbit/Exec/Program.h"
#include "lowbit/Formats/Layout.h"
#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Support/Sha256.h"
#include "lowbit/Target/KernelABI.h"
#include "lowbit/runtime/Manifest.h"

#include "TestModels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <dlfcn.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>

using namespace lowbit;
namespace fs = std::filesystem;

namespace {

const std::string kStories =
    std::string(LOWBIT_SHARED_DIR) + "/models/stories260K/stories260K-f32.gguf";

#define REQUIRE_STORIES()                                                      \
  if (!fs::exists(kStories))                                                   \
  GTEST_SKIP() << kStories << " not found (../shared/models absent)"

struct Spec {
  formats::Format matrixFormat = formats::Format::F32;
  uint32_t interleave = 1;
  bool kernels = false;
  bool fuseQKV = false;
  std::string library = TEST_KERNELS_SO;
};

/// The program of stories260K's graph as the generator would emit it: the
/// executor's records, plan and weight table, and a loop over the records
/// in place of generated code. All test artifacts share the one graph.
struct TestProgram {
  exec::ProgramPlan plan;
  exec::OpRecords records;
  std::vector<int64_t> valueWidth, bufferWidth, weightShape;
  std::vector<const char *> names;
  lb_program program = {};
};
const TestProgram *currentProgram = nullptr;

void runRecords(lb_exec *exec, const lb_runtime_api *api) {
  for (const lb_op &op : currentProgram->records.ops)
    api->ops[op.kind](exec, &op);
}

/// Assembles the program of `d`'s graph (once) and returns it.
TestProgram &testProgram(const exec::ModelDesc &d) {
  static TestProgram p;
  static bool built = false;
  if (!built) {
    built = true;
    const exec::Graph &g = d.graph;
    p.plan = exec::planProgram(g);
    exec::buildOpRecords(g, p.plan, p.records);
    p.valueWidth = g.valueWidth;
    p.bufferWidth = p.plan.bufferWidth;
    for (const std::string &name : p.records.weightNames) {
      p.names.push_back(name.c_str());
      p.weightShape.push_back(d.find(name)->rows);
      p.weightShape.push_back(d.find(name)->cols);
    }
    lb_program &q = p.program;
    q.abi_version = LB_KERNEL_ABI_VERSION;
    q.num_values = static_cast<int32_t>(p.valueWidth.size());
    q.num_buffers = static_cast<int32_t>(p.bufferWidth.size());
    q.num_weights = static_cast<int32_t>(p.names.size());
    q.result = g.result;
    q.result_in_head = p.plan.resultInHead;
    q.max_attention_heads = static_cast<int32_t>(p.plan.maxAttentionHeads);
    q.cache_layers = g.cache.layers;
    q.cache_context = g.cache.context;
    q.cache_kv_heads = g.cache.kvHeads;
    q.cache_head_dim = g.cache.headDim;
    q.value_width = p.valueWidth.data();
    q.value_buffer = p.plan.bufferOf.data();
    q.buffer_width = p.bufferWidth.data();
    q.weight_names = p.names.data();
    q.forward = runRecords;
    q.weight_use = p.records.weightUse.data();
    q.weight_shape = p.weightShape.data();
  }
  currentProgram = &p;
  return p;
}

/// Makes the artifact's model.so return `program` (the runtime's later
/// dlopen of the same path finds the library loaded).
void installProgram(const std::string &so, const lb_program *program) {
  void *lib = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_TRUE(lib) << dlerror();
  auto set = reinterpret_cast<void (*)(const lb_program *)>(
      dlsym(lib, "test_set_program"));
  ASSERT_TRUE(set);
  set(program);
  // Left loaded: the runtime's dlopen then finds this instance.
}

/// An artifact on disk and the same weights (plain layout) for the executor.
struct Built {
  std::string dir;
  std::shared_ptr<void> cleanup; // removes `dir` with the last copy
  runtime::Manifest manifest;
  exec::ModelDesc desc;
  std::shared_ptr<std::map<std::string, std::vector<uint8_t>>> plain;
};

std::string tempDir(const std::string &name) {
  fs::path p = fs::temp_directory_path() /
               ("lowbit-runtime-test-" + std::to_string(getpid()) + "-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), bytes.size());
}

std::string readFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

bool isMatrix(const std::string &name) {
  return name.find("attn_norm") == std::string::npos &&
         name.find("ffn_norm") == std::string::npos &&
         name != "output_norm.weight";
}

Built build(const std::string &name, const Spec &spec) {
  Built b;
  b.dir = tempDir(name);
  b.cleanup = std::shared_ptr<void>(nullptr, [dir = b.dir](void *) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  });
  gguf::Error gerr;
  std::shared_ptr<gguf::Reader> reader = gguf::Reader::open(kStories, gerr);
  EXPECT_TRUE(reader) << gerr.message();
  std::string err;
  EXPECT_TRUE(lowbit::testing::loadModel(kStories, b.desc, err)) << err;
  const exec::ModelDesc &d = b.desc;

  // Plain bytes of every tensor in the artifact's formats.
  b.plain = std::make_shared<std::map<std::string, std::vector<uint8_t>>>();
  std::vector<std::string> order;
  for (const gguf::TensorInfo &t : reader->tensors()) {
    const exec::WeightRef &w = *d.find(t.name);
    formats::Format f = formats::Format::F32;
    if (isMatrix(t.name) && t.name != "token_embd.weight" &&
        w.cols % formats::info(spec.matrixFormat).blockSize == 0)
      f = spec.matrixFormat;
    std::vector<uint8_t> &bytes = (*b.plain)[t.name];
    bytes.resize(formats::rowBytes(formats::info(f), w.cols) * w.rows);
    EXPECT_TRUE(formats::quantizeRows(f, reinterpret_cast<const float *>(w.data),
                                      bytes.data(), w.rows, w.cols, nullptr, 1));
    order.push_back(t.name);
  }
  // The executor runs the same (plain) bytes.
  for (auto &[n, bytes] : *b.plain) {
    exec::WeightRef &w = b.desc.weights[n];
    if (isMatrix(n) && n != "token_embd.weight" &&
        w.cols % formats::info(spec.matrixFormat).blockSize == 0)
      w.format = spec.matrixFormat;
    w.rowBytes = formats::rowBytes(formats::info(w.format), w.cols);
    w.data = bytes.data();
  }
  b.desc.storage = b.plain;

  // Tensors of the artifact: optionally q/k/v fused.
  struct Out {
    std::string name;
    formats::Format format;
    int64_t rows, cols;
    std::vector<uint8_t> bytes;
    std::vector<runtime::TensorPart> parts;
  };
  std::vector<Out> outs;
  for (const std::string &n : order) {
    const exec::WeightRef &w = b.desc.weights[n];
    if (spec.fuseQKV && n.find("attn_k.") != std::string::npos)
      continue;
    if (spec.fuseQKV && n.find("attn_v.") != std::string::npos)
      continue;
    if (spec.fuseQKV && n.find("attn_q.") != std::string::npos) {
      std::string prefix = n.substr(0, n.find("attn_q."));
      Out o{prefix + "attn_qkv.weight", w.format, 0, w.cols, {}, {}};
      for (const char *part : {"attn_q", "attn_k", "attn_v"}) {
        std::string pn = prefix + part + ".weight";
        const std::vector<uint8_t> &pb = (*b.plain)[pn];
        o.bytes.insert(o.bytes.end(), pb.begin(), pb.end());
        o.rows += b.desc.weights[pn].rows;
        o.parts.push_back({pn, b.desc.weights[pn].rows});
      }
      outs.push_back(std::move(o));
      continue;
    }
    outs.push_back({n, w.format, w.rows, w.cols, (*b.plain)[n], {}});
  }

  runtime::Manifest &m = b.manifest;
  m.abiVersion = LB_KERNEL_ABI_VERSION;
  m.target = "test";
  m.model.name = "stories260K";
  m.model.vocab = 512;
  std::string weights;
  for (Out &o : outs) {
    runtime::ManifestTensor t;
    t.name = o.name;
    t.format = formats::info(o.format).name;
    t.shape = isMatrix(o.name) ? std::vector<int64_t>{o.rows, o.cols}
                               : std::vector<int64_t>{o.cols};
    t.parts = o.parts;
    const bool matmul = isMatrix(o.name);
    uint32_t r = matmul && o.rows % spec.interleave == 0 ? spec.interleave : 1;
    if (r > 1) {
      std::vector<uint8_t> packed(o.bytes.size());
      EXPECT_TRUE(formats::packRows(o.format, o.bytes.data(), packed.data(),
                                    o.rows, o.cols, r));
      o.bytes = std::move(packed);
    }
    t.interleave = r;
    bool haveKernel =
        (o.format == formats::Format::F32 && (o.cols == 64 || o.cols == 172)) ||
        (o.format == formats::Format::Q8_0 && o.cols == 64);
    if (spec.kernels && matmul && haveKernel && (r == 1 || r == 4)) {
      t.kernel = std::string("test_mm_") + formats::info(o.format).name +
                 "_k" + std::to_string(o.cols) + "_r" + std::to_string(r);
      if (o.format == formats::Format::Q8_0) {
        t.quantizer = "test_quant_q8_0";
        t.activationRowBytes = formats::rowBytes(formats::info(o.format), o.cols);
      }
    }
    weights.resize((weights.size() + LB_WEIGHT_ALIGNMENT - 1) /
                   LB_WEIGHT_ALIGNMENT * LB_WEIGHT_ALIGNMENT);
    t.offset = weights.size();
    t.size = o.bytes.size();
    weights.append(reinterpret_cast<const char *>(o.bytes.data()),
                   o.bytes.size());
    m.tensors.push_back(std::move(t));
  }
  m.weightsSize = weights.size();
  m.weightsSha256 = sha256Hex(weights.data(), weights.size());
  // The code: the test library (kernels named only with spec.kernels) and
  // the program of the importer's graph (unfused; fused tensors are reached
  // through their parts).
  m.codeFile = "model.so";
  fs::copy_file(spec.library, b.dir + "/model.so");
  const std::string code = readFile(b.dir + "/model.so");
  m.codeSize = code.size();
  m.codeSha256 = sha256Hex(code.data(), code.size());
  installProgram(b.dir + "/model.so", &testProgram(d).program);
  writeFile(b.dir + "/weights.bin", weights);
  writeFile(b.dir + "/manifest.json", runtime::writeManifest(m));
  return b;
}

struct Model {
  lb_model_t *model = nullptr;
  lb_context_t *ctx = nullptr;
  lb_status_t status{};
  ~Model() {
    lb_context_free(ctx);
    lb_model_free(model);
  }
  lb_status_code_t load(const std::string &dir, int threads = 2) {
    if (lb_model_load(dir.c_str(), &model, &status) != LB_OK)
      return status.code;
    lb_context_params_t p = lb_context_default_params();
    p.n_threads = threads;
    p.n_ctx = 128;
    return lb_context_create(model, &p, &ctx, &status);
  }
};

/// Logits of a 24-token prompt (every row) then 4 single-token steps.
std::vector<float> runtimeLogits(Model &m) {
  std::vector<int32_t> tokens;
  std::mt19937 rng(3);
  for (int i = 0; i < 28; ++i)
    tokens.push_back(static_cast<int32_t>(rng() % 512));
  std::vector<float> all;
  int32_t rows = 0;
  EXPECT_EQ(lb_eval(m.ctx, tokens.data(), 24, 0, 0, &m.status), LB_OK)
      << m.status.message;
  const float *l = lb_get_logits(m.ctx, &rows);
  EXPECT_EQ(rows, 24);
  all.insert(all.end(), l, l + rows * 512);
  for (int i = 24; i < 28; ++i) {
    EXPECT_EQ(lb_eval(m.ctx, &tokens[i], 1, i, 0, &m.status), LB_OK);
    l = lb_get_logits(m.ctx, &rows);
    all.insert(all.end(), l, l + 512);
  }
  return all;
}

std::vector<float> executorLogits(const exec::ModelDesc &d) {
  exec::ExecOptions o;
  o.threads = 2;
  o.contextSize = 128;
  std::string err;
  auto e = exec::Executor::create(d, o, err);
  EXPECT_TRUE(e) << err;
  std::vector<int32_t> tokens;
  std::mt19937 rng(3);
  for (int i = 0; i < 28; ++i)
    tokens.push_back(static_cast<int32_t>(rng() % 512));
  std::vector<float> all, logits;
  EXPECT_TRUE(e->eval(tokens.data(), 24, 0, logits, 0, err)) << err;
  all = logits;
  for (int i = 24; i < 28; ++i) {
    EXPECT_TRUE(e->eval(&tokens[i], 1, i, logits, 0, err)) << err;
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

void expectSameBits(const std::vector<float> &a, const std::vector<float> &b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(a[i], b[i]) << "logit " << i;
}

/// Captures the runtime's log lines.
struct LogCapture {
  std::vector<std::string> lines;
  LogCapture() {
    lb_log_set(
        [](lb_log_level_t, const char *msg, void *user) {
          static_cast<LogCapture *>(user)->lines.push_back(msg);
        },
        this);
  }
  ~LogCapture() { lb_log_set(nullptr, nullptr); }
};

} // namespace

//===----------------------------------------------------------------------===//
// Against the reference executor
//===----------------------------------------------------------------------===//

TEST(Runtime, FallbackMatchesExecutorBitForBit) {
  REQUIRE_STORIES();
  for (formats::Format f : {formats::Format::F32, formats::Format::Q8_0}) {
    Spec spec;
    spec.matrixFormat = f;
    spec.interleave = 4; // the fall-back unpacks
    Built b = build("fallback", spec);
    LogCapture log;
    Model m;
    ASSERT_EQ(m.load(b.dir), LB_OK) << m.status.message;
    lb_model_info_t info;
    lb_model_get_info(m.model, &info);
    EXPECT_EQ(info.n_kernel_tensors, 0);
    EXPECT_EQ(info.n_fallback_tensors, 1 + 5 * 7); // output + 7 per layer
    // Loud, once per tensor.
    EXPECT_EQ(log.lines.size(), 36u);
    EXPECT_NE(log.lines[0].find("fall-back"), std::string::npos);
    EXPECT_NE(std::string(lb_model_kernel_report(m.model)).find("FALLBACK"),
              std::string::npos);
    expectSameBits(runtimeLogits(m), executorLogits(b.desc));
  }
}

TEST(Runtime, F32KernelsMatchExecutorBitForBit) {
  REQUIRE_STORIES();
  for (uint32_t interleave : {1u, 4u})
    for (bool fuse : {false, true}) {
      Spec spec;
      spec.kernels = true;
      spec.interleave = interleave;
      spec.fuseQKV = fuse;
      Built b = build("f32k", spec);
      Model m;
      ASSERT_EQ(m.load(b.dir), LB_OK) << m.status.message;
      lb_model_info_t info;
      lb_model_get_info(m.model, &info);
      EXPECT_EQ(info.n_fallback_tensors, 0) << lb_model_kernel_report(m.model);
      SCOPED_TRACE("interleave " + std::to_string(interleave) +
                   (fuse ? " fused qkv" : ""));
      expectSameBits(runtimeLogits(m), executorLogits(b.desc));
    }
}

TEST(Runtime, Q8KernelsCloseToExecutorAndThreadIndependent) {
  REQUIRE_STORIES();
  Spec spec;
  spec.matrixFormat = formats::Format::Q8_0;
  spec.kernels = true;
  spec.interleave = 4;
  spec.fuseQKV = true;
  Built b = build("q8k", spec);
  std::vector<float> ref = executorLogits(b.desc), first;
  for (int threads : {1, 3}) {
    Model m;
    ASSERT_EQ(m.load(b.dir, threads), LB_OK) << m.status.message;
    lb_model_info_t info;
    lb_model_get_info(m.model, &info);
    // ffn_down has 172 columns: no Q8_0 there, f32 kernels instead.
    EXPECT_EQ(info.n_fallback_tensors, 0) << lb_model_kernel_report(m.model);
    std::vector<float> got = runtimeLogits(m);
    ASSERT_EQ(got.size(), ref.size());
    double maxRef = 0, maxDiff = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      maxRef = std::max(maxRef, std::fabs(double(ref[i])));
      maxDiff = std::max(maxDiff, std::fabs(double(got[i]) - ref[i]));
    }
    // Activations quantized to 8 bits: close, not equal.
    EXPECT_LT(maxDiff, 0.02 * maxRef);
    EXPECT_GT(maxDiff, 0.0);
    if (first.empty())
      first = got;
    else
      expectSameBits(got, first);
  }
}

TEST(Runtime, EvalArgumentsAreChecked) {
  REQUIRE_STORIES();
  Built b = build("args", Spec());
  LogCapture quiet;
  Model m;
  ASSERT_EQ(m.load(b.dir), LB_OK) << m.status.message;
  int32_t tok[2] = {1, 2}, bad = 600;
  lb_status_t st;
  EXPECT_EQ(lb_eval(m.ctx, tok, 2, 5, 0, &st), LB_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(st.message).find("past the 0 cached"), std::string::npos);
  EXPECT_EQ(lb_eval(m.ctx, &bad, 1, 0, 0, &st), LB_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lb_eval(m.ctx, tok, 2, 0, 3, &st), LB_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lb_eval(nullptr, tok, 2, 0, 0, &st), LB_ERROR_INVALID_ARGUMENT);
  std::vector<int32_t> many(129, 1);
  EXPECT_EQ(lb_eval(m.ctx, many.data(), 129, 0, 128, &st), LB_ERROR_CONTEXT_FULL);
  EXPECT_EQ(lb_eval(m.ctx, tok, 2, 0, 2, &st), LB_OK);
  int32_t rows = -1;
  lb_get_logits(m.ctx, &rows);
  EXPECT_EQ(rows, 0);
  EXPECT_EQ(lb_context_n_ctx(m.ctx), 128);
  EXPECT_EQ(lb_context_n_threads(m.ctx), 2);
}

//===----------------------------------------------------------------------===//
// Bad artifacts: a status and a message, never a crash
//===----------------------------------------------------------------------===//

namespace {
lb_status_code_t loadStatus(const std::string &dir, std::string &message) {
  lb_model_t *model = nullptr;
  lb_status_t st;
  lb_status_code_t code = lb_model_load(dir.c_str(), &model, &st);
  message = st.message;
  EXPECT_EQ(model == nullptr, code != LB_OK);
  lb_model_free(model);
  return code;
}

void expectLoadFails(const std::string &dir, lb_status_code_t code,
                     const std::string &needle) {
  std::string msg;
  EXPECT_EQ(loadStatus(dir, msg), code) << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << msg;
}

void editManifest(const std::string &dir, const std::string &from,
                  const std::string &to) {
  std::string text = readFile(dir + "/manifest.json");
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
  writeFile(dir + "/manifest.json", text);
}
} // namespace

TEST(RuntimeBadArtifact, MissingThings) {
  REQUIRE_STORIES();
  expectLoadFails("/nonexistent/artifact", LB_ERROR_IO, "No such file");
  expectLoadFails(kStories, LB_ERROR_INVALID_ARGUMENT, "not a directory");
  Spec spec;
  spec.kernels = true;
  Built b = build("missing", spec);
  fs::remove(b.dir + "/model.so");
  expectLoadFails(b.dir, LB_ERROR_IO, "model.so");
  fs::remove(b.dir + "/weights.bin");
  expectLoadFails(b.dir, LB_ERROR_IO, "weights.bin");
  fs::remove(b.dir + "/manifest.json");
  expectLoadFails(b.dir, LB_ERROR_IO, "manifest.json");
}

TEST(RuntimeBadArtifact, WeightsFileSize) {
  REQUIRE_STORIES();
  Built b = build("size", Spec());
  std::string weights = readFile(b.dir + "/weights.bin");
  writeFile(b.dir + "/weights.bin", weights.substr(0, weights.size() - 100));
  expectLoadFails(b.dir, LB_ERROR_BAD_ARTIFACT, "(truncated)");
  writeFile(b.dir + "/weights.bin", weights + "x");
  expectLoadFails(b.dir, LB_ERROR_BAD_ARTIFACT, "but the manifest says");
  writeFile(b.dir + "/weights.bin", "");
  expectLoadFails(b.dir, LB_ERROR_BAD_ARTIFACT, "has 0 bytes");
}

TEST(RuntimeBadArtifact, AbiVersion) {
  REQUIRE_STORIES();
  Spec spec;
  spec.kernels = true;
  Built b = build("abi", spec);
  editManifest(b.dir, "\"abi_version\": " + std::to_string(LB_KERNEL_ABI_VERSION),
               "\"abi_version\": 999");
  expectLoadFails(b.dir, LB_ERROR_ABI_MISMATCH, "recompile");
  spec.library = TEST_KERNELS_BADABI_SO;
  Built c = build("abi2", spec);
  expectLoadFails(c.dir, LB_ERROR_ABI_MISMATCH, "kernels built for ABI version 999");
}

TEST(RuntimeBadArtifact, CodeFile) {
  REQUIRE_STORIES();
  Spec spec;
  spec.kernels = true;
  Built b = build("code", spec);
#if defined(__x86_64__)
  // Code for another CPU is refused, not executed into SIGILL.
  editManifest(b.dir, "\"target\": \"test\"", "\"target\": \"aarch64\"");
  expectLoadFails(b.dir, LB_ERROR_UNSUPPORTED, "which this CPU cannot execute");
  editManifest(b.dir, "\"target\": \"aarch64\"", "\"target\": \"test\"");
#endif
  editManifest(b.dir, "\"test_mm_f32_k64_r1\"", "\"no_such_kernel\"");
  expectLoadFails(b.dir, LB_ERROR_BAD_ARTIFACT, "lacks kernel 'no_such_kernel'");
  // A new file: a loaded library may stay mapped after dlclose, and
  // rewriting it in place would pull the rug from under the process.
  writeFile(b.dir + "/bad.so", "not an ELF file");
  editManifest(b.dir, "\"code\": \"model.so\"", "\"code\": \"bad.so\"");
  expectLoadFails(b.dir, LB_ERROR_BAD_ARTIFACT,
                  "bad.so: has 15 bytes but the manifest says");
  // The right size, still not an ELF file: dlopen says so.
  writeFile(b.dir + "/bad2.so",
            std::string(fs::file_size(b.dir + "/model.so"), 'x'));
  editManifest(b.dir, "\"code\": \"bad.so\"", "\"code\": \"bad2.so\"");
  expectLoadFails(b.dir, LB_ERROR_BAD_ARTIFACT, "cannot load");
}

TEST(RuntimeBadArtifact, InconsistentManifest) {
  REQUIRE_STORIES();
  Built b = build("inconsistent", Spec());
  const std::string good = readFile(b.dir + "/manifest.json");
  auto expectWith = [&](const std::string &from, const std::string &to,
                        lb_status_code_t code, const std::string &needle) {
    writeFile(b.dir + "/manifest.json", good);
    editManifest(b.dir, from, to);
    expectLoadFails(b.dir, code, needle);
  };
  expectWith("\"format\": \"lowbit-native\"", "\"format\": \"other\"",
             LB_ERROR_BAD_ARTIFACT, "expected 'lowbit-native'");
  expectWith("{", "[", LB_ERROR_BAD_ARTIFACT, "invalid JSON");
  expectWith("\"format\": \"f32\"", "\"format\": \"q9_9\"",
             LB_ERROR_BAD_ARTIFACT, "'q9_9' is not a known format");
  expectWith("\"offset\": 0,", "\"offset\": 99999999,", LB_ERROR_BAD_ARTIFACT,
             "reach past the");
  expectWith("\"size\": 131072", "\"size\": 131000", LB_ERROR_BAD_ARTIFACT,
             "does not match f32 512x64");
  expectWith("\"weights\": \"weights.bin\"", "\"weights\": \"../x\"",
             LB_ERROR_BAD_ARTIFACT, "plain file names");
  // The program reads token_embd as 512x64; the manifest now says 256x128.
  expectWith("\"shape\": [\n        512,\n        64\n      ]",
             "\"shape\": [256, 128]", LB_ERROR_BAD_ARTIFACT,
             "token_embd.weight is 256x128 but the program reads it as 512x64");
  expectWith("\"name\": \"output_norm.weight\"", "\"name\": \"other.weight\"",
             LB_ERROR_BAD_ARTIFACT,
             "uses weight output_norm.weight, which is neither a tensor nor a "
             "part of one");
}

TEST(RuntimeBadArtifact, Program) {
  REQUIRE_STORIES();
  Built b = build("program", Spec());
  const lb_program good = testProgram(b.desc).program;
  const std::string so = b.dir + "/model.so";
  auto expectWith = [&](const lb_program *p, lb_status_code_t code,
                        const std::string &needle) {
    installProgram(so, p);
    expectLoadFails(b.dir, code, needle);
  };
  expectWith(nullptr, LB_ERROR_BAD_ARTIFACT, "the program is missing");
  lb_program bad = good;
  bad.abi_version = 2;
  expectWith(&bad, LB_ERROR_ABI_MISMATCH, "program built for ABI version 2");
  bad = good;
  bad.result = bad.num_values;
  expectWith(&bad, LB_ERROR_BAD_ARTIFACT, "names logits value");
  bad = good;
  std::vector<int64_t> narrow(good.buffer_width,
                              good.buffer_width + good.num_buffers);
  narrow[good.value_buffer[good.result]] = 1;
  bad.buffer_width = narrow.data();
  expectWith(&bad, LB_ERROR_BAD_ARTIFACT, "which cannot hold it");
  bad = good;
  bad.cache_kv_heads = 3; // 8 query heads do not group over 3
  expectWith(&bad, LB_ERROR_BAD_ARTIFACT, "invalid KV cache shape");
  bad = good;
  bad.forward = nullptr;
  expectWith(&bad, LB_ERROR_BAD_ARTIFACT, "has no values, buffers or entry");
  installProgram(so, &good);
  std::string msg;
  EXPECT_EQ(loadStatus(b.dir, msg), LB_OK) << msg;
}

//===----------------------------------------------------------------------===//
// The manifest parser alone
//===----------------------------------------------------------------------===//

namespace {
runtime::Manifest smallManifest() {
  runtime::Manifest m;
  m.abiVersion = LB_KERNEL_ABI_VERSION;
  m.target = "x86-64-v3";
  m.triple = "x86_64-unknown-linux-gnu";
  m.codeFile = "model.so";
  m.codeSize = 5000;
  m.codeSha256 = std::string(64, 'c');
  m.weightsSize = 4096;
  m.weightsSha256 = std::string(64, 'a');
  m.metadataFile = "metadata.gguf";
  m.model.architecture = "test";
  m.model.vocab = 32000;
  m.model.heads = 8;
  runtime::ManifestTensor t;
  t.name = "blk.0.attn_qkv.weight";
  t.format = "q8_0";
  t.shape = {128, 64};
  t.interleave = 4;
  t.offset = 64;
  t.size = 128 * 68;
  t.kernel = "k";
  t.quantizer = "q";
  t.activationRowBytes = 68;
  t.parts = {{"blk.0.attn_q.weight", 64},
             {"blk.0.attn_k.weight", 32},
             {"blk.0.attn_v.weight", 32}};
  t.note = "fused";
  m.tensors.push_back(t);
  m.weightsSize = 64 + t.size;
  return m;
}
} // namespace

TEST(Manifest, RoundTrips) {
  runtime::Manifest m = smallManifest(), back;
  std::string err;
  std::string text = runtime::writeManifest(m);
  ASSERT_TRUE(runtime::parseManifest(text, back, err)) << err;
  EXPECT_EQ(runtime::writeManifest(back), text);
  ASSERT_EQ(back.tensors.size(), 1u);
  const runtime::ManifestTensor &t = back.tensors[0];
  EXPECT_EQ(t.rows(), 128);
  EXPECT_EQ(t.cols(), 64);
  EXPECT_EQ(t.interleave, 4u);
  EXPECT_EQ(t.parts.size(), 3u);
  EXPECT_EQ(t.parts[1].name, "blk.0.attn_k.weight");
  EXPECT_EQ(back.model.vocab, 32000);
  EXPECT_EQ(back.model.heads, 8);
  EXPECT_EQ(back.find("blk.0.attn_qkv.weight"), &back.tensors[0]);
  EXPECT_EQ(back.find("nope"), nullptr);
}

TEST(Manifest, RejectsWithTheFieldNamed) {
  const std::string good = runtime::writeManifest(smallManifest());
  auto fails = [&](const std::string &from, const std::string &to,
                   const std::string &needle) {
    std::string text = good;
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    runtime::Manifest m;
    std::string err;
    EXPECT_FALSE(runtime::parseManifest(text, m, err)) << from;
    EXPECT_NE(err.find(needle), std::string::npos) << err;
  };
  fails("\"version\": 4", "\"version\": 1", "version 1 is not supported");
  fails("\"version\": 4", "\"version\": 3", "version 3 is not supported");
  fails("\"version\": 4", "\"version\": -1", "version must be at least 1");
  fails("\"weights_sha256\": \"aaaa", "\"weights_sha256\": \"Aaaa",
        "weights_sha256 must be 64 lowercase hex digits");
  fails("\"code_sha256\": \"cccc", "\"code_sha256\": \"cc",
        "code_sha256 must be 64 lowercase hex digits");
  fails("\"code_size\": 5000,", "", "files.code_size missing");
  fails("\"interleave\": 4", "\"interleave\": 3", "power of two");
  fails("\"interleave\": 4", "\"interleave\": 256", "power of two");
  fails("\"rows\": 32\n", "\"rows\": 31\n", "rows add up to 127, not 128");
  fails("\"shape\": [\n        128,\n        64\n      ]", "\"shape\": []",
        "1 to 3 dimensions");
  fails("\"shape\": [\n        128,\n        64\n      ]",
        "\"shape\": [128, 60]", "not a multiple of q8_0's block size");
  fails("\"shape\": [\n        128,\n        64\n      ]",
        "\"shape\": [128, -64]", "positive integers");
  fails("\"activation_row_bytes\": 68", "\"activation_row_bytes\": 0",
        "must be set with a quantizer");
  fails("\"vocab\": 32000", "\"vocab\": -1", "model.vocab must be at least 0");
  fails("\"model\": {", "\"model\": 1, \"x\": {", "model must be an object");
  fails("\"code\": \"model.so\",", "", "files.code missing");
  fails("\"weights_size\": 8768", "\"weights_size\": 18446744073709551615",
        "too large");
  fails("\"tensors\": [", "\"tensors\": 3, \"x\": [", "tensors must be an array");

  runtime::Manifest m;
  std::string err;
  EXPECT_FALSE(runtime::parseManifest("", m, err));
  EXPECT_FALSE(runtime::parseManifest("{\"format\": 1}", m, err));
  EXPECT_NE(err.find("format must be a string"), std::string::npos) << err;
  EXPECT_FALSE(runtime::parseManifest(std::string("\0\xff{", 3), m, err));
}
