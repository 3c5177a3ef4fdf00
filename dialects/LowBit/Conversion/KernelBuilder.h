//===- KernelBuilder.h - IR building blocks of the native kernels -*- C++
//-*-===//
//
// Internal to convert-lowbit-to-kernels. Kernels are built from scf, vector,
// arith and memref ops on "256-bit logical" vectors: 32 weights of a block as
// vector<32xi8>, integer partial sums as vector<8xi32> (lane i sums bytes
// 4i..4i+3, the lane mapping of vpmaddubsw+vpmaddwd, vpdpbusd and sdot
// alike), float accumulators as vector<8xf32>. Only the integer dot
// products differ per instruction set (VectorOps); LLVM legalises the rest
// (two q registers per vector on AArch64).
//
// A kernel is: token blocks x row tiles x token tiles x a loop over the
// weight blocks of a row (the k loop), whose body a FormatKernel emits for a
// micro-tile of `rows x tokens` accumulators.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_DIALECT_LOWBIT_CONVERSION_KERNELBUILDER_H
#define LOWBIT_DIALECT_LOWBIT_CONVERSION_KERNELBUILDER_H

#include "lowbit/Formats/Formats.h"
#include "lowbit/Target/TargetTable.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <memory>
#include <string>

namespace mlir::lowbit::kernels {

using ::lowbit::formats::Format;
using ::lowbit::target::ISA;
using ::lowbit::target::KernelChoice;
using ::lowbit::target::TargetInfo;

/// What one generated matmul kernel computes.
struct KernelSpec {
  Format format;
  int64_t rows = 0, cols = 0;
  uint32_t interleave = 1;
  const TargetInfo *target = nullptr;
  const KernelChoice *choice = nullptr;
};

/// Symbol names: lb_mm_<format>_<rows>x<cols>_r<interleave>,
/// lb_quant_<activation format>.
std::string kernelSymbol(const KernelSpec &spec);
std::string quantizerSymbol(Format activation);

/// Vector building blocks, integer dot products per instruction set.
class VectorOps {
public:
  VectorOps(OpBuilder &b, Location loc, ISA isa) : b(b), loc(loc), isa(isa) {}

  OpBuilder &b;
  Location loc;
  ISA isa;

  bool isNeon() const { return isa == ISA::AArch64Neon; }
  bool hasVnni() const { return isa == ISA::X86AVX512VNNI; }

  // Types.
  VectorType vecI8(int64_t n = 32);
  VectorType vecI16(int64_t n = 16);
  VectorType vecI32(int64_t n = 8);
  VectorType vecF32(int64_t n = 8);

  // Constants.
  Value index(int64_t v);
  Value i32(int32_t v);
  Value f32(float v);
  Value splatI8(int v, int64_t n = 32);
  Value splatI16(int v, int64_t n = 16);
  Value splatI32(int v, int64_t n = 8);
  Value zeroF32(int64_t n = 8);
  /// Broadcast of a scalar.
  Value splat(Value scalar, int64_t n);

  // Index arithmetic.
  Value add(Value a, Value b);
  Value mul(Value a, Value b);
  Value addConst(Value a, int64_t c);
  Value mulConst(Value a, int64_t c);

  // Loads from a memref<?xi8> at a byte offset (index). Byte vectors are
  // 16 or 32 bytes (types every backend legalises); scalars go through a
  // memref.view of their own type, so their offsets must be aligned to their
  // size (true of every GGML block field read this way).
  Value loadBytes(Value mem, Value offset, int64_t n);
  /// memref<n x type> at a byte offset of a memref<?xi8>.
  Value scalarView(Value mem, Value offset, Type type, int64_t n);
  Value loadScalar(Value mem, Value offset, Type type);
  void storeScalar(Value value, Value mem, Value offset);
  /// An f16 / f32 / i32 scalar at a byte offset; f16 is widened to f32.
  Value loadHalfAsF32(Value mem, Value offset);
  /// An f16 scalar broadcast to vector<8xf32> (a broadcast load and one
  /// vector conversion: no partial-register merge that would chain loop
  /// iterations).
  Value loadHalfSplat(Value mem, Value offset);
  Value loadF32(Value mem, Value offset);
  Value loadI32(Value mem, Value offset);

  // Byte vector helpers (vector<nxi8>).
  Value andI8(Value v, int mask);
  Value shrI8(Value v, int bits); ///< Logical shift right.
  Value shlI8(Value v, int bits);
  Value orI(Value a, Value b);
  /// Two vector<16xi8> -> vector<32xi8>.
  Value concat(Value lo, Value hi);
  /// Elements [offset, offset + n) of a 1-D vector.
  Value slice(Value v, int64_t offset, int64_t n);
  /// Shuffle of one 1-D vector with a mask.
  Value shuffle(Value v, ArrayRef<int64_t> mask);
  /// vpunpck{l,h}{dq,qdq} of two vector<8xi32>: per 128-bit half, the low
  /// (high) two dwords or the low (high) qword of each, interleaved.
  Value unpackLo32(Value a, Value b);
  Value unpackHi32(Value a, Value b);
  Value unpackLo64(Value a, Value b);
  Value unpackHi64(Value a, Value b);
  /// The 8 x 8 dword transpose of 8 vector<8xi32> rows: result k holds
  /// dword k of every row, lane i row i.
  SmallVector<Value, 8> transposeDwords(ArrayRef<Value> rows);
  /// The unpacks above: `bits` 32 or 64, the low or `high` halves.
  Value unpack(Value a, Value b, unsigned bits, bool high);
  /// Sign/zero extension of an integer vector to `bits`.
  Value extend(Value v, unsigned bits, bool isSigned);

  // Integer dot products over groups of four bytes (lane i <- bytes 4i..4i+3).
  /// acc + dot(u, s): u unsigned and <= 127, s signed in [-127, 127].
  Value dotU(Value acc, Value u, Value s);
  /// acc + dot(u1, s1) + dot(u2, s2) (u <= 63): on AVX2 the two vpmaddubsw
  /// results are added as i16 before one vpmaddwd.
  Value dotU2(Value acc, Value u1, Value s1, Value u2, Value s2);
  /// acc + dot(a, s): a signed in [-128, 127], s signed in [-127, 127].
  Value dotS(Value acc, Value a, Value s);
  /// Integer sub-block scales of a super-block, widened once and arranged
  /// so that dotUScaled picks a chunk's scales with an in-lane shuffle
  /// (one vpshufb on x86). `scales` is vector<8xi8> (one per 32 weights) or
  /// vector<16xi8> (one per 16 weights).
  struct Scales {
    Value value;
    bool perSixteen;
  };
  Scales prepareScales(Value scales, bool isSigned);
  /// acc + sum over the 16-byte halves h of scale_h * dot(u_h, s_h) for
  /// chunk c (weights 32c .. 32c + 31): scale_0 and scale_1 are the scales of
  /// its two 16-weight halves (equal for per-32 scales); u <= 127.
  Value dotUScaled(Value acc, Value u, Value s, const Scales &scales,
                   int64_t chunk);
  /// The same for signed weights (|w| <= 127).
  Value dotSScaled(Value acc, Value w, Value s, const Scales &scales,
                   int64_t chunk);
  /// table[idx[i]] for the 32 indices (0..15) of `idx`: vpshufb / tbl.
  Value lookup16(ArrayRef<int8_t> table, Value idx);
  /// vector<16xi16> a, b -> vector<8xi32>: lane i = a[2i]b[2i] +
  /// a[2i+1]b[2i+1].
  Value pairDot16(Value a, Value b);

  /// acc + sitofp(isum) * splat(scale): the float step after integer sums.
  /// `scale` is an f32 scalar or already a vector<8xf32>.
  Value fmaScaled(Value acc, Value isum, Value scale);
  /// Horizontal sum of a vector<Nxf32>.
  Value reduceAdd(Value v);

  /// A call of an LLVM intrinsic (ISA-specific paths).
  Value intrinsic(StringRef name, Type result, ValueRange args);
  Value x86MaddUbs(Value u, Value s); ///< vpmaddubsw: vector<16xi16>.
  Value x86MaddWd(Value a, Value b);  ///< vpmaddwd: vector<8xi32>.

private:
  Value neonSdot(Value acc, Value a, Value s); ///< 32 bytes, two sdots.
};

/// The memrefs and offsets of one micro-tile at one step of the k loop.
struct TileContext {
  VectorOps &v;
  const KernelSpec &spec;
  Value w;  ///< memref<?xi8>: packed weights.
  Value xq; ///< memref<?xi8>: quantized activations (null for floats).
  Value x;  ///< memref<?xf32>: f32 activations.
  /// Per row of the tile: byte offset in `w` of this step's block.
  SmallVector<Value> rowOffsets;
  /// Per token of the tile: byte offset in `xq` of this step's activation
  /// block (quantized kernels) or element offset in `x` (float kernels).
  SmallVector<Value> actOffsets;
  int64_t numRows() const { return rowOffsets.size(); }
  int64_t numTokens() const { return actOffsets.size(); }
};

/// How one weight format is multiplied: the body of the k loop.
class FormatKernel {
public:
  virtual ~FormatKernel() = default;
  /// Weights of a row consumed per step of the k loop (32 or 256).
  virtual int64_t weightsPerStep() const = 0;
  /// Bytes of one block in the weight encoding (a step's block).
  virtual int64_t weightBytesPerStep() const = 0;
  /// Bytes (quantized) or elements (float) of activations per step.
  virtual int64_t actUnitsPerStep() const = 0;
  /// The activation format (F32 for float kernels).
  virtual Format activation() const = 0;
  /// Rows sharing one vector<8xf32> accumulator: 1, or 2 when lanes 0-3
  /// sum row 2p and lanes 4-7 row 2p + 1 (formats whose 32 weights fit in
  /// 16 bytes decode two rows per 256-bit vector). With 2 and an odd number
  /// of rows, the last accumulator's second half is ignored.
  virtual int64_t rowsPerAccumulator() const { return 1; }
  /// Emits one step; accs[a * tokens + j] (vector<8xf32>, a the accumulator
  /// of row a (or row pair a)) are updated.
  virtual void emitStep(TileContext &ctx, MutableArrayRef<Value> accs) = 0;
  /// The `rem` weights left after the whole steps (float formats only),
  /// emitted after the k loop; ctx offsets point at the first of them.
  virtual void emitTail(TileContext &ctx, int64_t rem,
                        MutableArrayRef<Value> accs) {}

  // An optional one-token (decode) path over whole interleaved groups: a
  // step reads the group's blocks of one k step (one contiguous span) and
  // reduces all its rows into few accumulators, so the float work per step
  // is one conversion and one fma for the whole group.
  /// Rows of the group this path handles (the layout's interleave); 0: none
  /// (decode uses emitStep tiles).
  virtual int64_t groupDecodeRows(const KernelSpec &spec) const { return 0; }
  /// vector<8xf32> accumulators of the group path.
  virtual int64_t groupDecodeAccumulators() const { return 1; }
  /// One k step: the group's blocks start at byte `wAt` of `w`, the token's
  /// activation block at byte `xAt` of `xq`.
  virtual void emitGroupDecodeStep(VectorOps &v, Value w, Value xq, Value wAt,
                                   Value xAt, MutableArrayRef<Value> accs) {}
  /// (accumulator, lane) that holds row `row` of the group.
  virtual std::pair<int64_t, int64_t> groupDecodeLane(int64_t row) const {
    return {0, row};
  }

  // An optional prompt (tokens > 1) path over whole interleaved groups: a
  // step decodes the group's blocks once into vectors whose lanes belong to
  // the group's rows (lane i row i for 8 rows; lanes 2i and 2i + 1 row i
  // for 4), reused by every token of the tile, so that each token's integer
  // sums come out one lane (or two) per row and the float work is one
  // conversion and one fma per token for all the rows. What depends only
  // on a token's block (offset correction, scale) is computed once per
  // token block into scratch (one i32 and one f32 per token and step).
  /// Rows of the group (the interleave); 0: none.
  virtual int64_t groupPromptRows(const KernelSpec &spec) const { return 0; }
  /// Fills ints[at] and floats[at] for the activation block at byte `xAt`.
  virtual void emitPromptPrepare(VectorOps &v, Value xq, Value xAt, Value ints,
                                 Value floats, Value at) {}
  /// One k step for tokens j: the group's blocks start at byte `wAt`, token
  /// j's activation block at byte xAts[j] and its scratch at sAts[j];
  /// accs[j] is a vector<8xf32>, lane i row i.
  virtual void emitGroupPromptStep(VectorOps &v, Value w, Value wAt, Value xq,
                                   ArrayRef<Value> xAts, Value ints,
                                   Value floats, ArrayRef<Value> sAts,
                                   MutableArrayRef<Value> accs) {}
  /// Bytes of one k step of the group's weights decoded into scratch once
  /// per token block and read by every token tile (emitGroupPromptStep then
  /// gets the scratch and the step's offset in it as `w` and `wAt`); 0: the
  /// step decodes the packed weights itself.
  virtual int64_t groupPromptDecodedBytes() const { return 0; }
  /// Decodes one k step of the group's rows into `decoded` at `at`; row i's
  /// block is at byte rowAts[i] of `w` (the group may span several
  /// interleave groups).
  virtual void emitGroupPromptDecode(VectorOps &v, Value w,
                                     ArrayRef<Value> rowAts, Value decoded,
                                     Value at) {}
  /// A token's results for the group's rows (vector<G x f32>) from its
  /// accumulator after the k loop: the accumulator itself when lane i is
  /// row i (G = 8); kernels with several lanes per row add them here.
  virtual Value groupPromptResult(VectorOps &v, Value acc) const { return acc; }
};

/// A 256-weight super-block format against Q8_K activations (the K-quants,
/// the i-quants): one super-block per k step.
class SuperBlockKernel : public FormatKernel {
public:
  explicit SuperBlockKernel(Format format) : format(format) {}
  int64_t weightsPerStep() const override { return 256; }
  int64_t weightBytesPerStep() const override {
    return ::lowbit::formats::info(format).blockBytes;
  }
  int64_t actUnitsPerStep() const override;
  Format activation() const override { return Format::Q8_K; }

protected:
  Format format;
};

/// ggml's IQ4_NL levels (LinearKernels.cpp).
extern const int8_t kIQ4NLLevels[16];

/// Null when the format has no kernel (the caller reports a fall-back).
std::unique_ptr<FormatKernel> createFormatKernel(Format format, ISA isa);
std::unique_ptr<FormatKernel> createLinearKernel(Format format, ISA isa);
std::unique_ptr<FormatKernel> createKQuantKernel(Format format, ISA isa);
std::unique_ptr<FormatKernel> createFloatKernel(Format format, ISA isa);
std::unique_ptr<FormatKernel> createLatticeKernel(Format format, ISA isa);

/// The arguments of a generated function, as memrefs/indices.
/// Builds a memref<?xT> over a raw pointer (an LLVM descriptor cast to a
/// memref, folded away by reconcile-unrealized-casts after lowering).
Value memrefFromPointer(OpBuilder &b, Location loc, Value ptr, Value size,
                        Type elementType);

/// Fills the body of `fn` (lb_matmul_kernel_fn signature) for `spec`.
LogicalResult buildMatmulKernel(func::FuncOp fn, const KernelSpec &spec,
                                FormatKernel &kernel);
/// Fills the body of `fn` (lb_quantize_act_fn signature) for `activation`.
LogicalResult buildQuantizer(func::FuncOp fn, Format activation, ISA isa);

/// Function attributes naming the target's CPU and features.
void setTargetAttributes(func::FuncOp fn, const TargetInfo &target);

} // namespace mlir::lowbit::kernels

#endif // LOWBIT_DIALECT_LOWBIT_CONVERSION_KERNELBUILDER_H
