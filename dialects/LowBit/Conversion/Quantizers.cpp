//===- Quantizers.cpp - Activation quantizers (lb_quantize_act_fn) --------===//
//
// Byte-exact with the codec library's encoders (ggml's reference
// quantizers), so the kernels' integer sums can be checked exactly:
//
//   Q8_0 (32)   d = amax / 127 (stored as f16, saturated), q = round-half-
//               away(x * (1 / d)).
//   Q8_K (256)  max = the value of largest magnitude (first on ties),
//               iscale = -127 / max, q = min(127, round-half-even(x * iscale)),
//               d = 1 / iscale (f32), sums of each 16 q as int16.
//
// Each block is one iteration; all-zero blocks give zero scales and quants.
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

namespace mlir::lowbit::kernels {
namespace {

namespace fmt = ::lowbit::formats;

void quantizeQ8_0Block(VectorOps &v, Value x, Value xAt, Value q, Value qAt) {
  OpBuilder &b = v.b;
  Location loc = v.loc;
  Value xs = vector::LoadOp::create(b, loc, v.vecF32(32), x, ValueRange{xAt});
  Value amax = vector::ReductionOp::create(
      b, loc, vector::CombiningKind::MAXNUMF, math::AbsFOp::create(b, loc, xs));
  Value d = arith::DivFOp::create(b, loc, amax, v.f32(127.f));
  Value nonZero =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::ONE, d, v.f32(0));
  Value inv = arith::SelectOp::create(
      b, loc, nonZero, arith::DivFOp::create(b, loc, v.f32(1.f), d), v.f32(0));
  Value scaled = arith::MulFOp::create(b, loc, xs, v.splat(inv, 32));
  Value rounded = math::RoundOp::create(b, loc, scaled);
  Value quants = arith::FPToSIOp::create(b, loc, v.vecI8(32), rounded);
  Value clamped = arith::MinimumFOp::create(b, loc, d, v.f32(65504.f));
  Value half = arith::TruncFOp::create(b, loc, b.getF16Type(), clamped);
  v.storeScalar(half, q, qAt); // 34-byte blocks: f16-aligned
  vector::StoreOp::create(b, loc, quants, q, ValueRange{v.addConst(qAt, 2)});
}

void quantizeQ8_KBlock(VectorOps &v, Value x, Value xAt, Value q, Value qAt) {
  OpBuilder &b = v.b;
  Location loc = v.loc;
  constexpr int kParts = 16;
  SmallVector<Value> parts, absParts;
  Value absMax;
  for (int p = 0; p < kParts; ++p) {
    parts.push_back(vector::LoadOp::create(
        b, loc, v.vecF32(16), x, ValueRange{v.addConst(xAt, 16 * p)}));
    absParts.push_back(math::AbsFOp::create(b, loc, parts.back()));
    absMax = p ? arith::MaxNumFOp::create(b, loc, absMax, absParts.back())
                     .getResult()
               : absParts.back();
  }
  Value amax = vector::ReductionOp::create(
      b, loc, vector::CombiningKind::MAXNUMF, absMax);
  // First index whose magnitude is amax: the signed maximum of ggml.
  Value first;
  for (int p = 0; p < kParts; ++p) {
    SmallVector<Attribute> iota;
    for (int i = 0; i < 16; ++i)
      iota.push_back(b.getI32IntegerAttr(16 * p + i));
    Value index = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(v.vecI32(16), iota));
    Value hit = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ,
                                      absParts[p], v.splat(amax, 16));
    Value candidate =
        arith::SelectOp::create(b, loc, hit, index, v.splatI32(256, 16));
    first = p ? arith::MinSIOp::create(b, loc, first, candidate).getResult()
              : candidate;
  }
  Value firstIndex =
      vector::ReductionOp::create(b, loc, vector::CombiningKind::MINSI, first);
  Value inRange = arith::MinSIOp::create(b, loc, firstIndex, v.i32(255));
  Value max = memref::LoadOp::create(
      b, loc, x,
      ValueRange{v.add(
          xAt, arith::IndexCastOp::create(b, loc, b.getIndexType(), inRange))});
  Value nonZero =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, amax, v.f32(0));
  Value iscale = arith::SelectOp::create(
      b, loc, nonZero, arith::DivFOp::create(b, loc, v.f32(-127.f), max),
      v.f32(0));
  Value d = arith::SelectOp::create(
      b, loc, nonZero, arith::DivFOp::create(b, loc, v.f32(1.f), iscale),
      v.f32(0));
  v.storeScalar(d, q, qAt); // 292-byte blocks: f32-aligned
  SmallVector<Value> sums;
  for (int p = 0; p < kParts; ++p) {
    Value scaled = arith::MulFOp::create(b, loc, parts[p], v.splat(iscale, 16));
    Value rounded = math::RoundEvenOp::create(b, loc, scaled);
    Value capped = arith::MinimumFOp::create(
        b, loc, rounded,
        vector::BroadcastOp::create(b, loc, v.vecF32(16), v.f32(127.f)));
    Value quants = arith::FPToSIOp::create(b, loc, v.vecI8(16), capped);
    vector::StoreOp::create(b, loc, quants, q,
                            ValueRange{v.addConst(qAt, 4 + 16 * p)});
    Value wide = v.extend(quants, 32, true);
    Value sum =
        vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, wide);
    sums.push_back(arith::TruncIOp::create(b, loc, b.getI16Type(), sum));
  }
  Value allSums = vector::FromElementsOp::create(b, loc, v.vecI16(16), sums);
  Value bytes = vector::BitCastOp::create(b, loc, v.vecI8(32), allSums);
  vector::StoreOp::create(b, loc, bytes, q, ValueRange{v.addConst(qAt, 260)});
}

} // namespace

LogicalResult buildQuantizer(func::FuncOp fn, Format activation, ISA isa) {
  if (activation != Format::Q8_0 && activation != Format::Q8_K)
    return fn.emitError("no quantizer for ") << fmt::info(activation).name;
  Block *entry = fn.addEntryBlock();
  OpBuilder b = OpBuilder::atBlockBegin(entry);
  Location loc = fn.getLoc();
  VectorOps v(b, loc, isa);
  auto args = entry->getArguments(); // x, xq, tokens, cols, xStride
  auto toIndex = [&](Value i64) -> Value {
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), i64);
  };
  Value tokens = toIndex(args[2]), cols = toIndex(args[3]),
        xStride = toIndex(args[4]);
  const fmt::FormatInfo &fi = fmt::info(activation);
  Value blocks = arith::DivUIOp::create(b, loc, cols, v.index(fi.blockSize));
  Value rowBytes = v.mulConst(blocks, fi.blockBytes);
  Value xSize = arith::MulIOp::create(b, loc, args[2], args[4]);
  Value qSize = arith::MulIOp::create(
      b, loc, args[2],
      arith::IndexCastOp::create(b, loc, b.getI64Type(), rowBytes));
  Value x = memrefFromPointer(b, loc, args[0], xSize, b.getF32Type());
  Value q = memrefFromPointer(b, loc, args[1], qSize, b.getI8Type());

  scf::ForOp::create(
      b, loc, v.index(0), tokens, v.index(1), ValueRange{},
      [&](OpBuilder &tb, Location tl, Value t, ValueRange) {
        VectorOps tv(tb, tl, isa);
        Value xRow = tv.mul(t, xStride), qRow = tv.mul(t, rowBytes);
        scf::ForOp::create(
            tb, tl, tv.index(0), blocks, tv.index(1), ValueRange{},
            [&](OpBuilder &bb, Location bl, Value blk, ValueRange) {
              VectorOps bv(bb, bl, isa);
              Value xAt = bv.add(xRow, bv.mulConst(blk, fi.blockSize));
              Value qAt = bv.add(qRow, bv.mulConst(blk, fi.blockBytes));
              if (activation == Format::Q8_0)
                quantizeQ8_0Block(bv, x, xAt, q, qAt);
              else
                quantizeQ8_KBlock(bv, x, xAt, q, qAt);
              scf::YieldOp::create(bb, bl);
            });
        scf::YieldOp::create(tb, tl);
      });
  func::ReturnOp::create(b, loc);
  return success();
}

} // namespace mlir::lowbit::kernels
