//===- LinearKernels.cpp - Q4_0 ... Q8_0, IQ4_NL x Q8_0 -------------------===//
//
// ggml's 32-weight blocks against Q8_0 activations (f16 d, 32 x int8). One
// step of the k loop is one block. Per token the activation block is loaded
// once and shared by the rows of the tile; per row the weights are decoded
// once and shared by the tokens:
//
//   Q4_0  u = nibble (0..15), w = d (u - 8)
//   Q5_0  u = nibble | high bit << 4 (0..31), w = d (u - 16)
//   Q4_1  w = d u + m            Q5_1  w = d u + m, u 5 bits
//   Q8_0  w = d q, q signed
//   IQ4_NL w = d kIQ4NLLevels[nibble] (vpshufb / tbl lookup, then signed)
//
// The 4/5-bit formats decode two rows into one 32-byte vector (their 32
// quants are 16 bytes): one dot instruction sequence serves two rows, whose
// partial sums land in lanes 0-3 and 4-7 of a shared accumulator.
//
// Offsets are not subtracted per weight: the integer sum starts at
// -offset * dot(1, x) (computed once per token and block with the same dot
// instruction), which leaves one dot per row and block. Minimums add
// m * dx * sum(x), the sum again once per token and block. Then
// acc += float(isum) * (d * dx), the scales as broadcast vectors.
//
// Q4_0 prompts on x86 take the group prompt path instead: the 8 rows of an
// interleave group transposed so that lane i is row i, each activation
// dword broadcast to the 8 lanes (vpdpbusd with an embedded broadcast), the
// offset term and dx from per-token scratch: per token and block 8 dots and
// 3 float instructions for all 8 rows.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Formats/BlockLayouts.h"
#include "KernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

namespace mlir::lowbit::kernels {

namespace blocks = ::lowbit::formats::blocks;
/// The Q8_0 activation blocks the linear kernels read.
constexpr int64_t kActBytes = sizeof(blocks::Q8_0);
constexpr int64_t kActQs = offsetof(blocks::Q8_0, qs);

/// ggml's kvalues_iq4nl: the levels of IQ4_NL and IQ4_XS (the codec
/// library's decoders are the oracle the tests compare with).
const int8_t kIQ4NLLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                 1,    13,   25,  38,  53,  69,  89,  113};

namespace {

class LinearKernel : public FormatKernel {
public:
  LinearKernel(Format format, ISA isa) : format(format), isa(isa) {
    switch (format) {
    case Format::Q4_0:
      blockBytes = sizeof(blocks::Q4_0), offset = 8,
      qsAt = offsetof(blocks::Q4_0, qs);
      break;
    case Format::Q4_1:
      blockBytes = sizeof(blocks::Q4_1), hasMin = true,
      minAt = offsetof(blocks::Q4_1, m), qsAt = offsetof(blocks::Q4_1, qs);
      break;
    case Format::Q5_0:
      blockBytes = sizeof(blocks::Q5_0), offset = 16,
      highBitsAt = offsetof(blocks::Q5_0, qh),
      qsAt = offsetof(blocks::Q5_0, qs);
      break;
    case Format::Q5_1:
      blockBytes = sizeof(blocks::Q5_1), hasMin = true,
      minAt = offsetof(blocks::Q5_1, m), highBitsAt = offsetof(blocks::Q5_1, qh),
      qsAt = offsetof(blocks::Q5_1, qs);
      break;
    case Format::Q8_0:
      blockBytes = sizeof(blocks::Q8_0), isSigned = true,
      qsAt = offsetof(blocks::Q8_0, qs);
      break;
    case Format::IQ4_NL:
      blockBytes = sizeof(blocks::IQ4_NL), codebook = true,
      qsAt = offsetof(blocks::IQ4_NL, qs);
      break;
    default:
      llvm_unreachable("not a linear format");
    }
  }

  int64_t weightsPerStep() const override { return 32; }
  int64_t weightBytesPerStep() const override { return blockBytes; }
  int64_t actUnitsPerStep() const override { return kActBytes; }
  Format activation() const override { return Format::Q8_0; }
  /// 4- and 5-bit quants take 16 bytes a row: two rows per vector.
  int64_t rowsPerAccumulator() const override { return isSigned ? 1 : 2; }

  void emitStep(TileContext &ctx, MutableArrayRef<Value> accs) override {
    if (isSigned)
      emitSigned(ctx, accs);
    else
      emitPaired(ctx, accs);
  }

  /// Q4_0 on x86: one-token steps over a whole group of 8 interleaved rows.
  int64_t groupDecodeRows(const KernelSpec &spec) const override {
    if (format != Format::Q4_0 || spec.interleave != kGroup)
      return 0;
    return kGroup;
  }
  std::pair<int64_t, int64_t> groupDecodeLane(int64_t row) const override {
    // AVX2's vphaddw tree leaves the even rows in lanes 0-3, the odd in 4-7.
    if (isa == ISA::X86AVX2)
      return {0, (row % 2) * 4 + row / 2};
    return {0, row};
  }
  void emitGroupDecodeStep(VectorOps &v, Value w, Value xq, Value wAt,
                           Value xAt, MutableArrayRef<Value> accs) override {
    Value dx = v.loadHalfSplat(xq, xAt);
    auto [isum, lanes] =
        isa == ISA::X86AVX2   ? groupSumsAvx2(v, w, xq, wAt, xAt)
        : isa == ISA::AArch64Neon ? groupSumsNeon(v, w, xq, wAt, xAt)
                              : groupSumsVnni(v, w, xq, wAt, xAt);
    // The 8 rows' d as one vector, in the lane order of the sums.
    Value d;
    if (lanes) {
      d = lanes;
    } else {
      SmallVector<Value> halves;
      for (int64_t lane = 0; lane < kGroup; ++lane) {
        const int64_t row = lane < 4 ? 2 * lane : 2 * (lane - 4) + 1;
        // As i16: f16 elements are assembled through unpacks, i16 ones
        // with one vpinsrw each.
        halves.push_back(v.loadScalar(w, v.addConst(wAt, blockBytes * row),
                                      v.b.getI16Type()));
      }
      d = vector::BitCastOp::create(
          v.b, v.loc, VectorType::get({kGroup}, v.b.getF16Type()),
          vector::FromElementsOp::create(v.b, v.loc, v.vecI16(kGroup),
                                         halves));
    }
    d = arith::ExtFOp::create(v.b, v.loc, v.vecF32(8), d);
    Value scale = arith::MulFOp::create(v.b, v.loc, d, dx);
    accs[0] = v.fmaScaled(accs[0], isum, scale);
  }

  /// Q4_0 prompts on x86: lane i of the decoded vectors is row i of the
  /// group, each activation dword is broadcast to all 8 rows.
  int64_t groupPromptRows(const KernelSpec &spec) const override {
    // Q8_0 with AVX-512 VNNI: 8 rows of any interleave that divides 8,
    // decoded once per token block (emitGroupPromptDecode).
    if (format == Format::Q8_0 && isa == ISA::X86AVX512VNNI &&
        kGroup % spec.interleave == 0)
      return kGroup;
    if (format != Format::Q4_0 || spec.interleave != kGroup ||
        isa == ISA::AArch64Neon)
      return 0;
    return kGroup;
  }

  int64_t groupPromptDecodedBytes() const override {
    return format == Format::Q8_0 ? kQ8DecodedBytes : 0;
  }

  /// Q8_0: the 8 rows' quants plus 128 (unsigned for vpdpbusd; the prepared
  /// -128 * sum(x) takes it off again), transposed so that vector k holds
  /// dword k of every row (lane i row i), and the rows' d.
  void emitGroupPromptDecode(VectorOps &v, Value w, ArrayRef<Value> rowAts,
                             Value decoded, Value at) override {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    auto store = [&](Value vector, int64_t offset) {
      Value bytes = vector::BitCastOp::create(b, loc, v.vecI8(32), vector);
      vector::StoreOp::create(b, loc, bytes, decoded,
                              ValueRange{v.addConst(at, offset)});
    };
    SmallVector<Value> halves, q;
    for (Value rowAt : rowAts) {
      halves.push_back(v.loadScalar(w, rowAt, b.getI16Type()));
      Value biased = arith::XOrIOp::create(
          b, loc, v.loadBytes(w, v.addConst(rowAt, qsAt), 32),
          v.splatI8(0x80));
      q.push_back(vector::BitCastOp::create(b, loc, v.vecI32(8), biased));
    }
    Value d = vector::BitCastOp::create(
        b, loc, VectorType::get({kGroup}, b.getF16Type()),
        vector::FromElementsOp::create(b, loc, v.vecI16(kGroup), halves));
    store(arith::ExtFOp::create(b, loc, v.vecF32(8), d), kQ8DecodedD);
    SmallVector<Value, 8> dwords = v.transposeDwords(q);
    for (int64_t k = 0; k < 8; ++k)
      store(dwords[k], 32 * k);
  }

  /// ints: -offset * (sum of the block's x); floats: dx.
  void emitPromptPrepare(VectorOps &v, Value xq, Value xAt, Value ints,
                         Value floats, Value at) override {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    Value x = v.loadBytes(xq, v.addConst(xAt, kActQs), 32);
    // Q8_0's weights arrive biased by 128 (emitGroupPromptDecode).
    const int bias = format == Format::Q8_0 ? 128 : offset;
    Value partial = v.dotU(v.splatI32(0), v.splatI8(bias), x);
    Value sum = vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD,
                                            partial);
    Value neg = arith::SubIOp::create(b, loc, v.i32(0), sum);
    memref::StoreOp::create(b, loc, neg, ints, ValueRange{at});
    memref::StoreOp::create(b, loc, v.loadHalfAsF32(xq, xAt), floats,
                            ValueRange{at});
  }

  /// The group's 8 x 16 quant bytes transposed to 4 vectors of 8 dwords
  /// (dword j of row i in lane i: weights 4j..4j+3 in the low nibbles,
  /// 16+4j.. in the high ones) by two rounds of in-lane unpacks on rows
  /// (p, p + 4) pairs; the low and high nibbles of each are shared by all
  /// tokens of the tile.
  void emitGroupPromptStep(VectorOps &v, Value w, Value wAt, Value xq,
                           ArrayRef<Value> xAts, Value ints, Value floats,
                           ArrayRef<Value> sAts,
                           MutableArrayRef<Value> accs) override {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    if (format == Format::Q8_0) {
      emitQ8PromptStep(v, w, wAt, xq, xAts, ints, floats, sAts, accs);
      return;
    }
    SmallVector<Value> pairs;
    for (int64_t p = 0; p < 4; ++p) {
      Value lo = v.loadBytes(w, v.addConst(wAt, blockBytes * p + qsAt), 16);
      Value hi =
          v.loadBytes(w, v.addConst(wAt, blockBytes * (p + 4) + qsAt), 16);
      pairs.push_back(
          vector::BitCastOp::create(b, loc, v.vecI32(8), v.concat(lo, hi)));
    }
    Value t0 = v.unpackLo32(pairs[0], pairs[1]);
    Value t1 = v.unpackLo32(pairs[2], pairs[3]);
    Value t2 = v.unpackHi32(pairs[0], pairs[1]);
    Value t3 = v.unpackHi32(pairs[2], pairs[3]);
    Value cols[4] = {v.unpackLo64(t0, t1), v.unpackHi64(t0, t1),
                     v.unpackLo64(t2, t3), v.unpackHi64(t2, t3)};
    SmallVector<Value> low, high;
    for (Value c : cols) {
      Value bytes = vector::BitCastOp::create(b, loc, v.vecI8(32), c);
      low.push_back(v.andI8(bytes, 0x0f));
      high.push_back(v.andI8(v.shrI8(bytes, 4), 0x0f));
    }
    // The 8 rows' d.
    SmallVector<Value> halves;
    for (int64_t row = 0; row < kGroup; ++row)
      halves.push_back(v.loadScalar(w, v.addConst(wAt, blockBytes * row),
                                    b.getI16Type()));
    Value d = vector::BitCastOp::create(
        b, loc, VectorType::get({kGroup}, b.getF16Type()),
        vector::FromElementsOp::create(b, loc, v.vecI16(kGroup), halves));
    d = arith::ExtFOp::create(b, loc, v.vecF32(8), d);

    // Activation dword k of a token broadcast to 8 lanes (unaligned: a
    // 4-byte vector load, not an i32 scalar).
    auto xWord = [&](Value xAt, int64_t k) -> Value {
      Value four = v.loadBytes(xq, v.addConst(xAt, 2 + 4 * k), 4);
      Value word = vector::BitCastOp::create(b, loc, v.vecI32(1), four);
      Value wide = vector::BroadcastOp::create(b, loc, v.vecI32(8), word);
      return vector::BitCastOp::create(b, loc, v.vecI8(32), wide);
    };
    // k-major over the tokens: the tokens' dot chains interleave.
    const size_t T = xAts.size();
    SmallVector<Value> isum;
    for (size_t j = 0; j < T; ++j)
      isum.push_back(v.splat(
          memref::LoadOp::create(b, loc, ints, ValueRange{sAts[j]}), 8));
    if (isa == ISA::X86AVX2) {
      // |pairs| <= 2 * 15 * 127: eight of them fit in i16.
      SmallVector<Value> p16(T);
      for (int64_t k = 0; k < 4; ++k)
        for (size_t j = 0; j < T; ++j) {
          Value lh = v.add(v.x86MaddUbs(low[k], xWord(xAts[j], k)),
                           v.x86MaddUbs(high[k], xWord(xAts[j], 4 + k)));
          p16[j] = p16[j] ? v.add(p16[j], lh) : lh;
        }
      for (size_t j = 0; j < T; ++j)
        isum[j] = v.add(isum[j], v.x86MaddWd(p16[j], v.splatI16(1)));
    } else {
      for (int64_t k = 0; k < 8; ++k)
        for (size_t j = 0; j < T; ++j)
          isum[j] = v.dotU(isum[j], k < 4 ? low[k] : high[k - 4],
                           xWord(xAts[j], k));
    }
    for (size_t j = 0; j < T; ++j) {
      Value dx = v.splat(
          memref::LoadOp::create(b, loc, floats, ValueRange{sAts[j]}), 8);
      accs[j] =
          v.fmaScaled(accs[j], isum[j], arith::MulFOp::create(b, loc, d, dx));
    }
  }

private:
  static constexpr int64_t kGroup = 8;
  /// A decoded Q8_0 step: 8 quant vectors (dword k of the rows at 32k),
  /// then the rows' d as f32.
  static constexpr int64_t kQ8DecodedD = 8 * 32,
                           kQ8DecodedBytes = kQ8DecodedD + 32;

  /// Q8_0 over `decoded` at `at`: per token the prepared -128 * sum(x) plus
  /// 8 vpdpbusd with the activation dwords broadcast to the rows, in two
  /// chains (even and odd dwords) so 2T chains are in flight.
  void emitQ8PromptStep(VectorOps &v, Value decoded, Value at, Value xq,
                        ArrayRef<Value> xAts, Value ints, Value floats,
                        ArrayRef<Value> sAts, MutableArrayRef<Value> accs) {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    auto xWord = [&](Value xAt, int64_t k) -> Value {
      Value four = v.loadBytes(xq, v.addConst(xAt, kActQs + 4 * k), 4);
      Value word = vector::BitCastOp::create(b, loc, v.vecI32(1), four);
      Value wide = vector::BroadcastOp::create(b, loc, v.vecI32(8), word);
      return vector::BitCastOp::create(b, loc, v.vecI8(32), wide);
    };
    const size_t T = xAts.size();
    SmallVector<Value> even, odd(T, v.splatI32(0));
    for (size_t j = 0; j < T; ++j)
      even.push_back(v.splat(
          memref::LoadOp::create(b, loc, ints, ValueRange{sAts[j]}), 8));
    for (int64_t k = 0; k < 8; ++k) {
      Value quants = v.loadBytes(decoded, v.addConst(at, 32 * k), 32);
      for (size_t j = 0; j < T; ++j) {
        Value &sum = k % 2 ? odd[j] : even[j];
        sum = v.dotU(sum, quants, xWord(xAts[j], k));
      }
    }
    Value d = vector::BitCastOp::create(
        b, loc, v.vecF32(8),
        v.loadBytes(decoded, v.addConst(at, kQ8DecodedD), 32));
    for (size_t j = 0; j < T; ++j) {
      Value dx = v.splat(
          memref::LoadOp::create(b, loc, floats, ValueRange{sAts[j]}), 8);
      accs[j] = v.fmaScaled(accs[j], v.add(even[j], odd[j]),
                            arith::MulFOp::create(b, loc, d, dx));
    }
  }

  /// AVX2: rows 2p and 2p+1 share a vector as in emitPaired; the vpmaddubsw
  /// pairs of the 4 row pairs are reduced by a vphaddw tree to two i16
  /// lanes per row (16 weights each, |sum (u - 8) x| <= 16 * 8 * 128 fits
  /// after the offset term is subtracted; wrapping adds keep the partial
  /// sums exact) and widened by one vpmaddwd: [r0 r2 r4 r6 | r1 r3 r5 r7].
  std::pair<Value, Value> groupSumsAvx2(VectorOps &v, Value w, Value xq,
                                        Value wAt, Value xAt) {
    Value lo16 = v.loadBytes(xq, v.addConst(xAt, kActQs), 16);
    Value hi16 = v.loadBytes(xq, v.addConst(xAt, 18), 16);
    Value xLow = v.concat(lo16, lo16), xHigh = v.concat(hi16, hi16);
    Value eight = v.splatI8(offset);
    Value corr = v.add(v.x86MaddUbs(eight, xLow), v.x86MaddUbs(eight, xHigh));
    SmallVector<Value> pairs;
    for (int64_t p = 0; p < kGroup / 2; ++p) {
      Value atA = v.addConst(wAt, 2 * p * blockBytes);
      Value atB = v.addConst(atA, blockBytes);
      Value packed = v.concat(v.loadBytes(w, v.addConst(atA, qsAt), 16),
                              v.loadBytes(w, v.addConst(atB, qsAt), 16));
      Value low = v.andI8(packed, 0x0f);
      Value high = v.andI8(v.shrI8(packed, 4), 0x0f);
      pairs.push_back(
          v.add(v.x86MaddUbs(low, xLow), v.x86MaddUbs(high, xHigh)));
    }
    auto hadd = [&](Value a, Value b) {
      return v.intrinsic("llvm.x86.avx2.phadd.w", v.vecI16(16), {a, b});
    };
    Value tree = hadd(hadd(pairs[0], pairs[1]), hadd(pairs[2], pairs[3]));
    Value c = hadd(corr, corr);
    tree = arith::SubIOp::create(v.b, v.loc, tree, hadd(c, c));
    return {v.x86MaddWd(tree, v.splatI16(1)), Value()};
  }

  /// NEON: each row's 32 codes (u - 8, signed) against the activations with
  /// sdot, reduced to one lane per row. Slower than the x86 trees, but the
  /// group path is what makes every target's one-token result the same
  /// sequence of float operations (one fma per block and row, see
  /// Executor::blockIntegerMatmul), so an aarch64 artifact reproduces the
  /// executor's greedy text like an x86 one.
  std::pair<Value, Value> groupSumsNeon(VectorOps &v, Value w, Value xq,
                                        Value wAt, Value xAt) {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    Value x = v.loadBytes(xq, v.addConst(xAt, kActQs), 32);
    Value eight = v.splatI8(offset);
    SmallVector<Value> sums, scales;
    for (int64_t row = 0; row < kGroup; ++row) {
      Value at = v.addConst(wAt, row * blockBytes);
      Value packed = v.loadBytes(w, v.addConst(at, qsAt), 16);
      Value codes = arith::SubIOp::create(
          b, loc,
          v.concat(v.andI8(packed, 0x0f), v.andI8(v.shrI8(packed, 4), 0x0f)),
          eight);
      Value partial = v.dotS(v.splatI32(0), codes, x);
      sums.push_back(vector::ReductionOp::create(
          b, loc, vector::CombiningKind::ADD, partial));
      scales.push_back(v.loadScalar(w, at, b.getF16Type()));
    }
    Value isum = vector::FromElementsOp::create(b, loc, v.vecI32(kGroup), sums);
    Value d = vector::FromElementsOp::create(
        b, loc, VectorType::get({kGroup}, b.getF16Type()), scales);
    return {isum, d};
  }

  /// AVX-512 VNNI: four rows per 512-bit vector (one per 128-bit lane),
  /// gathered from three 64-byte loads of the group's 144 bytes with word
  /// permutes (vpermt2w), as are the 8 scales. vpdpbusd into accumulators
  /// that start at -8 * (sums of x); a dword permute tree leaves row i in
  /// lane i.
  std::pair<Value, Value> groupSumsVnni(VectorOps &v, Value w, Value xq,
                                        Value wAt, Value xAt) {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    auto words = [&](Value at) {
      return vector::BitCastOp::create(b, loc, v.vecI16(32),
                                       v.loadBytes(w, at, 64));
    };
    // Bytes [0, 64), [64, 128) and [80, 144) of the group's step. gather()
    // takes `n` words of field `field` (-1: d, 8 rows) of 4 rows from the
    // two loads starting at bytes aBase and bBase.
    Value l0 = words(wAt), l1 = words(v.addConst(wAt, 64)),
          l2 = words(v.addConst(wAt, 80));
    auto gather = [&](Value a, int64_t aBase, Value bv, int64_t bBase,
                      int64_t firstRow, int64_t field, int64_t n) {
      SmallVector<int64_t> mask;
      const int64_t rows = field < 0 ? 8 : 4;
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t byte =
            blockBytes * (firstRow + i) + (field < 0 ? 0 : field);
        for (int64_t k = 0; k < n; ++k) {
          const int64_t at = byte + 2 * k;
          mask.push_back(at < aBase + 64 ? (at - aBase) / 2
                                         : 32 + (at - bBase) / 2);
        }
      }
      return vector::ShuffleOp::create(b, loc, a, bv, mask).getResult();
    };
    Value xLo16 = v.loadBytes(xq, v.addConst(xAt, kActQs), 16);
    Value xHi16 = v.loadBytes(xq, v.addConst(xAt, 18), 16);
    SmallVector<int64_t> four;
    for (int i = 0; i < 64; ++i)
      four.push_back(i % 16);
    Value xLow = v.shuffle(xLo16, four), xHigh = v.shuffle(xHi16, four);
    auto dot = [&](Value acc, Value u, Value s) {
      return v.intrinsic("llvm.x86.avx512.vpdpbusd.512", v.vecI32(16),
                         {acc, u, s});
    };
    Value zero = v.splatI32(0, 16);
    Value eight = v.splatI8(offset, 64);
    Value negCorr = arith::SubIOp::create(
        b, loc, zero, dot(dot(zero, eight, xLow), eight, xHigh));
    Value quads[2];
    for (int q = 0; q < 2; ++q) {
      Value packed = q == 0 ? gather(l0, 0, l1, 64, 0, qsAt, 8)
                            : gather(l1, 64, l2, 80, 4, qsAt, 8);
      packed = vector::BitCastOp::create(b, loc, v.vecI8(64), packed);
      Value low = v.andI8(packed, 0x0f);
      Value high = v.andI8(v.shrI8(packed, 4), 0x0f);
      quads[q] = dot(dot(negCorr, low, xLow), high, xHigh);
    }
    // Row k's four partial sums are lanes 4k..4k+3 of [quad0, quad1].
    SmallVector<int64_t> even, odd;
    for (int64_t half = 0; half < 2; ++half)
      for (int64_t k = 0; k < 8; ++k) {
        even.push_back(4 * k + 2 * half);
        odd.push_back(4 * k + 2 * half + 1);
      }
    Value sums = v.add(
        vector::ShuffleOp::create(b, loc, quads[0], quads[1], even),
        vector::ShuffleOp::create(b, loc, quads[0], quads[1], odd));
    Value isum = v.add(v.slice(sums, 0, 8), v.slice(sums, 8, 8));
    Value d = vector::BitCastOp::create(
        b, loc, VectorType::get({kGroup}, b.getF16Type()),
        gather(l0, 0, l1, 64, 0, -1, 1));
    return {isum, d};
  }

  /// Q8_0: one row per accumulator, signed dot products.
  void emitSigned(TileContext &ctx, MutableArrayRef<Value> accs) {
    VectorOps &v = ctx.v;
    const int64_t tokens = ctx.numTokens();
    SmallVector<Value> dx, xv;
    for (Value at : ctx.actOffsets) {
      dx.push_back(v.loadHalfSplat(ctx.xq, at));
      xv.push_back(v.loadBytes(ctx.xq, v.addConst(at, kActQs), 32));
    }
    for (int64_t i = 0; i < ctx.numRows(); ++i) {
      Value at = ctx.rowOffsets[i];
      Value d = v.loadHalfSplat(ctx.w, at);
      Value q = v.loadBytes(ctx.w, v.addConst(at, qsAt), 32);
      for (int64_t j = 0; j < tokens; ++j) {
        Value isum = v.dotS(v.splatI32(0), q, xv[j]);
        Value scale = arith::MulFOp::create(v.b, v.loc, d, dx[j]);
        accs[i * tokens + j] = v.fmaScaled(accs[i * tokens + j], isum, scale);
      }
    }
  }

  /// 4/5-bit formats: rows A and B of a pair share a vector, [A | B] for the
  /// first 16 weights of the block (low nibbles) and for the last 16 (high
  /// nibbles); the activations are arranged to match once per token:
  /// [x0..x15 | x0..x15] and [x16..x31 | x16..x31]. One dot then yields
  /// row A's partial sums in lanes 0-3 and row B's in lanes 4-7.
  void emitPaired(TileContext &ctx, MutableArrayRef<Value> accs) {
    VectorOps &v = ctx.v;
    OpBuilder &b = v.b;
    Location loc = v.loc;
    const int64_t tokens = ctx.numTokens();
    SmallVector<int64_t> lowTwice, highTwice;
    for (int i = 0; i < 32; ++i) {
      lowTwice.push_back(i % 16);
      highTwice.push_back(16 + i % 16);
    }
    SmallVector<Value> dx, xLow, xHigh, isumInit, xSum;
    for (Value at : ctx.actOffsets) {
      dx.push_back(v.loadHalfSplat(ctx.xq, at));
      Value q = v.loadBytes(ctx.xq, v.addConst(at, kActQs), 32);
      xLow.push_back(v.shuffle(q, lowTwice));
      xHigh.push_back(v.shuffle(q, highTwice));
      Value zero = v.splatI32(0);
      if (offset) {
        // offset * (sum of x) per lane group, subtracted once per token.
        Value off = v.splatI8(offset);
        Value corr = v.dotU2(zero, off, xLow.back(), off, xHigh.back());
        isumInit.push_back(arith::SubIOp::create(b, loc, zero, corr));
      } else {
        isumInit.push_back(zero);
      }
      if (hasMin) {
        Value one = v.splatI8(1);
        Value sum = v.dotU2(zero, one, xLow.back(), one, xHigh.back());
        Value sumF = arith::SIToFPOp::create(b, loc, v.vecF32(8), sum);
        xSum.push_back(arith::MulFOp::create(b, loc, sumF, dx.back()));
      }
    }
    const int64_t rows = ctx.numRows();
    for (int64_t p = 0; p < (rows + 1) / 2; ++p) {
      Value atA = ctx.rowOffsets[2 * p];
      Value atB = ctx.rowOffsets[std::min(2 * p + 1, rows - 1)];
      Value packed = v.concat(v.loadBytes(ctx.w, v.addConst(atA, qsAt), 16),
                              v.loadBytes(ctx.w, v.addConst(atB, qsAt), 16));
      Value low = v.andI8(packed, 0x0f);
      Value high = v.andI8(v.shrI8(packed, 4), 0x0f);
      if (codebook) {
        low = v.lookup16(kIQ4NLLevels, low);
        high = v.lookup16(kIQ4NLLevels, high);
      }
      if (highBitsAt >= 0) {
        auto [lowBits, highBits] = fifthBits(v, ctx.w, atA, atB);
        low = v.orI(low, lowBits);
        high = v.orI(high, highBits);
      }
      Value d = pairScales(v, ctx.w, atA, atB, 0);
      Value m = hasMin ? pairScales(v, ctx.w, atA, atB, minAt) : Value();
      for (int64_t j = 0; j < tokens; ++j) {
        // Codebook values are signed (|v| <= 127): two signed dots, the
        // vpmaddubsw pairs too large to add as i16.
        Value isum =
            codebook ? v.dotS(v.dotS(isumInit[j], low, xLow[j]), high, xHigh[j])
                     : v.dotU2(isumInit[j], low, xLow[j], high, xHigh[j]);
        Value scale = arith::MulFOp::create(b, loc, d, dx[j]);
        Value &acc = accs[p * tokens + j];
        acc = v.fmaScaled(acc, isum, scale);
        if (hasMin)
          acc = vector::FMAOp::create(b, loc, xSum[j], m, acc);
      }
    }
  }

  /// [h(A) x4, h(B) x4] as f32 for the f16 at byte `field` of both blocks:
  /// two broadcast loads, a blend, one conversion.
  Value pairScales(VectorOps &v, Value w, Value atA, Value atB, int field) {
    Type f16 = v.b.getF16Type();
    Value a = v.splat(v.loadScalar(w, v.addConst(atA, field), f16), 8);
    Value b = v.splat(v.loadScalar(w, v.addConst(atB, field), f16), 8);
    Value both = vector::ShuffleOp::create(
        v.b, v.loc, a, b, ArrayRef<int64_t>{0, 1, 2, 3, 8, 9, 10, 11});
    return arith::ExtFOp::create(v.b, v.loc, v.vecF32(8), both);
  }

  /// The fifth bits of a pair's quants, as 0/16 bytes laid out like the low
  /// and the high nibbles: bit e of a block's little-endian u32 belongs to
  /// element e. The first 16 bytes of a block hold the u32 (at 2 or 4).
  std::pair<Value, Value> fifthBits(VectorOps &v, Value w, Value atA,
                                    Value atB) {
    Value both = v.concat(v.loadBytes(w, atA, 16), v.loadBytes(w, atB, 16));
    SmallVector<int64_t> lowSpread, highSpread;
    SmallVector<Attribute> masks;
    for (int l = 0; l < 32; ++l) {
      const int64_t block = l < 16 ? 0 : 16, e = l % 16;
      lowSpread.push_back(block + highBitsAt + e / 8);
      highSpread.push_back(block + highBitsAt + 2 + e / 8);
      masks.push_back(v.b.getI8IntegerAttr(static_cast<int8_t>(1 << (e % 8))));
    }
    Value mask = arith::ConstantOp::create(
        v.b, v.loc, DenseElementsAttr::get(v.vecI8(32), masks));
    auto bits = [&](ArrayRef<int64_t> spread) -> Value {
      Value lanes = v.shuffle(both, spread);
      Value set = arith::CmpIOp::create(
          v.b, v.loc, arith::CmpIPredicate::ne,
          arith::AndIOp::create(v.b, v.loc, lanes, mask), v.splatI8(0));
      return arith::SelectOp::create(v.b, v.loc, set, v.splatI8(16),
                                     v.splatI8(0));
    };
    return {bits(lowSpread), bits(highSpread)};
  }

  Format format;
  ISA isa;
  int64_t blockBytes = 0;
  int offset = 0;        // subtracted from unsigned quants
  bool hasMin = false;   // f16 m after d
  bool isSigned = false; // int8 quants
  bool codebook = false; // nibbles index kIQ4NLLevels
  int64_t highBitsAt = -1, qsAt = 2, minAt = -1; // from BlockLayouts.h
};

} // namespace

std::unique_ptr<FormatKernel> createLinearKernel(Format format, ISA isa) {
  switch (format) {
  case Format::Q4_0:
  case Format::Q4_1:
  case Format::Q5_0:
  case Format::Q5_1:
  case Format::Q8_0:
  case Format::IQ4_NL:
    return std::make_unique<LinearKernel>(format, isa);
  default:
    return nullptr;
  }
}

} // namespace mlir::lowbit::kernels
