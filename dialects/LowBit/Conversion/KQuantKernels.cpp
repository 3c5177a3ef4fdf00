//===- KQuantKernels.cpp - Q2_K ... Q6_K, IQ4_XS x Q8_K -------------------===//
//
// ggml's 256-weight super-blocks against Q8_K activations (f32 d, 256 x
// int8, 16 x int16 sums of 16). One step of the k loop is one super-block,
// processed as 8 chunks of 32 weights. Per chunk and row the quants are
// decoded to unsigned bytes u (at most 63) and multiplied with the
// activations, each 16-weight half scaled by its integer sub-block scale,
// into an integer sum per (row, token). After the 8 chunks:
//
//   acc += float(isum) * (d * dx)
//   acc -= float(pairs(mins, bsums)) * (dmin * dx)         Q2_K, Q4_K, Q5_K
//   acc -= float(pairs(scales, bsums)) * (offset * d * dx) Q3_K (4), Q6_K (32)
//
// where pairs() multiplies per-16 (or per-32, duplicated) integers with the
// activation block sums (vpmaddwd on x86): minimums and offsets cost one
// instruction per super-block instead of one per weight.
//
//   format  layout (bytes)                          chunk c (32 weights)
//   Q2_K    scales 16 | qs 64 | d | dmin            qs[32(c/4)..] >> 2(c%4) & 3
//   Q3_K    hmask 32 | qs 64 | scales 12 | d        as Q2_K | hmask bit c << 2
//   Q4_K    d | dmin | scales 12 | qs 128           qs[32(c/2)..] nibble c%2
//   Q5_K    d | dmin | scales 12 | qh 32 | qs 128   as Q4_K | qh bit c << 4
//   Q6_K    ql 128 | qh 64 | scales 16 | d          ql nibble | qh 2 bits << 4
//   IQ4_XS  d | scales_h 2 | scales_l 4 | qs 128    levels[nibble], signed
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"
#include "lowbit/Formats/BlockLayouts.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

namespace mlir::lowbit::kernels {
namespace {

/// Field offsets from BlockLayouts.h: the Q8_K activation blocks and the
/// weight fields read at fixed places.
namespace blocks = ::lowbit::formats::blocks;
constexpr int64_t kActQs = offsetof(blocks::Q8_K, qs),
                  kActSums = offsetof(blocks::Q8_K, bsums),
                  kActBytes = sizeof(blocks::Q8_K);
constexpr int64_t kQ4KQs = offsetof(blocks::Q4_K, qs),
                  kQ6KQl = offsetof(blocks::Q6_K, ql),
                  kQ6KQh = offsetof(blocks::Q6_K, qh),
                  kQ3KScales = offsetof(blocks::Q3_K, scales);

/// What a row contributes to one super-block.
struct RowBlock {
  Value at;                 // byte offset of the super-block
  Value d, dmin;            // vector<8xf32> broadcasts (dmin: null when unused)
  VectorOps::Scales scales; // per 32 (Q4_K, Q5_K) or per 16 weights
  Value raw;                // the integer scales as loaded (vector<Nxi8>)
  Value pairs; // vector<16xi16> multiplied with the activation sums (null
               // when nothing is subtracted: IQ4_XS)
};

class KQuantKernel : public SuperBlockKernel {
public:
  KQuantKernel(Format format, ISA isa) : SuperBlockKernel(format), isa(isa) {}

  void emitStep(TileContext &ctx, MutableArrayRef<Value> accs) override {
    VectorOps &v = ctx.v;
    const int64_t rows = ctx.numRows(), tokens = ctx.numTokens();
    SmallVector<Value> dx, sums;
    for (Value at : ctx.actOffsets) {
      dx.push_back(v.splat(v.loadF32(ctx.xq, at), 8));
      sums.push_back(vector::BitCastOp::create(
          v.b, v.loc, v.vecI16(16),
          v.loadBytes(ctx.xq, v.addConst(at, kActSums), 32)));
    }
    SmallVector<RowBlock> rowBlocks;
    for (Value at : ctx.rowOffsets)
      rowBlocks.push_back(loadRow(v, ctx.w, at));

    SmallVector<Value> isum(rows * tokens, v.splatI32(0));
    if (wideDecode(v)) {
      // Each row's quants and scales decoded once, shared by the tokens.
      SmallVector<SmallVector<Value>> x;
      for (Value at : ctx.actOffsets) {
        x.emplace_back();
        for (int64_t j = 0; j < 4; ++j)
          x.back().push_back(
              v.loadBytes(ctx.xq, v.addConst(at, kActQs + 64 * j), 64));
      }
      for (int64_t i = 0; i < rows; ++i) {
        WideRow wr = wideRow(v, ctx.w, rowBlocks[i]);
        for (int64_t j = 0; j < tokens; ++j)
          isum[i * tokens + j] = wideSums(v, wr, x[j]);
      }
    }
    for (int c = 0; c < 8 && !wideDecode(v); ++c) {
      SmallVector<Value> xc;
      for (Value at : ctx.actOffsets)
        xc.push_back(v.loadBytes(ctx.xq, v.addConst(at, kActQs + 32 * c), 32));
      for (int64_t i = 0; i < rows; ++i) {
        Value u = chunk(v, ctx.w, rowBlocks[i].at, c);
        for (int64_t j = 0; j < tokens; ++j)
          isum[i * tokens + j] =
              format == Format::IQ4_XS
                  ? v.dotSScaled(isum[i * tokens + j], u, xc[j],
                                 rowBlocks[i].scales, c)
                  : v.dotUScaled(isum[i * tokens + j], u, xc[j],
                                 rowBlocks[i].scales, c);
      }
    }

    for (int64_t i = 0; i < rows; ++i) {
      const RowBlock &rb = rowBlocks[i];
      for (int64_t j = 0; j < tokens; ++j) {
        Value &acc = accs[i * tokens + j];
        Value scale = arith::MulFOp::create(v.b, v.loc, rb.d, dx[j]);
        acc = v.fmaScaled(acc, isum[i * tokens + j], scale);
        if (!rb.pairs)
          continue;
        Value pairs = v.pairDot16(rb.pairs, sums[j]);
        // Minimums subtract dmin * m; offsets subtract offset * d * scale.
        Value factor =
            rb.dmin ? arith::MulFOp::create(v.b, v.loc, rb.dmin, dx[j])
                    : arith::MulFOp::create(
                          v.b, v.loc, scale,
                          v.splat(v.f32(static_cast<float>(offset())), 8));
        Value negated = arith::NegFOp::create(v.b, v.loc, factor);
        acc = v.fmaScaled(acc, pairs, negated);
      }
    }
  }

  /// Q4_K prompts with AVX-512 VNNI over the groups of 4 interleaved rows:
  /// lanes 2i and 2i + 1 belong to row i and hold its even and odd dwords of
  /// each 8-byte piece, so a token's 8 activation bytes are one broadcast
  /// qword against all 4 rows. Per chunk (32 weights) 4 vpdpbusd give the
  /// chunk's sums, one vpmulld scales them by the rows' sub-block scales;
  /// the minimums cost two vpmaddwd per token and super-block.
  int64_t groupPromptRows(const KernelSpec &spec) const override {
    if (format != Format::Q4_K || isa != ISA::X86AVX512VNNI ||
        spec.interleave != kPromptGroup)
      return 0;
    return kPromptGroup;
  }

  /// The group's super-block decoded once per token block (kDecoded* are
  /// the byte offsets of its parts) and read back by every token tile.
  int64_t groupPromptDecodedBytes() const override { return kDecodedBytes; }

  void emitGroupPromptDecode(VectorOps &v, Value w, ArrayRef<Value> rowAts,
                             Value decoded, Value at) override {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    constexpr int64_t G = kPromptGroup;
    auto store = [&](Value vector, int64_t offset) {
      Value bytes = vector::BitCastOp::create(b, loc, v.vecI8(32), vector);
      vector::StoreOp::create(b, loc, bytes, decoded,
                              ValueRange{v.addConst(at, offset)});
    };
    // Per row: d, dmin and the 8 scales and minimums.
    SmallVector<Value> d, dmin, scales, mins;
    for (Value rowAt : rowAts) {
      d.push_back(v.loadScalar(
          w, v.addConst(rowAt, offsetof(blocks::Q4_K, d)), b.getI16Type()));
      dmin.push_back(v.loadScalar(
          w, v.addConst(rowAt, offsetof(blocks::Q4_K, dmin)), b.getI16Type()));
      auto [sc, m] = unpackScaleMin(
          v, w, v.addConst(rowAt, offsetof(blocks::Q4_K, scales)));
      scales.push_back(sc);
      mins.push_back(m);
    }
    // f16 pairs (d_i, d_i) -> vector<8xf32>, lanes 2i and 2i + 1.
    auto rowPairs = [&](ArrayRef<Value> halves) -> Value {
      SmallVector<Value> lanes;
      for (int64_t l = 0; l < 2 * G; ++l)
        lanes.push_back(halves[l / 2]);
      Value h = vector::BitCastOp::create(
          b, loc, VectorType::get({2 * G}, b.getF16Type()),
          vector::FromElementsOp::create(b, loc, v.vecI16(2 * G), lanes));
      return arith::ExtFOp::create(b, loc, v.vecF32(8), h);
    };
    store(rowPairs(d), kDecodedD);
    store(rowPairs(dmin), kDecodedDmin);
    // The 4 rows' 8 scales (or minimums) as 32 bytes, row-major.
    auto rows32 = [&](ArrayRef<Value> perRow) -> Value {
      SmallVector<int64_t> all;
      for (int64_t i = 0; i < 16; ++i)
        all.push_back(i);
      return v.concat(
          vector::ShuffleOp::create(b, loc, perRow[0], perRow[1], all),
          vector::ShuffleOp::create(b, loc, perRow[2], perRow[3], all));
    };
    Value allScales = rows32(scales), allMins = rows32(mins);
    for (int64_t c = 0; c < 8; ++c) {
      SmallVector<int64_t> mask;
      for (int64_t l = 0; l < 2 * G; ++l)
        mask.push_back(8 * (l / 2) + c);
      store(v.extend(v.shuffle(allScales, mask), 32, /*isSigned=*/false),
            kDecodedScales + 32 * c);
    }
    // Minimums as i16 pairs: lane (i, h) = (m_i[first + h],
    // m_i[first + 2 + h]).
    for (int64_t half = 0; half < 2; ++half) {
      const int64_t first = 4 * half;
      SmallVector<int64_t> mask;
      for (int64_t l = 0; l < 2 * G; ++l) {
        mask.push_back(8 * (l / 2) + first + l % 2);
        mask.push_back(8 * (l / 2) + first + 2 + l % 2);
      }
      store(v.extend(v.shuffle(allMins, mask), 16, /*isSigned=*/false),
            kDecodedMins + 32 * half);
    }
    // Chunks 2j and 2j + 1 are the low and high nibbles of the same 32 bytes
    // of each row; a 4 x 4 transpose of qwords puts qword p of the rows side
    // by side.
    for (int64_t j = 0; j < 4; ++j) {
      SmallVector<Value> q;
      for (int64_t r = 0; r < G; ++r)
        q.push_back(vector::BitCastOp::create(
            b, loc, VectorType::get({4}, b.getI64Type()),
            v.loadBytes(w, v.addConst(rowAts[r], kQ4KQs + 32 * j), 32)));
      auto pick = [&](Value x, Value y, ArrayRef<int64_t> mask) -> Value {
        return vector::ShuffleOp::create(b, loc, x, y, mask);
      };
      const int64_t even[] = {0, 4, 2, 6}, odd[] = {1, 5, 3, 7};
      const int64_t lowHalves[] = {0, 1, 4, 5}, highHalves[] = {2, 3, 6, 7};
      Value e01 = pick(q[0], q[1], even), o01 = pick(q[0], q[1], odd);
      Value e23 = pick(q[2], q[3], even), o23 = pick(q[2], q[3], odd);
      Value pieces[4] = {pick(e01, e23, lowHalves), pick(o01, o23, lowHalves),
                         pick(e01, e23, highHalves), pick(o01, o23, highHalves)};
      for (int64_t p = 0; p < 4; ++p) {
        Value bytes = vector::BitCastOp::create(b, loc, v.vecI8(32), pieces[p]);
        store(v.andI8(bytes, 0x0f), kDecodedQuants + 32 * (4 * (2 * j) + p));
        store(v.andI8(v.shrI8(bytes, 4), 0x0f),
              kDecodedQuants + 32 * (4 * (2 * j + 1) + p));
      }
    }
  }

  /// `decoded` at `at`: the step as emitGroupPromptDecode left it.
  void emitGroupPromptStep(VectorOps &v, Value decoded, Value at, Value xq,
                           ArrayRef<Value> xAts, Value, Value, ArrayRef<Value>,
                           MutableArrayRef<Value> accs) override {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    constexpr int64_t G = kPromptGroup;
    auto load = [&](int64_t offset, VectorType type) -> Value {
      return vector::BitCastOp::create(
          b, loc, type, v.loadBytes(decoded, v.addConst(at, offset), 32));
    };
    const size_t T = xAts.size();
    SmallVector<Value> isum(T, v.splatI32(0));
    // Token j's activation bytes 8p .. 8p + 7 of chunk c, broadcast.
    auto xPiece = [&](Value xAt, int64_t c, int64_t p) -> Value {
      Value eight =
          v.loadBytes(xq, v.addConst(xAt, kActQs + 32 * c + 8 * p), 8);
      Value word = vector::BitCastOp::create(
          b, loc, VectorType::get({1}, b.getI64Type()), eight);
      Value wide = vector::BroadcastOp::create(
          b, loc, VectorType::get({4}, b.getI64Type()), word);
      return vector::BitCastOp::create(b, loc, v.vecI8(32), wide);
    };
    // Two chunks at a time, piece-major over the tokens: 2T independent
    // vpdpbusd chains in flight (one chain per chunk and token would leave
    // the unit waiting on its latency).
    for (int64_t c0 = 0; c0 < 8; c0 += 2) {
      Value quants[2][4];
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t p = 0; p < 4; ++p)
          quants[c][p] =
              load(kDecodedQuants + 32 * (4 * (c0 + c) + p), v.vecI8(32));
      SmallVector<Value> sums(2 * T, v.splatI32(0));
      for (int64_t p = 0; p < 4; ++p)
        for (size_t t = 0; t < T; ++t)
          for (int64_t c = 0; c < 2; ++c)
            sums[2 * t + c] = v.dotU(sums[2 * t + c], quants[c][p],
                                     xPiece(xAts[t], c0 + c, p));
      for (int64_t c = 0; c < 2; ++c) {
        Value scale = load(kDecodedScales + 32 * (c0 + c), v.vecI32(8));
        for (size_t t = 0; t < T; ++t)
          isum[t] = v.add(isum[t], arith::MulIOp::create(b, loc, sums[2 * t + c],
                                                         scale));
      }
    }
    Value mins01 = load(kDecodedMins, v.vecI16(16));
    Value mins45 = load(kDecodedMins + 32, v.vecI16(16));
    Value dRows = load(kDecodedD, v.vecF32(8));
    Value dminRows = load(kDecodedDmin, v.vecF32(8));
    for (size_t t = 0; t < T; ++t) {
      // Chunk sums of the activations (pairs of the 16 block sums), as i16:
      // lane (i, h) of the first vector (x_h, x_{2+h}), of the second
      // (x_{4+h}, x_{6+h}).
      Value sums16 = vector::BitCastOp::create(
          b, loc, v.vecI16(16),
          v.loadBytes(xq, v.addConst(xAts[t], kActSums), 32));
      Value chunkSums = arith::TruncIOp::create(
          b, loc, v.vecI16(8), v.pairDot16(sums16, v.splatI16(1)));
      auto xPairs = [&](int64_t first) -> Value {
        SmallVector<int64_t> mask;
        for (int64_t l = 0; l < 2 * G; ++l) {
          mask.push_back(first + l % 2);
          mask.push_back(first + 2 + l % 2);
        }
        return v.shuffle(chunkSums, mask);
      };
      Value minSum = v.add(v.pairDot16(mins01, xPairs(0)),
                           v.pairDot16(mins45, xPairs(4)));
      Value dx = v.splat(v.loadF32(xq, xAts[t]), 8);
      accs[t] = v.fmaScaled(accs[t], isum[t],
                            arith::MulFOp::create(b, loc, dRows, dx));
      Value factor = arith::MulFOp::create(b, loc, dminRows, dx);
      accs[t] = v.fmaScaled(accs[t], minSum,
                            arith::NegFOp::create(b, loc, factor));
    }
  }

  /// Lanes 2i and 2i + 1 summed: row i.
  Value groupPromptResult(VectorOps &v, Value acc) const override {
    auto lanes = [&](ArrayRef<int64_t> mask) -> Value {
      return vector::ShuffleOp::create(v.b, v.loc, acc, acc, mask);
    };
    const int64_t even[] = {0, 2, 4, 6}, odd[] = {1, 3, 5, 7};
    return arith::AddFOp::create(v.b, v.loc, lanes(even), lanes(odd));
  }

private:
  static constexpr int64_t kPromptGroup = 4;
  /// A decoded Q4_K group step: 32 quant vectors (chunk c, piece p at
  /// 4c + p), 8 chunk scale vectors (i32), 2 minimum pair vectors (i16), the
  /// rows' d and dmin (f32), 32 bytes each.
  static constexpr int64_t kDecodedQuants = 0, kDecodedScales = 32 * 32,
                           kDecodedMins = kDecodedScales + 8 * 32,
                           kDecodedD = kDecodedMins + 2 * 32,
                           kDecodedDmin = kDecodedD + 32,
                           kDecodedBytes = kDecodedDmin + 32;
  ISA isa;

  int offset() const { return format == Format::Q3_K ? 4 : 32; }

  /// AVX-512 VNNI: two chunks (64 weights) per 512-bit vector, vpmaddubsw
  /// pairs times their scales accumulated by vpdpwssd: the same integer
  /// sums as dotUScaled, in half the instructions.
  bool wideDecode(const VectorOps &v) const {
    return v.hasVnni() && (format == Format::Q4_K || format == Format::Q6_K);
  }

  /// A row's super-block for wideSums: quants and i16 scales of chunks
  /// 2j and 2j + 1 in element j.
  struct WideRow {
    SmallVector<Value, 4> quants, scales;
  };
  WideRow wideRow(VectorOps &v, Value w, const RowBlock &rb) {
    const bool q6 = format == Format::Q6_K;
    Value wide = v.extend(rb.raw, 16, /*isSigned=*/q6);
    WideRow wr;
    for (int64_t j = 0; j < 4; ++j) {
      // i16 lane i of the pairs covers weights 64j + 2i and 64j + 2i + 1.
      SmallVector<int64_t> mask;
      for (int64_t i = 0; i < 32; ++i)
        mask.push_back(q6 ? 4 * j + i / 8 : 2 * j + i / 16);
      wr.scales.push_back(v.shuffle(wide, mask));
      wr.quants.push_back(widePair(v, w, rb.at, j));
    }
    return wr;
  }

  /// Integer sums (vector<8xi32>) of one row's super-block; x[j] holds the
  /// activations of chunks 2j and 2j + 1.
  Value wideSums(VectorOps &v, const WideRow &wr, ArrayRef<Value> x) {
    Value isum = v.splatI32(0, 16);
    for (int64_t j = 0; j < 4; ++j) {
      Value pairs = v.intrinsic("llvm.x86.avx512.pmaddubs.w.512",
                                v.vecI16(32), {wr.quants[j], x[j]});
      isum = v.intrinsic("llvm.x86.avx512.vpdpwssd.512", v.vecI32(16),
                         {isum, pairs, wr.scales[j]});
    }
    return v.add(v.slice(isum, 0, 8), v.slice(isum, 8, 8));
  }

  /// Per 16-bit half shifts of a 32-byte vector broadcast to both halves
  /// of a 512-bit one: the first 32 bytes shifted by `first`, the rest by
  /// `second` (left when `left`). Bits crossing into the neighbouring byte
  /// are masked off by the callers.
  static Value shiftHalves(VectorOps &v, Value bytes32, int first, int second,
                           bool left) {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    Value both = v.concat(bytes32, bytes32);
    Value words = vector::BitCastOp::create(b, loc, v.vecI16(32), both);
    SmallVector<Attribute> counts;
    for (int i = 0; i < 32; ++i)
      counts.push_back(b.getI16IntegerAttr(i < 16 ? first : second));
    Value amount = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(v.vecI16(32), counts));
    Value shifted =
        left ? arith::ShLIOp::create(b, loc, words, amount).getResult()
             : arith::ShRUIOp::create(b, loc, words, amount).getResult();
    return vector::BitCastOp::create(b, loc, v.vecI8(64), shifted);
  }

  /// The unsigned quants of chunks 2j and 2j + 1 as one vector<64xi8>.
  Value widePair(VectorOps &v, Value w, Value at, int64_t j) {
    if (format == Format::Q4_K) {
      // Both chunks are the nibbles of the same 32 bytes.
      Value q = v.loadBytes(w, v.addConst(at, kQ4KQs + 32 * j), 32);
      return v.andI8(shiftHalves(v, q, 0, 4, false), 0x0f);
    }
    // Q6_K: the two chunks' ql are 64 consecutive bytes, their qh the same
    // 32 bytes at bit pairs 4(j % 2) and 4(j % 2) + 2, moved to bits 4-5.
    const int64_t h = j / 2, odd = j % 2;
    Value ql = v.loadBytes(w, v.addConst(at, kQ6KQl + 64 * h), 64);
    Value low = odd ? v.andI8(v.shrI8(ql, 4), 0x0f) : v.andI8(ql, 0x0f);
    Value qh = v.loadBytes(w, v.addConst(at, kQ6KQh + 32 * h), 32);
    Value high = odd ? shiftHalves(v, qh, 0, 2, false)
                     : shiftHalves(v, qh, 4, 2, true);
    return v.orI(low, v.andI8(high, 0x30));
  }

  /// Duplicates each of 8 bytes (per-32 values) to 16 i16 lanes.
  static Value perSixteenPairs(VectorOps &v, Value perThirtyTwo) {
    SmallVector<int64_t> mask;
    for (int i = 0; i < 16; ++i)
      mask.push_back(i / 2);
    return v.extend(v.shuffle(perThirtyTwo, mask), 16, false);
  }

  /// The Q4_K/Q5_K 12-byte 6-bit scales and minimums (ggml's utmp unpack):
  /// two vector<8xi8>.
  static std::pair<Value, Value> unpackScaleMin(VectorOps &v, Value w,
                                                Value at) {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    if (!v.isNeon()) {
      // In one 16-byte vector (q = the 12 bytes): scales then minimums,
      //   j < 4: q[j] & 63, q[j + 4] & 63
      //   j >= 4: q[j + 4] & 15 | (q[j - 4] >> 6) << 4,
      //           q[j + 4] >> 4 | (q[j] >> 6) << 4
      // a dozen vector instructions instead of ~20 scalar ones and inserts.
      Value q = v.loadBytes(w, at, 16);
      Value low = v.shuffle(q, {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9,
                                10, 11});
      SmallVector<bool> upper;
      SmallVector<Attribute> lowMask, highMask;
      for (int i = 0; i < 16; ++i) {
        const bool top = i % 8 >= 4;
        upper.push_back(i >= 12);
        lowMask.push_back(b.getI8IntegerAttr(top ? 15 : 63));
        highMask.push_back(b.getI8IntegerAttr(top ? 0x30 : 0));
      }
      auto constant = [&](ArrayRef<Attribute> values) -> Value {
        return arith::ConstantOp::create(
            b, loc, DenseElementsAttr::get(v.vecI8(16), values));
      };
      Value pick = arith::ConstantOp::create(
          b, loc,
          DenseElementsAttr::get(VectorType::get({16}, b.getI1Type()),
                                 ArrayRef<bool>(upper)));
      low = arith::SelectOp::create(b, loc, pick, v.shrI8(low, 4), low);
      low = arith::AndIOp::create(b, loc, low, constant(lowMask));
      Value high = v.shuffle(q, {0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 4, 5, 6,
                                 7});
      high = arith::AndIOp::create(b, loc, v.shrI8(high, 2),
                                   constant(highMask));
      Value both = v.orI(low, high);
      return {v.slice(both, 0, 8), v.slice(both, 8, 8)};
    }
    // 4-byte aligned in the block (offset 4 of 144 or 176 bytes).
    Value words = v.scalarView(w, at, b.getI32Type(), 3);
    auto word = [&](int64_t k) -> Value {
      return memref::LoadOp::create(b, loc, words, ValueRange{v.index(k)});
    };
    auto andC = [&](Value x, uint32_t m) -> Value {
      return arith::AndIOp::create(b, loc, x, v.i32(static_cast<int32_t>(m)));
    };
    auto shr = [&](Value x, int s) -> Value {
      return arith::ShRUIOp::create(b, loc, x, v.i32(s));
    };
    auto shl = [&](Value x, int s) -> Value {
      return arith::ShLIOp::create(b, loc, x, v.i32(s));
    };
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    Value u0 = word(0), u1 = word(1), u2 = word(2);
    Value sc0 = andC(u0, k1);
    Value sc1 = v.orI(andC(u2, k2), shl(andC(shr(u0, 6), k3), 4));
    Value m0 = andC(u1, k1);
    Value m1 = v.orI(andC(shr(u2, 4), k2), shl(andC(shr(u1, 6), k3), 4));
    auto bytes = [&](Value lo, Value hi) -> Value {
      Value pair = vector::FromElementsOp::create(b, loc, v.vecI32(2),
                                                  ValueRange{lo, hi});
      return vector::BitCastOp::create(b, loc, v.vecI8(8), pair);
    };
    return {bytes(sc0, sc1), bytes(m0, m1)};
  }

  /// Q3_K: 16 six-bit scales in 12 bytes, biased by 32 (ggml's aux unpack).
  /// `at` is the block; the scales are bytes 96..107 of its 110, not 4-byte
  /// aligned in general: read as words 1..3 of the 16 bytes 92..107.
  static Value unpackQ3Scales(VectorOps &v, Value w, Value at) {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    Value words = vector::BitCastOp::create(
        b, loc, v.vecI32(4), v.loadBytes(w, v.addConst(at, kQ3KScales - 4), 16));
    auto word = [&](int64_t k) -> Value {
      return vector::ExtractOp::create(b, loc, words, ArrayRef<int64_t>{k + 1});
    };
    auto andC = [&](Value x, uint32_t m) -> Value {
      return arith::AndIOp::create(b, loc, x, v.i32(static_cast<int32_t>(m)));
    };
    auto shr = [&](Value x, int s) -> Value {
      return s ? arith::ShRUIOp::create(b, loc, x, v.i32(s)).getResult() : x;
    };
    auto shl = [&](Value x, int s) -> Value {
      return arith::ShLIOp::create(b, loc, x, v.i32(s));
    };
    const uint32_t k1 = 0x03030303, k2 = 0x0f0f0f0f;
    Value a0 = word(0), a1 = word(1), t = word(2);
    Value s0 = v.orI(andC(a0, k2), shl(andC(shr(t, 0), k1), 4));
    Value s1 = v.orI(andC(a1, k2), shl(andC(shr(t, 2), k1), 4));
    Value s2 = v.orI(andC(shr(a0, 4), k2), shl(andC(shr(t, 4), k1), 4));
    Value s3 = v.orI(andC(shr(a1, 4), k2), shl(andC(shr(t, 6), k1), 4));
    Value all = vector::FromElementsOp::create(b, loc, v.vecI32(4),
                                               ValueRange{s0, s1, s2, s3});
    Value scales = vector::BitCastOp::create(b, loc, v.vecI8(16), all);
    return arith::SubIOp::create(b, loc, scales, v.splatI8(32, 16));
  }

  RowBlock loadRow(VectorOps &v, Value w, Value at) {
    RowBlock rb;
    rb.at = at;
    switch (format) {
    case Format::Q2_K: {
      rb.d = v.loadHalfSplat(w, v.addConst(at, offsetof(blocks::Q2_K, d)));
      rb.dmin = v.loadHalfSplat(w, v.addConst(at, offsetof(blocks::Q2_K, dmin)));
      Value packed =
          v.loadBytes(w, v.addConst(at, offsetof(blocks::Q2_K, scales)), 16);
      rb.scales = v.prepareScales(v.andI8(packed, 0x0f), false);
      rb.pairs = v.extend(v.shrI8(packed, 4), 16, false);
      break;
    }
    case Format::Q3_K: {
      rb.d = v.loadHalfSplat(w, v.addConst(at, offsetof(blocks::Q3_K, d)));
      Value scales = unpackQ3Scales(v, w, at);
      rb.scales = v.prepareScales(scales, true);
      rb.pairs = v.extend(scales, 16, true);
      break;
    }
    case Format::Q4_K:
    case Format::Q5_K: {
      // Q4_K and Q5_K share the head: d, dmin, the 12 scale bytes.
      static_assert(offsetof(blocks::Q4_K, scales) ==
                    offsetof(blocks::Q5_K, scales));
      rb.d = v.loadHalfSplat(w, v.addConst(at, offsetof(blocks::Q4_K, d)));
      rb.dmin = v.loadHalfSplat(w, v.addConst(at, offsetof(blocks::Q4_K, dmin)));
      auto [scales, mins] =
          unpackScaleMin(v, w, v.addConst(at, offsetof(blocks::Q4_K, scales)));
      rb.raw = scales;
      rb.scales = v.prepareScales(scales, false);
      rb.pairs = perSixteenPairs(v, mins);
      break;
    }
    case Format::Q6_K: {
      rb.d = v.loadHalfSplat(w, v.addConst(at, offsetof(blocks::Q6_K, d)));
      Value scales =
          v.loadBytes(w, v.addConst(at, offsetof(blocks::Q6_K, scales)), 16);
      rb.raw = scales;
      rb.scales = v.prepareScales(scales, true);
      rb.pairs = v.extend(scales, 16, true);
      break;
    }
    case Format::IQ4_XS: {
      // d | scales_h (u16) | scales_l (4 bytes) | qs: 6-bit scales - 32,
      // unpacked in eight i32 lanes with per-lane shifts.
      OpBuilder &b = v.b;
      Location loc = v.loc;
      rb.d = v.loadHalfSplat(w, v.addConst(at, offsetof(blocks::IQ4_XS, d)));
      Value high = arith::ExtUIOp::create(
          b, loc, b.getI32Type(),
          v.loadScalar(w, v.addConst(at, offsetof(blocks::IQ4_XS, scalesHigh)),
                       b.getI16Type()));
      Value low =
          v.loadI32(w, v.addConst(at, offsetof(blocks::IQ4_XS, scalesLow)));
      auto shifts = [&](int step) -> Value {
        SmallVector<Attribute> s;
        for (int i = 0; i < 8; ++i)
          s.push_back(b.getI32IntegerAttr(step * i));
        return arith::ConstantOp::create(
            b, loc, DenseElementsAttr::get(v.vecI32(8), s));
      };
      Value l = arith::AndIOp::create(
          b, loc, arith::ShRUIOp::create(b, loc, v.splat(low, 8), shifts(4)),
          v.splatI32(15));
      Value h = arith::AndIOp::create(
          b, loc, arith::ShRUIOp::create(b, loc, v.splat(high, 8), shifts(2)),
          v.splatI32(3));
      Value ls = arith::OrIOp::create(
          b, loc, l, arith::ShLIOp::create(b, loc, h, v.splatI32(4)));
      Value centered = arith::SubIOp::create(b, loc, ls, v.splatI32(32));
      Value bytes = arith::TruncIOp::create(b, loc, v.vecI8(8), centered);
      rb.scales = v.prepareScales(bytes, true);
      break;
    }
    default:
      llvm_unreachable("not a K-quant");
    }
    return rb;
  }

  /// The quants of chunk c (weights 32c .. 32c + 31) of a super-block:
  /// unsigned bytes, or for IQ4_XS the signed levels.
  Value chunk(VectorOps &v, Value w, Value at, int c) {
    switch (format) {
    case Format::Q2_K: {
      Value q = v.loadBytes(
          w, v.addConst(at, offsetof(blocks::Q2_K, qs) + 32 * (c / 4)), 32);
      return v.andI8(v.shrI8(q, 2 * (c % 4)), 3);
    }
    case Format::Q3_K: {
      Value q = v.loadBytes(
          w, v.addConst(at, offsetof(blocks::Q3_K, qs) + 32 * (c / 4)), 32);
      Value low = v.andI8(v.shrI8(q, 2 * (c % 4)), 3);
      Value h = v.loadBytes(w, v.addConst(at, offsetof(blocks::Q3_K, hmask)), 32);
      return v.orI(low, v.shlI8(v.andI8(v.shrI8(h, c), 1), 2));
    }
    case Format::Q4_K:
    case Format::Q5_K: {
      const int64_t qsAt = format == Format::Q4_K ? offsetof(blocks::Q4_K, qs)
                                                  : offsetof(blocks::Q5_K, qs);
      Value q = v.loadBytes(w, v.addConst(at, qsAt + 32 * (c / 2)), 32);
      Value nib = c % 2 ? v.shrI8(q, 4) : v.andI8(q, 0x0f);
      if (format == Format::Q4_K)
        return nib;
      Value h = v.loadBytes(w, v.addConst(at, offsetof(blocks::Q5_K, qh)), 32);
      return v.orI(nib, v.shlI8(v.andI8(v.shrI8(h, c), 1), 4));
    }
    case Format::Q6_K: {
      const int h = c / 4, r = c % 4;
      Value ql = v.loadBytes(w, v.addConst(at, kQ6KQl + 64 * h + 32 * (r % 2)), 32);
      Value low = r / 2 ? v.shrI8(ql, 4) : v.andI8(ql, 0x0f);
      Value qh = v.loadBytes(w, v.addConst(at, kQ6KQh + 32 * h), 32);
      Value high = v.andI8(v.shrI8(qh, 2 * r), 3);
      return v.orI(low, v.shlI8(high, 4));
    }
    case Format::IQ4_XS: {
      // 16 bytes per 32 weights: low nibbles first, then the high ones.
      Value q = v.loadBytes(w, v.addConst(at, offsetof(blocks::IQ4_XS, qs) + 16 * c), 16);
      Value idx = v.concat(v.andI8(q, 0x0f), v.shrI8(q, 4));
      return v.lookup16(kIQ4NLLevels, idx);
    }
    default:
      llvm_unreachable("not a K-quant");
    }
  }
};

} // namespace

int64_t SuperBlockKernel::actUnitsPerStep() const { return kActBytes; }

std::unique_ptr<FormatKernel> createKQuantKernel(Format format, ISA isa) {
  switch (format) {
  case Format::Q2_K:
  case Format::Q3_K:
  case Format::Q4_K:
  case Format::Q5_K:
  case Format::Q6_K:
  case Format::IQ4_XS:
    return std::make_unique<KQuantKernel>(format, isa);
  default:
    return nullptr;
  }
}

} // namespace mlir::lowbit::kernels
