//===- LatticeKernels.cpp - IQ1_S ... IQ3_S x Q8_K ------------------------===//
//
// ggml's lattice i-quants against Q8_K activations. One step of the k loop
// is one 256-weight super-block, processed as 8 chunks of 32 weights like
// the K-quants (KQuantKernels.cpp). Per chunk and row the weights are
// rebuilt as signed bytes: each group of 8 (IQ2, IQ1) or 4 (IQ3) weights is
// one grid point, loaded from the format's grid (a constant table in the
// kernel module, the same values as lib/Formats) by its index, then the
// stored signs are applied. Each byte is an integer multiple of the
// format's unit, so a super-block contributes
//
//   acc += float(sum_c sum_half scale_half * dot(q_c, x_c)) * (d * unit * dx)
//
// with the integer sub-block scales (2 ls + 1) of the format:
//
//   format   q                    scale per    unit   (x = d * unit * scale * q)
//   IQ2_XXS  grid (8, 25, 43) +-  32 weights   1/8    ls: top nibble of the
//                                                     signs word
//   IQ2_XS   grid +-              16           1/8
//   IQ2_S    grid +-              16           1/8
//   IQ3_XXS  grid (4 .. 62) +-    32           1/4
//   IQ3_S    grid (1 .. 15) +-    32           1
//   IQ1_S    8 grid (-1, 0, 1)    32           1/8    +-1: the +-1/8 delta
//            +- 1
//   IQ1_M    as IQ1_S             16           1/8    delta per 8 weights
//
// The signs: 8 bits per group of 8 weights, either stored (IQ2_S, IQ3_S) or
// a 7-bit index into ggml's ksigns table (a second constant table).
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"
#include "LowBit/Conversion/Passes.h"
#include "lowbit/Formats/BlockLayouts.h"
#include "lowbit/Formats/IQTables.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::lowbit::kernels {
namespace {

namespace blocks = ::lowbit::formats::blocks;
namespace iq = ::lowbit::formats;
constexpr int64_t kActQs = offsetof(blocks::Q8_K, qs);

/// A constant table of the kernel module (a grid, the sign table), created
/// once per module and kept by lowbit-isolate-kernels (kernel data).
/// `anchor` is a value defined in the kernel function (its weights): the
/// ops being built are not attached to the module yet.
Value constantTable(VectorOps &v, Value anchor, StringRef name, Type element,
                    ArrayRef<Attribute> values) {
  OpBuilder &b = v.b;
  auto module =
      anchor.getParentRegion()->getParentOp()->getParentOfType<ModuleOp>();
  assert(module && "the kernel function is not in a module");
  auto type = MemRefType::get({static_cast<int64_t>(values.size())}, element);
  if (!module.lookupSymbol(name)) {
    OpBuilder mb(module.getContext());
    mb.setInsertionPointToStart(module.getBody());
    auto tensorType =
        RankedTensorType::get({static_cast<int64_t>(values.size())}, element);
    auto global = memref::GlobalOp::create(
        mb, v.loc, name, mb.getStringAttr("private"), type,
        DenseElementsAttr::get(tensorType, values), /*constant=*/true,
        /*alignment=*/mb.getI64IntegerAttr(64));
    global->setAttr(kKernelDataAttrName, mb.getUnitAttr());
  }
  return memref::GetGlobalOp::create(b, v.loc, type, name);
}

class LatticeKernel : public SuperBlockKernel {
public:
  LatticeKernel(Format format, ISA) : SuperBlockKernel(format) {}

  void emitStep(TileContext &ctx, MutableArrayRef<Value> accs) override {
    VectorOps &v = ctx.v;
    const int64_t rows = ctx.numRows(), tokens = ctx.numTokens();
    grid = gridTable(v, ctx.w);
    if (usesSignTable())
      signTable = signsTable(v, ctx.w);
    SmallVector<Value> dx;
    for (Value at : ctx.actOffsets)
      dx.push_back(v.splat(v.loadF32(ctx.xq, at), 8));
    SmallVector<Value> d;
    SmallVector<VectorOps::Scales> scales;
    for (Value at : ctx.rowOffsets) {
      d.push_back(superScale(v, ctx.w, at));
      scales.push_back(v.prepareScales(subScales(v, ctx.w, at),
                                       /*isSigned=*/false));
    }
    SmallVector<Value> isum(rows * tokens, v.splatI32(0));
    for (int c = 0; c < 8; ++c) {
      SmallVector<Value> xc;
      for (Value at : ctx.actOffsets)
        xc.push_back(v.loadBytes(ctx.xq, v.addConst(at, kActQs + 32 * c), 32));
      for (int64_t i = 0; i < rows; ++i) {
        Value q = chunk(v, ctx.w, ctx.rowOffsets[i], c);
        for (int64_t j = 0; j < tokens; ++j)
          isum[i * tokens + j] =
              v.dotSScaled(isum[i * tokens + j], q, xc[j], scales[i], c);
      }
    }
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < tokens; ++j) {
        Value scale = arith::MulFOp::create(v.b, v.loc, d[i], dx[j]);
        accs[i * tokens + j] =
            v.fmaScaled(accs[i * tokens + j], isum[i * tokens + j], scale);
      }
  }

private:
  bool isIQ1() const {
    return format == Format::IQ1_S || format == Format::IQ1_M;
  }
  bool usesSignTable() const {
    return format == Format::IQ2_XXS || format == Format::IQ2_XS ||
           format == Format::IQ3_XXS;
  }
  /// Weights per grid point.
  int pointDim() const {
    return format == Format::IQ3_XXS || format == Format::IQ3_S ? 4 : 8;
  }
  float unit() const {
    switch (format) {
    case Format::IQ3_XXS:
      return 0.25f;
    case Format::IQ3_S:
      return 1.0f;
    default:
      return 0.125f;
    }
  }

  Value gridTable(VectorOps &v, Value anchor) {
    const iq::LatticeGrid g = iq::latticeGrid(format);
    SmallVector<Attribute> values;
    Type element = pointDim() == 8 ? v.b.getI64Type() : v.b.getI32Type();
    for (int64_t p = 0; p < g.points; ++p)
      values.push_back(IntegerAttr::get(
          element, pointDim() == 8 ? static_cast<int64_t>(g.grid64[p])
                                   : static_cast<int64_t>(g.grid32[p])));
    return constantTable(v, anchor, std::string("lb_grid_") + g.name, element,
                         values);
  }
  Value signsTable(VectorOps &v, Value anchor) {
    SmallVector<Attribute> values;
    for (int i = 0; i < 128; ++i)
      values.push_back(v.b.getI8IntegerAttr(
          static_cast<int8_t>(iq::latticeSignTable()[i])));
    return constantTable(v, anchor, "lb_iq2_signs", v.b.getI8Type(), values);
  }

  // Scalar helpers: bytes are read one at a time (any offset is aligned for
  // them); LLVM merges neighbouring byte loads.
  Value byteAt(VectorOps &v, Value w, Value at, int64_t offset) {
    Value byte = v.loadScalar(w, v.addConst(at, offset), v.b.getI8Type());
    return arith::ExtUIOp::create(v.b, v.loc, v.b.getI32Type(), byte);
  }
  Value u16At(VectorOps &v, Value w, Value at, int64_t offset) {
    return v.orI(byteAt(v, w, at, offset),
                 shl(v, byteAt(v, w, at, offset + 1), 8));
  }
  Value u32At(VectorOps &v, Value w, Value at, int64_t offset) {
    return v.orI(u16At(v, w, at, offset), shl(v, u16At(v, w, at, offset + 2), 16));
  }
  static Value shl(VectorOps &v, Value x, int bits) {
    return bits ? arith::ShLIOp::create(v.b, v.loc, x, v.i32(bits)).getResult()
                : x;
  }
  static Value shr(VectorOps &v, Value x, int bits) {
    return bits ? arith::ShRUIOp::create(v.b, v.loc, x, v.i32(bits)).getResult()
                : x;
  }
  static Value andC(VectorOps &v, Value x, int32_t mask) {
    return arith::AndIOp::create(v.b, v.loc, x, v.i32(mask));
  }
  /// Grid entry `index` (i32) of the module's table.
  Value point(VectorOps &v, Value index) {
    Value i = arith::IndexCastOp::create(v.b, v.loc, v.b.getIndexType(), index);
    return memref::LoadOp::create(v.b, v.loc, grid, ValueRange{i});
  }
  /// The 8 sign bits of a 7-bit ggml sign index.
  Value signsOf(VectorOps &v, Value index7) {
    Value i = arith::IndexCastOp::create(v.b, v.loc, v.b.getIndexType(),
                                         andC(v, index7, 127));
    return memref::LoadOp::create(v.b, v.loc, signTable, ValueRange{i});
  }
  static Value truncI8(VectorOps &v, Value x) {
    return arith::TruncIOp::create(v.b, v.loc, v.b.getI8Type(), x);
  }

  /// d * unit as vector<8xf32>.
  Value superScale(VectorOps &v, Value w, Value at) {
    Value d;
    if (format == Format::IQ1_M) {
      // The f16 d is spread over the top nibbles of the four scale words.
      const int64_t sc = offsetof(blocks::IQ1_M, scales);
      Value bits = v.i32(0);
      for (int i = 0; i < 4; ++i)
        bits = v.orI(bits, shl(v, shr(v, u16At(v, w, at, sc + 2 * i), 12), 4 * i));
      Value half = arith::BitcastOp::create(
          v.b, v.loc, v.b.getF16Type(),
          arith::TruncIOp::create(v.b, v.loc, v.b.getI16Type(), bits));
      d = v.splat(arith::ExtFOp::create(v.b, v.loc, v.b.getF32Type(), half), 8);
    } else {
      static_assert(offsetof(blocks::IQ2_XXS, d) == 0 &&
                    offsetof(blocks::IQ2_XS, d) == 0 &&
                    offsetof(blocks::IQ2_S, d) == 0 &&
                    offsetof(blocks::IQ3_XXS, d) == 0 &&
                    offsetof(blocks::IQ3_S, d) == 0 &&
                    offsetof(blocks::IQ1_S, d) == 0);
      d = v.loadHalfSplat(w, at);
    }
    return arith::MulFOp::create(v.b, v.loc, d, v.splat(v.f32(unit()), 8));
  }

  /// The integer sub-block scales 2 ls + 1: vector<8xi8> (per 32 weights) or
  /// vector<16xi8> (per 16).
  Value subScales(VectorOps &v, Value w, Value at) {
    SmallVector<Value> s;
    auto odd = [&](Value ls) { return v.orI(shl(v, ls, 1), v.i32(1)); };
    switch (format) {
    case Format::IQ2_XXS:
      for (int c = 0; c < 8; ++c)
        s.push_back(odd(shr(
            v, byteAt(v, w, at, offsetof(blocks::IQ2_XXS, qs) + 8 * c + 7), 4)));
      break;
    case Format::IQ2_XS:
    case Format::IQ2_S: {
      const int64_t sc = format == Format::IQ2_XS
                             ? offsetof(blocks::IQ2_XS, scales)
                             : offsetof(blocks::IQ2_S, scales);
      for (int c = 0; c < 8; ++c) {
        Value byte = byteAt(v, w, at, sc + c);
        s.push_back(odd(andC(v, byte, 15)));
        s.push_back(odd(shr(v, byte, 4)));
      }
      break;
    }
    case Format::IQ3_XXS:
      for (int c = 0; c < 8; ++c)
        s.push_back(odd(shr(
            v,
            byteAt(v, w, at, offsetof(blocks::IQ3_XXS, signScales) + 4 * c + 3),
            4)));
      break;
    case Format::IQ3_S:
      for (int c = 0; c < 8; ++c)
        s.push_back(odd(andC(
            v,
            shr(v, byteAt(v, w, at, offsetof(blocks::IQ3_S, scales) + c / 2),
                4 * (c % 2)),
            15)));
      break;
    case Format::IQ1_S:
      for (int c = 0; c < 8; ++c)
        s.push_back(odd(andC(
            v,
            shr(v, byteAt(v, w, at, offsetof(blocks::IQ1_S, qh) + 2 * c + 1),
                4),
            7)));
      break;
    case Format::IQ1_M:
      for (int h = 0; h < 16; ++h)
        s.push_back(odd(andC(
            v,
            shr(v,
                u16At(v, w, at, offsetof(blocks::IQ1_M, scales) + 2 * (h / 4)),
                3 * (h % 4)),
            7)));
      break;
    default:
      llvm_unreachable("not a lattice i-quant");
    }
    SmallVector<Value> bytes;
    for (Value x : s)
      bytes.push_back(truncI8(v, x));
    return vector::FromElementsOp::create(
        v.b, v.loc, v.vecI8(static_cast<int64_t>(bytes.size())), bytes);
  }

  /// Four bytes (one per group of 8 weights) spread to their 8 lanes each.
  Value perGroup(VectorOps &v, ArrayRef<Value> fourBytes) {
    Value four = vector::FromElementsOp::create(v.b, v.loc, v.vecI8(4),
                                                fourBytes);
    SmallVector<int64_t> mask;
    for (int i = 0; i < 32; ++i)
      mask.push_back(i / 8);
    return v.shuffle(four, mask);
  }

  /// Negates the lanes whose bit (lane % 8) is set in their group's byte.
  Value applySigns(VectorOps &v, Value magnitudes, ArrayRef<Value> signBytes) {
    Value spread = perGroup(v, signBytes);
    SmallVector<Attribute> bits;
    for (int i = 0; i < 32; ++i)
      bits.push_back(v.b.getI8IntegerAttr(static_cast<int8_t>(1 << (i % 8))));
    Value bit = arith::ConstantOp::create(
        v.b, v.loc, DenseElementsAttr::get(v.vecI8(32), bits));
    Value set = arith::CmpIOp::create(
        v.b, v.loc, arith::CmpIPredicate::ne,
        arith::AndIOp::create(v.b, v.loc, spread, bit), v.splatI8(0));
    Value negated =
        arith::SubIOp::create(v.b, v.loc, v.splatI8(0), magnitudes);
    return arith::SelectOp::create(v.b, v.loc, set, negated, magnitudes);
  }

  /// Grid points -> vector<32xi8> (4 x i64 or 8 x i32 entries).
  Value fromPoints(VectorOps &v, ArrayRef<Value> points) {
    Type element = points.front().getType();
    Value packed = vector::FromElementsOp::create(
        v.b, v.loc,
        VectorType::get({static_cast<int64_t>(points.size())}, element),
        points);
    return vector::BitCastOp::create(v.b, v.loc, v.vecI8(32), packed);
  }

  /// The signed bytes of chunk c (weights 32c .. 32c + 31).
  Value chunk(VectorOps &v, Value w, Value at, int c) {
    SmallVector<Value> points, signs;
    switch (format) {
    case Format::IQ2_XXS: {
      const int64_t q = offsetof(blocks::IQ2_XXS, qs) + 8 * c;
      Value aux = u32At(v, w, at, q + 4);
      for (int l = 0; l < 4; ++l) {
        points.push_back(point(v, byteAt(v, w, at, q + l)));
        signs.push_back(signsOf(v, shr(v, aux, 7 * l)));
      }
      break;
    }
    case Format::IQ2_XS:
      for (int l = 0; l < 4; ++l) {
        Value q = u16At(v, w, at, offsetof(blocks::IQ2_XS, qs) + 2 * (4 * c + l));
        points.push_back(point(v, andC(v, q, 511)));
        signs.push_back(signsOf(v, shr(v, q, 9)));
      }
      break;
    case Format::IQ2_S: {
      Value qh = byteAt(v, w, at, offsetof(blocks::IQ2_S, qh) + c);
      for (int l = 0; l < 4; ++l) {
        Value low = byteAt(v, w, at, offsetof(blocks::IQ2_S, qs) + 4 * c + l);
        Value high = shl(v, andC(v, shr(v, qh, 2 * l), 3), 8);
        points.push_back(point(v, v.orI(low, high)));
        signs.push_back(truncI8(
            v, byteAt(v, w, at, offsetof(blocks::IQ2_S, signs) + 4 * c + l)));
      }
      break;
    }
    case Format::IQ3_XXS: {
      Value aux = u32At(v, w, at, offsetof(blocks::IQ3_XXS, signScales) + 4 * c);
      for (int k = 0; k < 8; ++k)
        points.push_back(point(
            v, byteAt(v, w, at, offsetof(blocks::IQ3_XXS, qs) + 8 * c + k)));
      for (int l = 0; l < 4; ++l)
        signs.push_back(signsOf(v, shr(v, aux, 7 * l)));
      break;
    }
    case Format::IQ3_S: {
      Value qh = byteAt(v, w, at, offsetof(blocks::IQ3_S, qh) + c);
      for (int k = 0; k < 8; ++k) {
        Value low = byteAt(v, w, at, offsetof(blocks::IQ3_S, qs) + 8 * c + k);
        points.push_back(
            point(v, v.orI(low, shl(v, andC(v, shr(v, qh, k), 1), 8))));
      }
      for (int l = 0; l < 4; ++l)
        signs.push_back(truncI8(
            v, byteAt(v, w, at, offsetof(blocks::IQ3_S, signs) + 4 * c + l)));
      break;
    }
    case Format::IQ1_S:
    case Format::IQ1_M: {
      // 8 * grid + delta, delta = -1 where the sign bit is set, else +1.
      SmallVector<Value> deltas;
      if (format == Format::IQ1_S) {
        Value h = u16At(v, w, at, offsetof(blocks::IQ1_S, qh) + 2 * c);
        Value delta = truncI8(v, andC(v, shr(v, h, 14), 2));
        for (int l = 0; l < 4; ++l) {
          Value low = byteAt(v, w, at, offsetof(blocks::IQ1_S, qs) + 4 * c + l);
          points.push_back(
              point(v, v.orI(low, shl(v, andC(v, shr(v, h, 3 * l), 7), 8))));
          deltas.push_back(delta);
        }
      } else {
        for (int l = 0; l < 4; ++l) {
          Value bits = shr(
              v, byteAt(v, w, at, offsetof(blocks::IQ1_M, qh) + 2 * c + l / 2),
              4 * (l % 2));
          Value low = byteAt(v, w, at, offsetof(blocks::IQ1_M, qs) + 4 * c + l);
          points.push_back(
              point(v, v.orI(low, shl(v, andC(v, bits, 7), 8))));
          deltas.push_back(truncI8(v, andC(v, shr(v, bits, 2), 2)));
        }
      }
      // deltas hold 2 for a negative delta, 0 for a positive one.
      Value eight = v.shlI8(fromPoints(v, points), 3);
      Value delta = arith::SubIOp::create(v.b, v.loc, v.splatI8(1),
                                          perGroup(v, deltas));
      return arith::AddIOp::create(v.b, v.loc, eight, delta);
    }
    default:
      llvm_unreachable("not a lattice i-quant");
    }
    return applySigns(v, fromPoints(v, points), signs);
  }

  Value grid, signTable;
};

} // namespace

std::unique_ptr<FormatKernel> createLatticeKernel(Format format, ISA isa) {
  switch (format) {
  case Format::IQ2_XXS:
  case Format::IQ2_XS:
  case Format::IQ2_S:
  case Format::IQ3_XXS:
  case Format::IQ3_S:
  case Format::IQ1_S:
  case Format::IQ1_M:
    return std::make_unique<LatticeKernel>(format, isa);
  default:
    return nullptr;
  }
}

} // namespace mlir::lowbit::kernels
