//===- FloatKernels.cpp - F32, F16, BF16 weights x f32 activations --------===//
//
// Float weights multiply the f32 activations directly (no quantizer): one
// step is 32 weights, four vector<8xf32> FMAs per (row, token), the weights
// widened from f16 (vcvtph2ps / fcvtl) or bf16 (a shift) in registers. Rows
// whose length is not a multiple of 32 finish with a scalar loop.
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

class FloatKernel : public FormatKernel {
public:
  FloatKernel(Format format, ISA) : format(format) {}

  int64_t weightsPerStep() const override { return 32; }
  int64_t weightBytesPerStep() const override { return 32 * elementBytes(); }
  int64_t actUnitsPerStep() const override { return 32; }
  Format activation() const override { return Format::F32; }

  void emitStep(TileContext &ctx, MutableArrayRef<Value> accs) override {
    VectorOps &v = ctx.v;
    const int64_t tokens = ctx.numTokens();
    for (int part = 0; part < 4; ++part) {
      SmallVector<Value> xs;
      for (Value at : ctx.actOffsets)
        xs.push_back(
            vector::LoadOp::create(v.b, v.loc, v.vecF32(8), ctx.x,
                                   ValueRange{v.addConst(at, 8 * part)}));
      for (int64_t i = 0; i < ctx.numRows(); ++i) {
        Value w = widen(v,
                        v.loadBytes(ctx.w,
                                    v.addConst(ctx.rowOffsets[i],
                                               8 * part * elementBytes()),
                                    8 * elementBytes()),
                        8);
        for (int64_t j = 0; j < tokens; ++j) {
          Value &acc = accs[i * tokens + j];
          acc = vector::FMAOp::create(v.b, v.loc, w, xs[j], acc);
        }
      }
    }
  }

  void emitTail(TileContext &ctx, int64_t rem,
                MutableArrayRef<Value> accs) override {
    VectorOps &v = ctx.v;
    const int64_t tokens = ctx.numTokens();
    // Scalar products added to lane 0 of each accumulator.
    auto loop = scf::ForOp::create(
        v.b, v.loc, v.index(0), v.index(rem), v.index(1),
        SmallVector<Value>(accs.begin(), accs.end()),
        [&](OpBuilder &b, Location loc, Value k, ValueRange iter) {
          VectorOps nv(b, loc, v.isa);
          SmallVector<Value> next(iter.begin(), iter.end());
          SmallVector<Value> xs;
          for (Value at : ctx.actOffsets)
            xs.push_back(memref::LoadOp::create(b, loc, ctx.x,
                                                ValueRange{nv.add(at, k)}));
          for (int64_t i = 0; i < ctx.numRows(); ++i) {
            Value at =
                nv.add(ctx.rowOffsets[i], nv.mulConst(k, elementBytes()));
            Value ws = scalar(nv, ctx.w, at);
            for (int64_t j = 0; j < tokens; ++j) {
              Value &acc = next[i * tokens + j];
              Value lane0 =
                  vector::ExtractOp::create(b, loc, acc, ArrayRef<int64_t>{0});
              Value sum = math::FmaOp::create(b, loc, ws, xs[j], lane0);
              acc = vector::InsertOp::create(b, loc, sum, acc,
                                             ArrayRef<int64_t>{0});
            }
          }
          scf::YieldOp::create(b, loc, next);
        });
    for (size_t i = 0; i < accs.size(); ++i)
      accs[i] = loop.getResult(i);
  }

private:
  int64_t elementBytes() const { return format == Format::F32 ? 4 : 2; }

  /// One weight at a byte offset, as f32.
  Value scalar(VectorOps &v, Value w, Value at) {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    switch (format) {
    case Format::F32:
      return v.loadF32(w, at);
    case Format::F16:
      return v.loadHalfAsF32(w, at);
    case Format::BF16: {
      Value h = v.loadScalar(w, at, b.getI16Type());
      Value wide = arith::ExtUIOp::create(b, loc, b.getI32Type(), h);
      Value shifted = arith::ShLIOp::create(b, loc, wide, v.i32(16));
      return arith::BitcastOp::create(b, loc, b.getF32Type(), shifted);
    }
    default:
      llvm_unreachable("not a float format");
    }
  }

  /// Bytes of n weights -> vector<nxf32>.
  Value widen(VectorOps &v, Value bytes, int64_t n) {
    OpBuilder &b = v.b;
    Location loc = v.loc;
    switch (format) {
    case Format::F32:
      return vector::BitCastOp::create(b, loc, v.vecF32(n), bytes);
    case Format::F16: {
      Value h = vector::BitCastOp::create(
          b, loc, VectorType::get({n}, b.getF16Type()), bytes);
      return arith::ExtFOp::create(b, loc, v.vecF32(n), h);
    }
    case Format::BF16: {
      Value h = vector::BitCastOp::create(b, loc, v.vecI16(n), bytes);
      Value wide = v.extend(h, 32, false);
      Value shifted = arith::ShLIOp::create(
          b, loc, wide,
          vector::BroadcastOp::create(b, loc, v.vecI32(n), v.i32(16)));
      return vector::BitCastOp::create(b, loc, v.vecF32(n), shifted);
    }
    default:
      llvm_unreachable("not a float format");
    }
  }

  Format format;
};

} // namespace

std::unique_ptr<FormatKernel> createFloatKernel(Format format, ISA isa) {
  switch (format) {
  case Format::F32:
  case Format::F16:
  case Format::BF16:
    return std::make_unique<FloatKernel>(format, isa);
  default:
    return nullptr;
  }
}

} // namespace mlir::lowbit::kernels
