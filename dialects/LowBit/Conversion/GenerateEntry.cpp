//===- GenerateEntry.cpp - @forward as the native program's entry ---------===//
//
// lowbit-generate-entry: the module's graph, translated op for op by the
// executor's glue (IRModel) and planned by the executor's planProgram, is
// written as LLVM dialect constants (one lb_op record per op, the buffer
// plan, the weight names) and a straight-line `lb_forward` that calls the
// runtime's op function for each record in graph order. The records are
// exactly what the reference executor builds when it interprets the graph
// (buildOpRecords), so both run the same calls.
//
//===----------------------------------------------------------------------===//

#include "LowBit/Conversion/Passes.h"

#include "LowBit/Exec/IRModel.h"
#include "lowbit/Exec/Program.h"
#include "lowbit/Target/KernelABI.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::lowbit {

#define GEN_PASS_DEF_LOWBITGENERATEENTRY
#include "LowBit/Conversion/Passes.h.inc"

namespace {

namespace exec = ::lowbit::exec;

/// Emits the program's LLVM dialect constants and functions at the end of a
/// module. Every op it creates is marked kernel data so that
/// lowbit-isolate-kernels keeps it with the kernels.
class EntryWriter {
public:
  EntryWriter(ModuleOp module)
      : module_(module), ctx_(module.getContext()),
        b_(OpBuilder::atBlockEnd(module.getBody())), loc_(module.getLoc()) {
    ptr_ = LLVM::LLVMPointerType::get(ctx_);
    i32_ = IntegerType::get(ctx_, 32);
    i64_ = IntegerType::get(ctx_, 64);
    f32_ = Float32Type::get(ctx_);
  }

  void write(const exec::ModelDesc &model, const exec::ProgramPlan &plan,
             const exec::OpRecords &records);

private:
  template <typename OpT> OpT mark(OpT op) {
    op->setAttr(kKernelDataAttrName, UnitAttr::get(ctx_));
    return op;
  }

  /// A private constant array of i32 or i64; "" when `values` is empty (the
  /// record field stays null).
  template <typename T>
  std::string array(const std::string &name, ArrayRef<T> values) {
    if (values.empty())
      return "";
    Type elem = sizeof(T) == 4 ? Type(i32_) : Type(i64_);
    auto tensor = RankedTensorType::get(
        {static_cast<int64_t>(values.size())}, elem);
    auto type = LLVM::LLVMArrayType::get(elem, values.size());
    mark(LLVM::GlobalOp::create(b_, loc_, type, /*isConstant=*/true,
                                LLVM::Linkage::Private, name,
                                DenseElementsAttr::get(tensor, values)));
    return name;
  }

  std::string string(const std::string &name, StringRef text) {
    std::string bytes = text.str();
    bytes.push_back('\0');
    auto type = LLVM::LLVMArrayType::get(IntegerType::get(ctx_, 8),
                                         bytes.size());
    mark(LLVM::GlobalOp::create(b_, loc_, type, /*isConstant=*/true,
                                LLVM::Linkage::Private, name,
                                b_.getStringAttr(bytes)));
    return name;
  }

  /// A constant global of struct type `type` whose fields `fill` builds in
  /// the initializer region.
  void structGlobal(const std::string &name, LLVM::LLVMStructType type,
                    const std::function<SmallVector<Value>(OpBuilder &)> &fill) {
    auto global = mark(LLVM::GlobalOp::create(
        b_, loc_, type, /*isConstant=*/true, LLVM::Linkage::Private, name,
        Attribute()));
    OpBuilder::InsertionGuard guard(b_);
    b_.createBlock(&global.getInitializerRegion());
    SmallVector<Value> fields = fill(b_);
    Value s = LLVM::UndefOp::create(b_, loc_, type);
    for (auto [i, field] : llvm::enumerate(fields))
      s = LLVM::InsertValueOp::create(b_, loc_, s, field,
                                      ArrayRef<int64_t>{int64_t(i)});
    LLVM::ReturnOp::create(b_, loc_, s);
  }

  Value i32(OpBuilder &b, int64_t v) {
    return LLVM::ConstantOp::create(b, loc_, i32_, b.getI32IntegerAttr(v));
  }
  Value i64(OpBuilder &b, int64_t v) {
    return LLVM::ConstantOp::create(b, loc_, i64_, b.getI64IntegerAttr(v));
  }
  Value f32(OpBuilder &b, float v) {
    return LLVM::ConstantOp::create(b, loc_, f32_, b.getF32FloatAttr(v));
  }
  Value address(OpBuilder &b, const std::string &symbol) {
    if (symbol.empty())
      return LLVM::ZeroOp::create(b, loc_, ptr_);
    return LLVM::AddressOfOp::create(b, loc_, ptr_, symbol);
  }

  /// The trampoline for op kind `kind`: api->ops[kind](exec, op).
  std::string trampoline(int32_t kind);

  ModuleOp module_;
  MLIRContext *ctx_;
  OpBuilder b_;
  Location loc_;
  Type ptr_, i32_, i64_, f32_;
  std::map<int32_t, std::string> trampolines_;
};

std::string EntryWriter::trampoline(int32_t kind) {
  auto it = trampolines_.find(kind);
  if (it != trampolines_.end())
    return it->second;
  const std::string name =
      std::string("lb_op_") +
      exec::opKindName(static_cast<exec::OpKind>(kind));
  auto voidTy = LLVM::LLVMVoidType::get(ctx_);
  auto fnType = LLVM::LLVMFunctionType::get(voidTy, {ptr_, ptr_, ptr_});
  auto fn = mark(LLVM::LLVMFuncOp::create(b_, loc_, name, fnType,
                                          LLVM::Linkage::Internal));
  OpBuilder::InsertionGuard guard(b_);
  Block *body = fn.addEntryBlock(b_);
  b_.setInsertionPointToStart(body);
  // struct lb_runtime_api { i32 abi_version; i32 num_ops; ptr ops[N]; }
  auto apiType = LLVM::LLVMStructType::getLiteral(
      ctx_, {i32_, i32_, LLVM::LLVMArrayType::get(ptr_, LB_OP_KIND_COUNT)});
  Value slot = LLVM::GEPOp::create(
      b_, loc_, ptr_, apiType, body->getArgument(1),
      ArrayRef<LLVM::GEPArg>{0, 2, static_cast<int32_t>(kind)});
  Value callee = LLVM::LoadOp::create(b_, loc_, ptr_, slot);
  auto opFnType = LLVM::LLVMFunctionType::get(voidTy, {ptr_, ptr_});
  LLVM::CallOp::create(
      b_, loc_, opFnType,
      ValueRange{callee, body->getArgument(0), body->getArgument(2)});
  LLVM::ReturnOp::create(b_, loc_, ValueRange{});
  trampolines_[kind] = name;
  return name;
}

void EntryWriter::write(const exec::ModelDesc &model,
                        const exec::ProgramPlan &plan,
                        const exec::OpRecords &records) {
  const exec::Graph &graph = model.graph;
  // struct lb_op (KernelABI.h): 7 x i32, 3 x i32, 9 x f32, i32, 8 x i64,
  // 5 x ptr; Program.cpp static_asserts the C layout.
  SmallVector<Type> opFields;
  opFields.append(10, i32_);
  opFields.append(9, f32_);
  opFields.push_back(i32_);
  opFields.append(8, i64_);
  opFields.append(5, ptr_);
  auto opType = LLVM::LLVMStructType::getLiteral(ctx_, opFields);

  std::vector<std::string> recordNames;
  for (auto [i, r] : llvm::enumerate(records.ops)) {
    const std::string base = "lb_op." + std::to_string(i);
    const std::string in = array<int32_t>(
        base + ".inputs", ArrayRef<int32_t>(r.inputs, r.num_inputs));
    const std::string out = array<int32_t>(
        base + ".outputs", ArrayRef<int32_t>(r.outputs, r.num_outputs));
    const std::string experts = array<int32_t>(
        base + ".experts", ArrayRef<int32_t>(r.experts, r.num_experts));
    const std::string sizes = array<int64_t>(
        base + ".sizes", ArrayRef<int64_t>(r.sizes, r.num_sizes));
    const std::string where = string(base + ".location", r.location);
    const lb_op rec = r;
    structGlobal(base, opType, [&](OpBuilder &b) {
      return SmallVector<Value>{
          i32(b, rec.kind), i32(b, rec.flags), i32(b, rec.num_inputs),
          i32(b, rec.num_outputs), i32(b, rec.num_experts),
          i32(b, rec.num_sizes), i32(b, rec.inputs_before_head),
          i32(b, rec.weight), i32(b, rec.bias), i32(b, rec.long_weight),
          f32(b, rec.epsilon), f32(b, rec.theta), f32(b, rec.freq_scale),
          f32(b, rec.ext_factor), f32(b, rec.attn_factor),
          f32(b, rec.beta_fast), f32(b, rec.beta_slow), f32(b, rec.scale),
          f32(b, rec.softcap), i32(b, 0), i64(b, rec.original_context),
          i64(b, rec.heads), i64(b, rec.head_dim), i64(b, rec.rope_dims),
          i64(b, rec.cache_layer), i64(b, rec.group), i64(b, rec.window),
          i64(b, rec.top_k), address(b, in), address(b, out),
          address(b, experts), address(b, sizes), address(b, where)};
    });
    recordNames.push_back(base);
  }

  // The entry: one call per op, in graph order.
  auto voidTy = LLVM::LLVMVoidType::get(ctx_);
  auto forward = mark(LLVM::LLVMFuncOp::create(
      b_, loc_, "lb_forward", LLVM::LLVMFunctionType::get(voidTy, {ptr_, ptr_}),
      LLVM::Linkage::Internal));
  std::vector<std::string> callees;
  for (const lb_op &r : records.ops)
    callees.push_back(trampoline(r.kind));
  {
    OpBuilder::InsertionGuard guard(b_);
    Block *body = forward.addEntryBlock(b_);
    b_.setInsertionPointToStart(body);
    for (size_t i = 0; i < recordNames.size(); ++i) {
      Value record = address(b_, recordNames[i]);
      LLVM::CallOp::create(b_, loc_, TypeRange{}, callees[i],
                           ValueRange{body->getArgument(0),
                                      body->getArgument(1), record});
    }
    LLVM::ReturnOp::create(b_, loc_, ValueRange{});
  }

  // The plan and the weight names.
  const std::string widths = array<int64_t>("lb_value_width", graph.valueWidth);
  const std::string buffers = array<int32_t>("lb_value_buffer", plan.bufferOf);
  const std::string bufferWidths =
      array<int64_t>("lb_buffer_width", plan.bufferWidth);
  std::vector<std::string> names;
  for (auto [j, name] : llvm::enumerate(records.weightNames))
    names.push_back(string("lb_weight_name." + std::to_string(j), name));
  std::string nameTable;
  if (!names.empty()) {
    nameTable = "lb_weight_names";
    auto type = LLVM::LLVMArrayType::get(ptr_, names.size());
    auto global = mark(LLVM::GlobalOp::create(b_, loc_, type, true,
                                              LLVM::Linkage::Private,
                                              nameTable, Attribute()));
    OpBuilder::InsertionGuard guard(b_);
    b_.createBlock(&global.getInitializerRegion());
    Value a = LLVM::UndefOp::create(b_, loc_, type);
    for (auto [j, name] : llvm::enumerate(names))
      a = LLVM::InsertValueOp::create(b_, loc_, a, address(b_, name),
                                      ArrayRef<int64_t>{int64_t(j)});
    LLVM::ReturnOp::create(b_, loc_, a);
  }
  const std::string uses = array<int32_t>("lb_weight_use", records.weightUse);
  std::vector<int64_t> shapes;
  for (const std::string &name : records.weightNames) {
    const exec::WeightRef *w = model.find(name); // validate() checked it
    shapes.push_back(w->rows);
    shapes.push_back(w->cols);
  }
  const std::string weightShapes = array<int64_t>("lb_weight_shape", shapes);
  // struct lb_program: 8 x i32, 4 x i64, 7 x ptr.
  SmallVector<Type> programFields;
  programFields.append(8, i32_);
  programFields.append(4, i64_);
  programFields.append(7, ptr_);
  auto programType = LLVM::LLVMStructType::getLiteral(ctx_, programFields);
  structGlobal("lb_program", programType, [&](OpBuilder &b) {
    return SmallVector<Value>{
        i32(b, LB_KERNEL_ABI_VERSION),
        i32(b, static_cast<int64_t>(graph.valueWidth.size())),
        i32(b, static_cast<int64_t>(plan.bufferWidth.size())),
        i32(b, static_cast<int64_t>(records.weightNames.size())),
        i32(b, graph.result), i32(b, plan.resultInHead ? 1 : 0),
        i32(b, plan.maxAttentionHeads), i32(b, 0),
        i64(b, graph.cache.layers), i64(b, graph.cache.context),
        i64(b, graph.cache.kvHeads), i64(b, graph.cache.headDim),
        address(b, widths), address(b, buffers), address(b, bufferWidths),
        address(b, nameTable), address(b, "lb_forward"), address(b, uses),
        address(b, weightShapes)};
  });

  // lb_get_program: exported, and listed in lb_kernel_table.
  auto get = mark(LLVM::LLVMFuncOp::create(
      b_, loc_, LB_GET_PROGRAM_SYMBOL, LLVM::LLVMFunctionType::get(ptr_, {})));
  get->setAttr(kKernelEntryAttrName, UnitAttr::get(ctx_));
  OpBuilder::InsertionGuard guard(b_);
  b_.setInsertionPointToStart(get.addEntryBlock(b_));
  LLVM::ReturnOp::create(b_, loc_, address(b_, "lb_program"));
}

struct LowBitGenerateEntryPass
    : impl::LowBitGenerateEntryBase<LowBitGenerateEntryPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward || forward.isExternal())
      return; // kernels only
    if (module.lookupSymbol(LB_GET_PROGRAM_SYMBOL)) {
      module.emitError() << "the module already has a generated entry";
      return signalPassFailure();
    }
    exec::ModelDesc desc;
    if (failed(translateModel(module, desc, /*allowPackedWeights=*/true,
                              /*readWeightData=*/false)))
      return signalPassFailure();
    const exec::ProgramPlan plan = exec::planProgram(desc.graph);
    exec::OpRecords records;
    exec::buildOpRecords(desc.graph, plan, records);
    EntryWriter(module).write(desc, plan, records);
  }
};

} // namespace

} // namespace mlir::lowbit
