//===- LinearKernels.cpp - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 x Q8_0 ------------===//
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
//
// Offsets are not subtracted per weight: the integer sum starts at
// -offset * dot(1, x) (computed once per token and block with the same dot
// instruction), which leaves one dot per row and block. Minimums add
// m * dx * sum(x), the sum again once per token and block. Then
// acc += float(isum) * (d * dx).
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

namespace mlir::lowbit::kernels {
namespace {

class LinearKernel : public FormatKernel {
public:
  LinearKernel(Format format, ISA) {
    switch (format) {
    case Format::Q4_0:
      blockBytes = 18, offset = 8, qsAt = 2;
      break;
    case Format::Q4_1:
      blockBytes = 20, hasMin = true, qsAt = 4;
      break;
    case Format::Q5_0:
      blockBytes = 22, offset = 16, highBitsAt = 2, qsAt = 6;
      break;
    case Format::Q5_1:
      blockBytes = 24, hasMin = true, highBitsAt = 4, qsAt = 8;
      break;
    case Format::Q8_0:
      blockBytes = 34, isSigned = true, qsAt = 2;
      break;
    default:
      llvm_unreachable("not a linear format");
    }
  }

  int64_t weightsPerStep() const override { return 32; }
  int64_t weightBytesPerStep() const override { return blockBytes; }
  int64_t actUnitsPerStep() const override { return 34; }
  Format activation() const override { return Format::Q8_0; }

  void emitStep(TileContext &ctx, MutableArrayRef<Value> accs) override {
    VectorOps &v = ctx.v;
    const int64_t tokens = ctx.numTokens();
    // Activations: scale, quants, and what offsets and minimums need.
    SmallVector<Value> dx, xv, isumInit, xSum;
    for (Value at : ctx.actOffsets) {
      dx.push_back(v.loadHalfSplat(ctx.xq, at));
      Value q = v.loadBytes(ctx.xq, v.addConst(at, 2), 32);
      xv.push_back(q);
      Value zero = v.splatI32(0);
      if (offset) {
        Value corr = v.dotU(zero, v.splatI8(offset), q);
        isumInit.push_back(arith::SubIOp::create(v.b, v.loc, zero, corr));
      } else {
        isumInit.push_back(zero);
      }
      if (hasMin) {
        Value sum = v.dotU(zero, v.splatI8(1), q);
        Value sumF = arith::SIToFPOp::create(v.b, v.loc, v.vecF32(8), sum);
        xSum.push_back(arith::MulFOp::create(v.b, v.loc, sumF, dx.back()));
      }
    }
    for (int64_t i = 0; i < ctx.numRows(); ++i) {
      Value at = ctx.rowOffsets[i];
      // Scales as broadcast vectors: scale products in vector registers.
      Value d = v.loadHalfSplat(ctx.w, at);
      Value m = hasMin ? v.loadHalfSplat(ctx.w, v.addConst(at, 2)) : Value();
      Value q = decode(v, ctx.w, at);
      for (int64_t j = 0; j < tokens; ++j) {
        Value isum = isSigned ? v.dotS(isumInit[j], q, xv[j])
                              : v.dotU(isumInit[j], q, xv[j]);
        Value scale = arith::MulFOp::create(v.b, v.loc, d, dx[j]);
        Value &acc = accs[i * tokens + j];
        acc = v.fmaScaled(acc, isum, scale);
        if (hasMin)
          acc = vector::FMAOp::create(v.b, v.loc, xSum[j], m, acc);
      }
    }
  }

private:
  /// The 32 quants of the block at `at`: signed for Q8_0, else unsigned.
  Value decode(VectorOps &v, Value w, Value at) {
    if (isSigned)
      return v.loadBytes(w, v.addConst(at, qsAt), 32);
    // Byte j holds element j (low nibble) and element j + 16 (high nibble).
    Value packed = v.loadBytes(w, v.addConst(at, qsAt), 16);
    Value u = v.concat(v.andI8(packed, 0x0f), v.shrI8(packed, 4));
    if (highBitsAt < 0)
      return u;
    // Bit e of the little-endian u32 is the fifth bit of element e: spread
    // byte e / 8 to lane e, test bit e % 8.
    // The first 16 bytes of the block hold the u32 (at 2 or 4).
    Value bits = v.loadBytes(w, at, 16);
    SmallVector<int64_t> spread;
    SmallVector<Attribute> masks;
    for (int e = 0; e < 32; ++e) {
      spread.push_back(highBitsAt + e / 8);
      masks.push_back(v.b.getI8IntegerAttr(static_cast<int8_t>(1 << (e % 8))));
    }
    Value lanes = v.shuffle(bits, spread);
    Value mask = arith::ConstantOp::create(
        v.b, v.loc, DenseElementsAttr::get(v.vecI8(32), masks));
    Value set = arith::CmpIOp::create(
        v.b, v.loc, arith::CmpIPredicate::ne,
        arith::AndIOp::create(v.b, v.loc, lanes, mask), v.splatI8(0));
    Value high =
        arith::SelectOp::create(v.b, v.loc, set, v.splatI8(16), v.splatI8(0));
    return v.orI(u, high);
  }

  int64_t blockBytes = 0;
  int offset = 0;        // subtracted from unsigned quants
  bool hasMin = false;   // f16 m after d
  bool isSigned = false; // int8 quants
  int64_t highBitsAt = -1, qsAt = 2;
};

} // namespace

std::unique_ptr<FormatKernel> createLinearKernel(Format format, ISA isa) {
  switch (format) {
  case Format::Q4_0:
  case Format::Q4_1:
  case Format::Q5_0:
  case Format::Q5_1:
  case Format::Q8_0:
    return std::make_unique<LinearKernel>(format, isa);
  default:
    return nullptr;
  }
}

} // namespace mlir::lowbit::kernels
