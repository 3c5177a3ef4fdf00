//===- KernelBuilder.cpp - Vector ops and the kernel loop nest ------------===//
//
// VectorOps: the few operations that differ per instruction set (integer dot
// products) and thin helpers over arith/vector. buildMatmulKernel: the loop
// nest shared by every format (token blocks, row tiles, token tiles, the k
// loop), with the format's FormatKernel as the body.
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"

#include "lowbit/Formats/Formats.h"
#include "lowbit/Target/KernelABI.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ArmNeon/ArmNeonDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <algorithm>
#include <cctype>

namespace mlir::lowbit::kernels {

namespace fmt = ::lowbit::formats;

//===----------------------------------------------------------------------===//
// Names
//===----------------------------------------------------------------------===//

std::string kernelSymbol(const KernelSpec &spec) {
  return "lb_mm_" + std::string(fmt::info(spec.format).name) + "_" +
         std::to_string(spec.rows) + "x" + std::to_string(spec.cols) + "_r" +
         std::to_string(spec.interleave);
}

std::string quantizerSymbol(Format activation) {
  return "lb_quant_" + std::string(fmt::info(activation).name);
}

//===----------------------------------------------------------------------===//
// VectorOps
//===----------------------------------------------------------------------===//

VectorType VectorOps::vecI8(int64_t n) {
  return VectorType::get({n}, b.getI8Type());
}
VectorType VectorOps::vecI16(int64_t n) {
  return VectorType::get({n}, b.getI16Type());
}
VectorType VectorOps::vecI32(int64_t n) {
  return VectorType::get({n}, b.getI32Type());
}
VectorType VectorOps::vecF32(int64_t n) {
  return VectorType::get({n}, b.getF32Type());
}

Value VectorOps::index(int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}
Value VectorOps::i32(int32_t v) {
  return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
}
Value VectorOps::f32(float v) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
}

static Value splatConstant(OpBuilder &b, Location loc, VectorType type,
                           Attribute element) {
  return arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(type, ArrayRef<Attribute>(element)));
}

Value VectorOps::splatI8(int v, int64_t n) {
  return splatConstant(b, loc, vecI8(n), b.getI8IntegerAttr(v));
}
Value VectorOps::splatI16(int v, int64_t n) {
  return splatConstant(b, loc, vecI16(n), b.getI16IntegerAttr(v));
}
Value VectorOps::splatI32(int v, int64_t n) {
  return splatConstant(b, loc, vecI32(n), b.getI32IntegerAttr(v));
}
Value VectorOps::zeroF32(int64_t n) {
  return splatConstant(b, loc, vecF32(n), b.getF32FloatAttr(0));
}
Value VectorOps::splat(Value scalar, int64_t n) {
  return vector::BroadcastOp::create(
      b, loc, VectorType::get({n}, scalar.getType()), scalar);
}

Value VectorOps::add(Value x, Value y) {
  return arith::AddIOp::create(b, loc, x, y);
}
Value VectorOps::mul(Value x, Value y) {
  return arith::MulIOp::create(b, loc, x, y);
}
Value VectorOps::addConst(Value x, int64_t c) {
  return c == 0 ? x : add(x, index(c));
}
Value VectorOps::mulConst(Value x, int64_t c) {
  return c == 1 ? x : mul(x, index(c));
}

Value VectorOps::loadBytes(Value mem, Value offset, int64_t n) {
  return vector::LoadOp::create(b, loc, vecI8(n), mem, ValueRange{offset});
}

Value VectorOps::scalarView(Value mem, Value offset, Type type, int64_t n) {
  return memref::ViewOp::create(b, loc, MemRefType::get({n}, type), mem, offset,
                                ValueRange{});
}

Value VectorOps::loadScalar(Value mem, Value offset, Type type) {
  return memref::LoadOp::create(b, loc, scalarView(mem, offset, type, 1),
                                ValueRange{index(0)});
}

void VectorOps::storeScalar(Value value, Value mem, Value offset) {
  memref::StoreOp::create(b, loc, value,
                          scalarView(mem, offset, value.getType(), 1),
                          ValueRange{index(0)});
}

Value VectorOps::loadHalfAsF32(Value mem, Value offset) {
  Value h = loadScalar(mem, offset, b.getF16Type());
  return arith::ExtFOp::create(b, loc, b.getF32Type(), h);
}

Value VectorOps::loadHalfSplat(Value mem, Value offset) {
  Value h = loadScalar(mem, offset, b.getF16Type());
  Value halves = splat(h, 8);
  return arith::ExtFOp::create(b, loc, vecF32(8), halves);
}

Value VectorOps::loadF32(Value mem, Value offset) {
  return loadScalar(mem, offset, b.getF32Type());
}

Value VectorOps::loadI32(Value mem, Value offset) {
  return loadScalar(mem, offset, b.getI32Type());
}

static int64_t numElements(Value v) {
  return cast<VectorType>(v.getType()).getNumElements();
}

Value VectorOps::andI8(Value v, int mask) {
  return arith::AndIOp::create(b, loc, v, splatI8(mask, numElements(v)));
}
Value VectorOps::shrI8(Value v, int bits) {
  if (bits == 0)
    return v;
  return arith::ShRUIOp::create(b, loc, v, splatI8(bits, numElements(v)));
}
Value VectorOps::shlI8(Value v, int bits) {
  if (bits == 0)
    return v;
  return arith::ShLIOp::create(b, loc, v, splatI8(bits, numElements(v)));
}
Value VectorOps::orI(Value x, Value y) {
  return arith::OrIOp::create(b, loc, x, y);
}

Value VectorOps::concat(Value lo, Value hi) {
  int64_t n = numElements(lo);
  SmallVector<int64_t> mask;
  for (int64_t i = 0; i < 2 * n; ++i)
    mask.push_back(i);
  return vector::ShuffleOp::create(b, loc, lo, hi, mask);
}

Value VectorOps::slice(Value v, int64_t offset, int64_t n) {
  return vector::ExtractStridedSliceOp::create(
      b, loc, v, ArrayRef<int64_t>{offset}, ArrayRef<int64_t>{n},
      ArrayRef<int64_t>{1});
}

Value VectorOps::shuffle(Value v, ArrayRef<int64_t> mask) {
  return vector::ShuffleOp::create(b, loc, v, v, mask);
}

Value VectorOps::unpack(Value a, Value c, unsigned bits, bool high) {
  // Per 128-bit half h: dwords (or qword pairs) of a and c alternately, from
  // the low or the high half of each.
  SmallVector<int64_t> mask;
  const int64_t per = bits / 32; // dwords per element taken
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t e = 0; e < 2 / per; ++e)
      for (int64_t source = 0; source < 2; ++source)
        for (int64_t d = 0; d < per; ++d)
          mask.push_back(8 * source + 4 * h + (high ? 2 : 0) + e * per + d);
  return vector::ShuffleOp::create(b, loc, a, c, mask);
}
Value VectorOps::unpackLo32(Value a, Value c) { return unpack(a, c, 32, false); }
Value VectorOps::unpackHi32(Value a, Value c) { return unpack(a, c, 32, true); }
Value VectorOps::unpackLo64(Value a, Value c) { return unpack(a, c, 64, false); }
Value VectorOps::unpackHi64(Value a, Value c) { return unpack(a, c, 64, true); }

SmallVector<Value, 8> VectorOps::transposeDwords(ArrayRef<Value> rows) {
  // Dword pairs, then qword pairs inside each 128-bit half, then the halves.
  Value t[8], u[8];
  for (int64_t k = 0; k < 4; ++k) {
    t[2 * k] = unpackLo32(rows[2 * k], rows[2 * k + 1]);
    t[2 * k + 1] = unpackHi32(rows[2 * k], rows[2 * k + 1]);
  }
  // u[4h + m]: dwords m and m + 4 of rows 4h .. 4h + 3.
  for (int64_t h = 0; h < 2; ++h) {
    u[4 * h + 0] = unpackLo64(t[4 * h], t[4 * h + 2]);
    u[4 * h + 1] = unpackHi64(t[4 * h], t[4 * h + 2]);
    u[4 * h + 2] = unpackLo64(t[4 * h + 1], t[4 * h + 3]);
    u[4 * h + 3] = unpackHi64(t[4 * h + 1], t[4 * h + 3]);
  }
  SmallVector<Value, 8> out(8);
  for (int64_t m = 0; m < 4; ++m) {
    out[m] = vector::ShuffleOp::create(
        b, loc, u[m], u[4 + m], ArrayRef<int64_t>{0, 1, 2, 3, 8, 9, 10, 11});
    out[m + 4] = vector::ShuffleOp::create(
        b, loc, u[m], u[4 + m], ArrayRef<int64_t>{4, 5, 6, 7, 12, 13, 14, 15});
  }
  return out;
}

Value VectorOps::extend(Value v, unsigned bits, bool isSigned) {
  auto type = VectorType::get({numElements(v)}, b.getIntegerType(bits));
  if (isSigned)
    return arith::ExtSIOp::create(b, loc, type, v);
  return arith::ExtUIOp::create(b, loc, type, v);
}

Value VectorOps::intrinsic(StringRef name, Type result, ValueRange args) {
  return LLVM::CallIntrinsicOp::create(b, loc, result, b.getStringAttr(name),
                                       args)
      .getResult(0);
}

Value VectorOps::x86MaddUbs(Value u, Value s) {
  return intrinsic("llvm.x86.avx2.pmadd.ub.sw", vecI16(16), {u, s});
}

Value VectorOps::x86MaddWd(Value x, Value y) {
  return intrinsic("llvm.x86.avx2.pmadd.wd", vecI32(8), {x, y});
}

Value VectorOps::neonSdot(Value acc, Value x, Value y) {
  Value halves[2];
  for (int h = 0; h < 2; ++h)
    halves[h] =
        arm_neon::SdotOp::create(b, loc, vecI32(4), slice(acc, 4 * h, 4),
                                 slice(x, 16 * h, 16), slice(y, 16 * h, 16));
  return concat(halves[0], halves[1]);
}

Value VectorOps::dotU(Value acc, Value u, Value s) {
  switch (isa) {
  case ISA::X86AVX2:
    return add(acc, x86MaddWd(x86MaddUbs(u, s), splatI16(1)));
  case ISA::X86AVX512VNNI:
    return intrinsic("llvm.x86.avx512.vpdpbusd.256", vecI32(8), {acc, u, s});
  case ISA::AArch64Neon:
    return neonSdot(acc, u, s);
  }
  llvm_unreachable("unknown ISA");
}

Value VectorOps::dotU2(Value acc, Value u1, Value s1, Value u2, Value s2) {
  if (isa != ISA::X86AVX2)
    return dotU(dotU(acc, u1, s1), u2, s2);
  Value pairs = add(x86MaddUbs(u1, s1), x86MaddUbs(u2, s2));
  return add(acc, x86MaddWd(pairs, splatI16(1)));
}

Value VectorOps::dotS(Value acc, Value a, Value s) {
  if (isNeon())
    return neonSdot(acc, a, s);
  // x86 multiplies unsigned by signed bytes: |a| times s with a's sign.
  Value absA = math::AbsIOp::create(b, loc, a);
  Value signedS = intrinsic("llvm.x86.avx2.psign.b", vecI8(32), {s, a});
  return dotU(acc, absA, signedS);
}

VectorOps::Scales VectorOps::prepareScales(Value scales, bool isSigned) {
  const bool perSixteen = numElements(scales) == 16;
  if (isNeon())
    // NEON multiplies by a lane (mul v.4s, v.4s, v.s[i]): plain i32 lanes.
    return {extend(scales, 32, isSigned), perSixteen};
  // x86: a vector<16xi16> whose two 128-bit halves each hold the 8 scales a
  // chunk's half may need: the same 8 per-32 scales twice, or the even
  // per-16 scales (first halves) then the odd ones (second halves).
  Value wide = extend(scales, 16, isSigned);
  SmallVector<int64_t> mask;
  for (int i = 0; i < 16; ++i)
    mask.push_back(perSixteen ? (i < 8 ? 2 * i : 2 * (i - 8) + 1) : i % 8);
  return {shuffle(wide, mask), perSixteen};
}

Value VectorOps::dotUScaled(Value acc, Value u, Value s, const Scales &scales,
                            int64_t chunk) {
  if (isNeon()) {
    const int64_t lo = scales.perSixteen ? 2 * chunk : chunk;
    const int64_t hi = scales.perSixteen ? lo + 1 : chunk;
    Value dot = neonSdot(splatI32(0), u, s);
    SmallVector<int64_t> mask;
    for (int i = 0; i < 8; ++i)
      mask.push_back(i < 4 ? lo : hi);
    return add(acc, mul(dot, shuffle(scales.value, mask)));
  }
  // vpmaddubsw pairs, then vpmaddwd with the scale in every i16 lane: the
  // scale multiplies and the pairs are summed in one instruction.
  SmallVector<int64_t> mask;
  for (int i = 0; i < 16; ++i)
    mask.push_back(i < 8 ? chunk : 8 + chunk);
  return add(acc, x86MaddWd(x86MaddUbs(u, s), shuffle(scales.value, mask)));
}

Value VectorOps::dotSScaled(Value acc, Value w, Value s, const Scales &scales,
                            int64_t chunk) {
  if (isNeon())
    return dotUScaled(acc, w, s, scales, chunk); // sdot is signed already
  Value absW = math::AbsIOp::create(b, loc, w);
  Value signedS = intrinsic("llvm.x86.avx2.psign.b", vecI8(32), {s, w});
  return dotUScaled(acc, absW, signedS, scales, chunk);
}

Value VectorOps::lookup16(ArrayRef<int8_t> table, Value idx) {
  SmallVector<Attribute> entries;
  const int64_t lanes = isNeon() ? 16 : 32;
  for (int64_t i = 0; i < lanes; ++i)
    entries.push_back(b.getI8IntegerAttr(table[i % 16]));
  Value t = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(vecI8(lanes), entries));
  if (!isNeon())
    return intrinsic("llvm.x86.avx2.pshuf.b", vecI8(32), {t, idx});
  Value halves[2];
  for (int h = 0; h < 2; ++h)
    halves[h] = intrinsic("llvm.aarch64.neon.tbl1.v16i8", vecI8(16),
                          {t, slice(idx, 16 * h, 16)});
  return concat(halves[0], halves[1]);
}

Value VectorOps::pairDot16(Value x, Value y) {
  if (!isNeon())
    return x86MaddWd(x, y);
  Value prod = mul(extend(x, 32, true), extend(y, 32, true));
  SmallVector<int64_t> even, odd;
  for (int i = 0; i < 8; ++i) {
    even.push_back(2 * i);
    odd.push_back(2 * i + 1);
  }
  return add(shuffle(prod, even), shuffle(prod, odd));
}

Value VectorOps::fmaScaled(Value acc, Value isum, Value scale) {
  Value f = arith::SIToFPOp::create(b, loc, vecF32(8), isum);
  if (!llvm::isa<VectorType>(scale.getType()))
    scale = splat(scale, 8);
  return vector::FMAOp::create(b, loc, f, scale, acc);
}

Value VectorOps::reduceAdd(Value v) {
  return vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, v,
                                     arith::FastMathFlags::reassoc);
}

//===----------------------------------------------------------------------===//
// Pointers as memrefs
//===----------------------------------------------------------------------===//

Value memrefFromPointer(OpBuilder &b, Location loc, Value ptr, Value size,
                        Type elementType) {
  MLIRContext *ctx = b.getContext();
  Type i64 = b.getI64Type();
  auto array = LLVM::LLVMArrayType::get(i64, 1);
  auto descriptor = LLVM::LLVMStructType::getLiteral(
      ctx, {ptr.getType(), ptr.getType(), i64, array, array});
  Value d = LLVM::PoisonOp::create(b, loc, descriptor);
  Value zero = LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(0));
  Value one = LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(1));
  d = LLVM::InsertValueOp::create(b, loc, d, ptr, ArrayRef<int64_t>{0});
  d = LLVM::InsertValueOp::create(b, loc, d, ptr, ArrayRef<int64_t>{1});
  d = LLVM::InsertValueOp::create(b, loc, d, zero, ArrayRef<int64_t>{2});
  d = LLVM::InsertValueOp::create(b, loc, d, size, ArrayRef<int64_t>{3, 0});
  d = LLVM::InsertValueOp::create(b, loc, d, one, ArrayRef<int64_t>{4, 0});
  auto type = MemRefType::get({ShapedType::kDynamic}, elementType);
  return UnrealizedConversionCastOp::create(b, loc, TypeRange{type},
                                            ValueRange{d})
      .getResult(0);
}

void setTargetAttributes(func::FuncOp fn, const TargetInfo &target) {
  MLIRContext *ctx = fn.getContext();
  fn->setAttr("target_cpu", StringAttr::get(ctx, target.cpu));
  fn->setAttr("target_features",
              LLVM::TargetFeaturesAttr::get(ctx, StringRef(target.features)));
}

//===----------------------------------------------------------------------===//
// The matmul loop nest
//===----------------------------------------------------------------------===//

namespace {

/// Tokens per token block: the activations of a block (64 tokens x a row of
/// 8-bit blocks, ~280 KiB for 4096 columns) stay in L2 while every row tile
/// of the call streams its weights once per block.
constexpr int64_t kTokenBlock = 64;

/// Stack bytes at most of the group prompt path's per-token scratch.
constexpr int64_t kPromptScratch = 128 * 1024;
/// At most this many bytes of a group's decoded steps (FormatKernel::
/// groupPromptDecodedBytes): they stay in L2 while the block's tokens read
/// them.
constexpr int64_t kDecodedScratch = 256 * 1024;

/// Bytes ahead of a group decode step that it prefetches.
constexpr int64_t kGroupPrefetch = 4096;

struct LoopNest {
  VectorOps *v;
  const KernelSpec *spec;
  FormatKernel *kernel;
  Value w, x, xq, y;
  Value xStride, yStride;
  int64_t rowBytes = 0;    // bytes of one row in the weight encoding
  int64_t actRowBytes = 0; // bytes of one token's quantized activations
  int64_t steps = 0, rem = 0;

  /// The same nest emitting through another builder (inside a region).
  LoopNest with(VectorOps &nv) const {
    LoopNest copy = *this;
    copy.v = &nv;
    return copy;
  }

  /// One micro-tile: rows [r, r + rt) x tokens [t, t + tt).
  void microKernel(Value r, int64_t rt, Value t, int64_t tt) {
    VectorOps &v = *this->v;
    OpBuilder &b = v.b;
    Location loc = v.loc;
    const int64_t inter = spec->interleave;
    const int64_t stepBytes = kernel->weightBytesPerStep();
    const int64_t actStep = kernel->actUnitsPerStep();
    SmallVector<Value> rowStarts, actStarts;
    for (int64_t i = 0; i < rt; ++i) {
      Value row = v.addConst(r, i);
      Value start;
      if (inter == 1) {
        start = v.mulConst(row, rowBytes);
      } else {
        Value group = arith::DivUIOp::create(b, loc, row, v.index(inter));
        Value lane = arith::RemUIOp::create(b, loc, row, v.index(inter));
        start = v.add(v.mulConst(group, inter * rowBytes),
                      v.mulConst(lane, stepBytes));
      }
      rowStarts.push_back(start);
    }
    for (int64_t j = 0; j < tt; ++j) {
      Value tok = v.addConst(t, j);
      actStarts.push_back(kernel->activation() == Format::F32
                              ? v.mul(tok, xStride)
                              : v.mulConst(tok, actRowBytes));
    }

    const int64_t perAcc = kernel->rowsPerAccumulator();
    const int64_t numAcc = (rt + perAcc - 1) / perAcc;
    SmallVector<Value> init(numAcc * tt, v.zeroF32());
    auto loop = scf::ForOp::create(
        b, loc, v.index(0), v.index(steps), v.index(1), init,
        [&](OpBuilder &nested, Location nestedLoc, Value s, ValueRange iter) {
          VectorOps nv(nested, nestedLoc, v.isa);
          TileContext ctx{nv, *spec, w, xq, x, {}, {}};
          Value wOff = nv.mulConst(s, inter * stepBytes);
          Value aOff = nv.mulConst(s, actStep);
          for (Value start : rowStarts)
            ctx.rowOffsets.push_back(nv.add(start, wOff));
          for (Value start : actStarts)
            ctx.actOffsets.push_back(nv.add(start, aOff));
          SmallVector<Value> accs(iter.begin(), iter.end());
          kernel->emitStep(ctx, accs);
          scf::YieldOp::create(nested, nestedLoc, accs);
        });
    SmallVector<Value> accs(loop.getResults().begin(), loop.getResults().end());
    if (rem) {
      TileContext ctx{v, *spec, w, xq, x, {}, {}};
      for (Value start : rowStarts)
        ctx.rowOffsets.push_back(v.addConst(start, steps * stepBytes));
      for (Value start : actStarts)
        ctx.actOffsets.push_back(v.addConst(start, steps * actStep));
      kernel->emitTail(ctx, rem, accs);
    }
    for (int64_t i = 0; i < rt; ++i)
      for (int64_t j = 0; j < tt; ++j) {
        Value acc = accs[(i / perAcc) * tt + j];
        if (perAcc == 2)
          acc = v.slice(acc, 4 * (i % 2), 4);
        Value sum = v.reduceAdd(acc);
        Value at = v.add(v.mul(v.addConst(t, j), yStride), v.addConst(r, i));
        memref::StoreOp::create(b, loc, sum, y, ValueRange{at});
      }
  }

  /// One token, rows [r, r + G) of one whole interleaved group (r a
  /// multiple of G): the kernel's group decode path.
  void groupKernel(Value r, int64_t G) {
    VectorOps &v = *this->v;
    OpBuilder &b = v.b;
    Location loc = v.loc;
    const int64_t stepBytes = G * kernel->weightBytesPerStep();
    const int64_t actStep = kernel->actUnitsPerStep();
    Value groupStart = v.mulConst(r, rowBytes);
    SmallVector<Value> init(kernel->groupDecodeAccumulators(), v.zeroF32());
    auto loop = scf::ForOp::create(
        b, loc, v.index(0), v.index(steps), v.index(1), init,
        [&](OpBuilder &nested, Location nestedLoc, Value s, ValueRange iter) {
          VectorOps nv(nested, nestedLoc, v.isa);
          Value wAt = nv.add(groupStart, nv.mulConst(s, stepBytes));
          Value xAt = nv.mulConst(s, actStep);
          // The group's stream 4 KiB ahead, a line at a time: measured a
          // few percent on tg with two threads sharing DRAM (x86 only
          // takes this path; prefetches past the end do not fault).
          for (int64_t o = 0; o < stepBytes; o += 64)
            memref::PrefetchOp::create(
                nested, nestedLoc, w,
                ValueRange{nv.addConst(wAt, kGroupPrefetch + o)},
                /*isWrite=*/false, /*localityHint=*/3, /*isDataCache=*/true);
          SmallVector<Value> accs(iter.begin(), iter.end());
          kernel->emitGroupDecodeStep(nv, w, xq, wAt, xAt, accs);
          scf::YieldOp::create(nested, nestedLoc, accs);
        });
    for (int64_t i = 0; i < G; ++i) {
      auto [a, lane] = kernel->groupDecodeLane(i);
      Value sum = vector::ExtractOp::create(b, loc, loop.getResult(a),
                                            ArrayRef<int64_t>{lane});
      memref::StoreOp::create(b, loc, sum, y, ValueRange{v.addConst(r, i)});
    }
  }

  /// Tokens [t, t + T) of token block tb (scratch filled) x rows [r, r + G)
  /// of one whole interleaved group: the kernel's group prompt path.
  void groupPromptKernel(Value r, int64_t G, Value t, int64_t T, Value tb,
                         Value ints, Value floats, Value decoded) {
    VectorOps &v = *this->v;
    OpBuilder &b = v.b;
    Location loc = v.loc;
    // From the group's decoded steps (filled by the caller) or the packed
    // weights.
    const int64_t stepBytes = decoded ? kernel->groupPromptDecodedBytes()
                                      : G * kernel->weightBytesPerStep();
    Value weights = decoded ? decoded : w;
    const int64_t actStep = kernel->actUnitsPerStep();
    Value groupStart = decoded ? v.index(0) : v.mulConst(r, rowBytes);
    SmallVector<Value> xStarts, sStarts;
    for (int64_t j = 0; j < T; ++j) {
      Value tok = v.addConst(t, j);
      xStarts.push_back(v.mulConst(tok, actRowBytes));
      sStarts.push_back(
          v.mulConst(arith::SubIOp::create(b, loc, tok, tb), steps));
    }
    SmallVector<Value> init(T, v.zeroF32());
    auto loop = scf::ForOp::create(
        b, loc, v.index(0), v.index(steps), v.index(1), init,
        [&](OpBuilder &nested, Location nestedLoc, Value s, ValueRange iter) {
          VectorOps nv(nested, nestedLoc, v.isa);
          Value wAt = nv.add(groupStart, nv.mulConst(s, stepBytes));
          Value xOff = nv.mulConst(s, actStep);
          SmallVector<Value> xAts, sAts;
          for (int64_t j = 0; j < T; ++j) {
            xAts.push_back(nv.add(xStarts[j], xOff));
            sAts.push_back(nv.add(sStarts[j], s));
          }
          SmallVector<Value> accs(iter.begin(), iter.end());
          kernel->emitGroupPromptStep(nv, weights, wAt, xq, xAts, ints, floats,
                                      sAts, accs);
          scf::YieldOp::create(nested, nestedLoc, accs);
        });
    for (int64_t j = 0; j < T; ++j) {
      Value at = v.add(v.mul(v.addConst(t, j), yStride), r);
      vector::StoreOp::create(b, loc,
                              kernel->groupPromptResult(v, loop.getResult(j)),
                              y, ValueRange{at});
    }
  }

  /// scf.for over [lo, hi) by `step` whose body is body(nest, iv).
  template <typename Body>
  void forRange(Value lo, Value hi, int64_t step, Body body) {
    VectorOps &v = *this->v;
    scf::ForOp::create(
        v.b, v.loc, lo, hi, v.index(step), ValueRange{},
        [&](OpBuilder &nested, Location nl, Value iv, ValueRange) {
          VectorOps nv(nested, nl, v.isa);
          LoopNest inner = with(nv);
          body(inner, iv);
          scf::YieldOp::create(nested, nl);
        });
  }

  /// Splits [lo, hi) into whole tiles and single steps.
  template <typename Body>
  void tiled(Value lo, Value hi, int64_t tile, Body body) {
    VectorOps &v = *this->v;
    if (tile == 1) {
      forRange(lo, hi, 1, [&](LoopNest &n, Value iv) { body(n, iv, 1); });
      return;
    }
    Value n = arith::SubIOp::create(v.b, v.loc, hi, lo);
    Value whole =
        v.mulConst(arith::DivUIOp::create(v.b, v.loc, n, v.index(tile)), tile);
    Value mainEnd = v.add(lo, whole);
    forRange(lo, mainEnd, tile,
             [&](LoopNest &n, Value iv) { body(n, iv, tile); });
    forRange(mainEnd, hi, 1, [&](LoopNest &n, Value iv) { body(n, iv, 1); });
  }
};

} // namespace

LogicalResult buildMatmulKernel(func::FuncOp fn, const KernelSpec &spec,
                                FormatKernel &kernel) {
  Block *entry = fn.addEntryBlock();
  OpBuilder b = OpBuilder::atBlockBegin(entry);
  Location loc = fn.getLoc();
  VectorOps v(b, loc, spec.target->isa);
  auto args = entry->getArguments();
  // (w, x, xq, y, tokens, xStride, yStride, rowBegin, rowEnd)
  auto toIndex = [&](Value i64) -> Value {
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), i64);
  };
  Value tokens = toIndex(args[4]), xStride = toIndex(args[5]),
        yStride = toIndex(args[6]), rowBegin = toIndex(args[7]),
        rowEnd = toIndex(args[8]);

  const fmt::FormatInfo &fi = fmt::info(spec.format);
  LoopNest nest;
  nest.v = &v;
  nest.spec = &spec;
  nest.kernel = &kernel;
  nest.rowBytes = static_cast<int64_t>(fmt::rowBytes(fi, spec.cols));
  nest.steps = spec.cols / kernel.weightsPerStep();
  nest.rem = spec.cols % kernel.weightsPerStep();
  if (kernel.activation() != Format::F32) {
    nest.actRowBytes = static_cast<int64_t>(
        fmt::rowBytes(fmt::info(kernel.activation()), spec.cols));
    if (nest.rem || nest.actRowBytes == 0)
      return fn.emitError("cols ") << spec.cols << " is not a multiple of "
                                   << kernel.weightsPerStep() << " weights";
  }

  // Sizes of the buffers for the memref descriptors (nothing checks them).
  auto constI64 = [&](int64_t c) -> Value {
    return arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(c));
  };
  Value wSize = constI64(nest.rowBytes * spec.rows);
  Value xSize = arith::MulIOp::create(b, loc, args[4], args[5]);
  Value xqSize =
      arith::MulIOp::create(b, loc, args[4], constI64(nest.actRowBytes));
  Value ySize = arith::MulIOp::create(b, loc, args[4], args[6]);
  nest.w = memrefFromPointer(b, loc, args[0], wSize, b.getI8Type());
  nest.x = memrefFromPointer(b, loc, args[1], xSize, b.getF32Type());
  nest.xq = memrefFromPointer(b, loc, args[2], xqSize, b.getI8Type());
  nest.y = memrefFromPointer(b, loc, args[3], ySize, b.getF32Type());
  nest.xStride = xStride;
  nest.yStride = yStride;

  // Decode (one token): row tiles of as many accumulators as the row tile
  // has rows (formats sharing an accumulator between two rows take twice
  // the rows), but never wider than one interleaved group: a tile must read
  // one contiguous stream (two or more streams per thread halve the read
  // bandwidth on the machines measured, bench/results/kernels.md).
  // Otherwise token blocks x row tiles x token tiles. Both end in the k
  // loop of FormatKernel::emitStep.
  const int64_t rt = spec.choice->rowTile, tt = spec.choice->tokenTile;
  const int64_t decodeRows = std::min<int64_t>(
      rt * kernel.rowsPerAccumulator(), std::max<int64_t>(spec.interleave, rt));
  // With a group decode path: whole groups through it when rowBegin starts
  // a group (the runtime's row ranges always do), the rest as before.
  const int64_t G = kernel.groupDecodeRows(spec);
  // The group prompt path's scratch: a static alloca of at most
  // kPromptScratch bytes (token blocks shrink for long rows).
  int64_t GP = kernel.groupPromptRows(spec);
  // Kernels that decode a group once per token block: the decoded steps of
  // one group, a static alloca too (no group path for rows so long that it
  // would exceed kDecodedScratch).
  const int64_t decodedBytes = kernel.groupPromptDecodedBytes() * nest.steps;
  if (decodedBytes > kDecodedScratch)
    GP = 0;
  int64_t promptBlock = 0;
  Value ints, floats, decoded;
  if (GP > 1 && decodedBytes > 0)
    decoded = memref::AllocaOp::create(
        b, loc, MemRefType::get({decodedBytes}, b.getI8Type()),
        b.getI64IntegerAttr(64));
  if (GP > 1) {
    promptBlock = std::clamp<int64_t>(
        kPromptScratch / (8 * nest.steps) / tt * tt, tt, kTokenBlock);
    ints = memref::AllocaOp::create(
        b, loc, MemRefType::get({promptBlock * nest.steps}, b.getI32Type()));
    floats = memref::AllocaOp::create(
        b, loc, MemRefType::get({promptBlock * nest.steps}, b.getF32Type()));
  }
  Value single = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tokens,
                                       v.index(1));
  scf::IfOp::create(
      b, loc, single,
      [&](OpBuilder &db, Location dl) {
        VectorOps dv(db, dl, v.isa);
        LoopNest n = nest.with(dv);
        auto generic = [&](LoopNest &gn, Value lo) {
          gn.tiled(lo, rowEnd, decodeRows,
                   [&](LoopNest &rn, Value r, int64_t rows) {
                     rn.microKernel(r, rows, rn.v->index(0), 1);
                   });
        };
        if (G <= 1) {
          generic(n, rowBegin);
        } else {
          Value aligned = arith::CmpIOp::create(
              db, dl, arith::CmpIPredicate::eq,
              arith::RemUIOp::create(db, dl, rowBegin, dv.index(G)),
              dv.index(0));
          scf::IfOp::create(
              db, dl, aligned,
              [&](OpBuilder &gb, Location gl) {
                VectorOps gv(gb, gl, v.isa);
                LoopNest gn = nest.with(gv);
                Value count = arith::SubIOp::create(gb, gl, rowEnd, rowBegin);
                Value groupsEnd = gv.add(
                    rowBegin,
                    gv.mulConst(arith::DivUIOp::create(gb, gl, count,
                                                       gv.index(G)),
                                G));
                gn.forRange(rowBegin, groupsEnd, G, [&](LoopNest &rn, Value r) {
                  rn.groupKernel(r, G);
                });
                // Rows after the last whole group, one at a time.
                gn.forRange(groupsEnd, rowEnd, 1, [&](LoopNest &rn, Value r) {
                  rn.microKernel(r, 1, rn.v->index(0), 1);
                });
                scf::YieldOp::create(gb, gl);
              },
              [&](OpBuilder &ub, Location ul) {
                VectorOps uv(ub, ul, v.isa);
                LoopNest un = nest.with(uv);
                generic(un, rowBegin);
                scf::YieldOp::create(ub, ul);
              });
        }
        scf::YieldOp::create(db, dl);
      },
      [&](OpBuilder &pb, Location pl) {
        VectorOps pv(pb, pl, v.isa);
        LoopNest prompt = nest.with(pv);
        auto generic = [&](LoopNest &gn, Value lo) {
          gn.forRange(
              gn.v->index(0), tokens, kTokenBlock, [&](LoopNest &n, Value tb) {
                Value tbEnd = arith::MinUIOp::create(
                    n.v->b, n.v->loc, n.v->addConst(tb, kTokenBlock), tokens);
                n.tiled(lo, rowEnd, rt,
                        [&](LoopNest &rn, Value r, int64_t rows) {
                          rn.tiled(tb, tbEnd, tt,
                                   [&](LoopNest &tn, Value t, int64_t toks) {
                                     tn.microKernel(r, rows, t, toks);
                                   });
                        });
              });
        };
        // With a group prompt path: token blocks (their scratch filled
        // first) x whole groups x token tiles, when rowBegin starts a group;
        // rows after the last whole group and unaligned ranges as before.
        if (GP <= 1) {
          generic(prompt, rowBegin);
          scf::YieldOp::create(pb, pl);
          return;
        }
        Value aligned = arith::CmpIOp::create(
            pb, pl, arith::CmpIPredicate::eq,
            arith::RemUIOp::create(pb, pl, rowBegin, pv.index(GP)),
            pv.index(0));
        scf::IfOp::create(
            pb, pl, aligned,
            [&](OpBuilder &gb, Location gl) {
              VectorOps gv(gb, gl, v.isa);
              LoopNest gn = nest.with(gv);
              Value count = arith::SubIOp::create(gb, gl, rowEnd, rowBegin);
              Value groupsEnd = gv.add(
                  rowBegin,
                  gv.mulConst(
                      arith::DivUIOp::create(gb, gl, count, gv.index(GP)), GP));
              gn.forRange(
                  gv.index(0), tokens, promptBlock,
                  [&](LoopNest &n, Value tb) {
                    VectorOps &nv = *n.v;
                    Value tbEnd = arith::MinUIOp::create(
                        nv.b, nv.loc, nv.addConst(tb, promptBlock), tokens);
                    // Per token and step of the block, once for all rows.
                    n.forRange(tb, tbEnd, 1, [&](LoopNest &tn, Value t) {
                      Value xStart = tn.v->mulConst(t, nest.actRowBytes);
                      Value sStart = tn.v->mulConst(
                          arith::SubIOp::create(tn.v->b, tn.v->loc, t, tb),
                          nest.steps);
                      tn.forRange(
                          tn.v->index(0), tn.v->index(nest.steps), 1,
                          [&](LoopNest &sn, Value s) {
                            VectorOps &sv = *sn.v;
                            kernel.emitPromptPrepare(
                                sv, nest.xq,
                                sv.add(xStart,
                                       sv.mulConst(s, kernel.actUnitsPerStep())),
                                ints, floats, sv.add(sStart, s));
                          });
                    });
                    n.forRange(
                        rowBegin, groupsEnd, GP, [&](LoopNest &rn, Value r) {
                          if (decoded)
                            rn.forRange(
                                rn.v->index(0), rn.v->index(nest.steps), 1,
                                [&](LoopNest &sn, Value s) {
                                  // Row i of the group: interleave group
                                  // i / inter, lane i % inter, step s.
                                  VectorOps &sv = *sn.v;
                                  const int64_t inter = spec.interleave,
                                                block =
                                                    kernel.weightBytesPerStep();
                                  Value step = sv.add(
                                      sv.mulConst(r, nest.rowBytes),
                                      sv.mulConst(s, inter * block));
                                  SmallVector<Value> rowAts;
                                  for (int64_t i = 0; i < GP; ++i)
                                    rowAts.push_back(sv.addConst(
                                        step, i / inter * inter * nest.rowBytes +
                                                  i % inter * block));
                                  kernel.emitGroupPromptDecode(
                                      sv, nest.w, rowAts, decoded,
                                      sv.mulConst(
                                          s, kernel.groupPromptDecodedBytes()));
                                });
                          rn.tiled(tb, tbEnd, tt,
                                   [&](LoopNest &tn, Value t, int64_t toks) {
                                     tn.groupPromptKernel(r, GP, t, toks, tb,
                                                          ints, floats,
                                                          decoded);
                                   });
                        });
                  });
              // Rows after the last whole group.
              generic(gn, groupsEnd);
              scf::YieldOp::create(gb, gl);
            },
            [&](OpBuilder &ub, Location ul) {
              VectorOps uv(ub, ul, v.isa);
              LoopNest un = nest.with(uv);
              generic(un, rowBegin);
              scf::YieldOp::create(ub, ul);
            });
        scf::YieldOp::create(pb, pl);
      });
  func::ReturnOp::create(b, loc);
  return success();
}

//===----------------------------------------------------------------------===//
// Format dispatch
//===----------------------------------------------------------------------===//

std::unique_ptr<FormatKernel> createFormatKernel(Format format, ISA isa) {
  if (auto k = createFloatKernel(format, isa))
    return k;
  if (auto k = createLinearKernel(format, isa))
    return k;
  if (auto k = createKQuantKernel(format, isa))
    return k;
  return createLatticeKernel(format, isa);
}

} // namespace mlir::lowbit::kernels
