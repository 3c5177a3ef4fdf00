//===- LowBitDialect.cpp - lowbit dialect, attributes and types -----------===//
#include "LowBit/IR/LowBit.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::lowbit;

#include "LowBit/IR/LowBitDialect.cpp.inc"
#include "LowBit/IR/LowBitEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "LowBit/IR/LowBitAttrs.cpp.inc"
#define GET_TYPEDEF_CLASSES
#include "LowBit/IR/LowBitTypes.cpp.inc"

void LowBitDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "LowBit/IR/LowBitAttrs.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "LowBit/IR/LowBitTypes.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "LowBit/IR/LowBitOps.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// GGUF value type names
//===----------------------------------------------------------------------===//

namespace {
// Indexed by GGUF value type id.
const char *const kGGUFTypeNames[] = {"u8",   "i8",    "u16",    "i16", "u32",
                                      "i32",  "f32",   "bool",   "string",
                                      "array", "u64",  "i64",    "f64"};
constexpr uint32_t kNumGGUFTypes = 13;
constexpr uint32_t kGGUFString = 8, kGGUFArray = 9, kGGUFBool = 7,
                   kGGUFF32 = 6, kGGUFF64 = 12;
} // namespace

StringRef mlir::lowbit::ggufTypeName(uint32_t type) {
  return type < kNumGGUFTypes ? kGGUFTypeNames[type] : "invalid";
}

std::optional<uint32_t> mlir::lowbit::parseGGUFTypeName(StringRef name) {
  for (uint32_t i = 0; i < kNumGGUFTypes; ++i)
    if (name == kGGUFTypeNames[i])
      return i;
  return std::nullopt;
}

/// True when `attr` is a valid value of GGUF type `type`.
static bool isGGUFValueOfType(Attribute attr, uint32_t type) {
  if (type == kGGUFString)
    return isa<StringAttr>(attr);
  if (type == kGGUFArray)
    return isa<GGUFArrayAttr>(attr);
  if (type == kGGUFF32 || type == kGGUFF64) {
    auto f = dyn_cast<FloatAttr>(attr);
    return f && f.getType().getIntOrFloatBitWidth() == (type == kGGUFF32 ? 32u : 64u);
  }
  auto i = dyn_cast<IntegerAttr>(attr);
  if (!i)
    return false;
  auto intType = dyn_cast<IntegerType>(i.getType());
  if (!intType)
    return false;
  if (type == kGGUFBool)
    return intType.getWidth() == 1;
  static const unsigned widths[] = {8, 8, 16, 16, 32, 32, 0, 0, 0, 0, 64, 64, 0};
  bool isSignedType = type == 1 || type == 3 || type == 5 || type == 11;
  return intType.getWidth() == widths[type] &&
         (isSignedType ? intType.isSigned() : intType.isUnsigned());
}

//===----------------------------------------------------------------------===//
// FormatAttr
//===----------------------------------------------------------------------===//

Attribute FormatAttr::parse(AsmParser &parser, Type) {
  std::string name;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() || parser.parseKeywordOrString(&name) ||
      parser.parseGreater())
    return {};
  const ::lowbit::formats::FormatInfo *info =
      ::lowbit::formats::findByName(name);
  if (!info) {
    parser.emitError(loc, "unknown weight format '") << name << "'";
    return {};
  }
  return FormatAttr::get(parser.getContext(), info->format);
}

void FormatAttr::print(AsmPrinter &printer) const {
  printer << "<" << getName() << ">";
}

const ::lowbit::formats::FormatInfo &FormatAttr::getInfo() const {
  return ::lowbit::formats::info(getFormat());
}
StringRef FormatAttr::getName() const { return getInfo().name; }
bool FormatAttr::isFloat() const {
  return getInfo().kind == ::lowbit::formats::FormatKind::Float;
}
uint64_t FormatAttr::getByteSize(uint64_t rows, uint64_t cols) const {
  return rows * ::lowbit::formats::rowBytes(getInfo(), cols);
}

//===----------------------------------------------------------------------===//
// RoleAttr
//===----------------------------------------------------------------------===//

Attribute RoleAttr::parse(AsmParser &parser, Type) {
  std::string kind;
  int64_t layer = -1, expert = -1;
  if (parser.parseLess() || parser.parseKeywordOrString(&kind))
    return {};
  while (succeeded(parser.parseOptionalComma())) {
    StringRef key;
    SMLoc loc = parser.getCurrentLocation();
    if (parser.parseKeyword(&key) || parser.parseEqual())
      return {};
    int64_t *slot = key == "layer" ? &layer : key == "expert" ? &expert : nullptr;
    if (!slot) {
      parser.emitError(loc, "expected 'layer' or 'expert', got '") << key << "'";
      return {};
    }
    if (parser.parseInteger(*slot))
      return {};
  }
  if (parser.parseGreater())
    return {};
  return RoleAttr::getChecked(
      [&] { return parser.emitError(parser.getCurrentLocation()); },
      parser.getContext(), kind, layer, expert);
}

void RoleAttr::print(AsmPrinter &printer) const {
  printer << "<";
  printer.printKeywordOrString(getKind());
  if (getLayer() >= 0)
    printer << ", layer = " << getLayer();
  if (getExpert() >= 0)
    printer << ", expert = " << getExpert();
  printer << ">";
}

LogicalResult RoleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               StringRef kind, int64_t layer, int64_t expert) {
  if (kind.empty())
    return emitError() << "a role needs a tensor kind";
  if (layer < -1 || expert < -1)
    return emitError() << "role indices must be >= 0 (or absent)";
  return success();
}

//===----------------------------------------------------------------------===//
// LayoutAttr, MetadataEntryAttr, GGUF arrays
//===----------------------------------------------------------------------===//

LogicalResult LayoutAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 uint32_t rows) {
  if (rows == 0 || (rows & (rows - 1)) != 0 || rows > 64)
    return emitError() << "layout rows must be a power of two in [1, 64], got "
                       << rows;
  return success();
}

static LogicalResult verifyGGUFValue(function_ref<InFlightDiagnostic()> emitError,
                                     Attribute value) {
  if (isa<StringAttr, GGUFArrayAttr, GGUFArrayRefAttr>(value))
    return success();
  for (uint32_t t = 0; t < kNumGGUFTypes; ++t)
    if (t != kGGUFArray && t != kGGUFString && isGGUFValueOfType(value, t))
      return success();
  return emitError() << "metadata value " << value
                     << " is not a GGUF value (ui8..si64, i1, f32, f64, "
                        "string, #lowbit.array or, at top level, #lowbit.model_key)";
}

LogicalResult
MetadataEntryAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                          StringRef key, Attribute value) {
  if (key.empty())
    return emitError() << "metadata key must not be empty";
  if (isa<ModelKeyAttr>(value))
    return success(); // the value is lowbit.model's (checked on export)
  return verifyGGUFValue(emitError, value);
}

LogicalResult GGUFArrayAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                    uint32_t elementType, ArrayAttr elements) {
  if (elementType >= kNumGGUFTypes)
    return emitError() << "invalid GGUF element type " << elementType;
  for (auto [index, element] : llvm::enumerate(elements))
    if (!isGGUFValueOfType(element, elementType))
      return emitError() << "array element " << index << " (" << element
                         << ") is not of type " << ggufTypeName(elementType);
  return success();
}

static ParseResult parseGGUFTypeKeyword(AsmParser &parser, uint32_t &type) {
  StringRef name;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseKeyword(&name))
    return failure();
  std::optional<uint32_t> parsed = parseGGUFTypeName(name);
  if (!parsed)
    return parser.emitError(loc, "unknown GGUF value type '") << name << "'";
  type = *parsed;
  return success();
}

Attribute GGUFArrayAttr::parse(AsmParser &parser, Type) {
  uint32_t elementType;
  Attribute elements;
  if (parser.parseLess() || parseGGUFTypeKeyword(parser, elementType) ||
      parser.parseColon() || parser.parseAttribute(elements) ||
      parser.parseGreater())
    return {};
  auto array = dyn_cast<ArrayAttr>(elements);
  if (!array) {
    parser.emitError(parser.getNameLoc(), "expected an array of elements");
    return {};
  }
  return parser.getChecked<GGUFArrayAttr>(parser.getContext(), elementType,
                                          array);
}

void GGUFArrayAttr::print(AsmPrinter &printer) const {
  printer << "<" << ggufTypeName(getElementType()) << ": " << getElements()
          << ">";
}

Attribute GGUFArrayRefAttr::parse(AsmParser &parser, Type) {
  std::string path;
  uint32_t elementType;
  uint64_t count;
  if (parser.parseLess() || parser.parseString(&path) || parser.parseComma() ||
      parseGGUFTypeKeyword(parser, elementType) || parser.parseKeyword("x") ||
      parser.parseInteger(count) || parser.parseGreater())
    return {};
  return GGUFArrayRefAttr::get(parser.getContext(), path, elementType, count);
}

void GGUFArrayRefAttr::print(AsmPrinter &printer) const {
  printer << "<\"";
  llvm::printEscapedString(getPath(), printer.getStream());
  printer << "\", " << ggufTypeName(getElementType()) << " x " << getCount()
          << ">";
}

//===----------------------------------------------------------------------===//
// QTensorType
//===----------------------------------------------------------------------===//

Type QTensorType::parse(AsmParser &parser) {
  SmallVector<int64_t> shape;
  std::string formatName;
  if (parser.parseLess() ||
      parser.parseDimensionList(shape, /*allowDynamic=*/false,
                                /*withTrailingX=*/false))
    return {};
  SMLoc formatLoc = parser.getCurrentLocation();
  if (parser.parseColon() || parser.parseKeywordOrString(&formatName))
    return {};
  const ::lowbit::formats::FormatInfo *info =
      ::lowbit::formats::findByName(formatName);
  if (!info) {
    parser.emitError(formatLoc, "unknown weight format '") << formatName << "'";
    return {};
  }
  LayoutAttr layout;
  if (succeeded(parser.parseOptionalComma()) && parser.parseAttribute(layout))
    return {};
  if (parser.parseGreater())
    return {};
  return parser.getChecked<QTensorType>(
      parser.getContext(), shape,
      FormatAttr::get(parser.getContext(), info->format), layout);
}

void QTensorType::print(AsmPrinter &printer) const {
  printer << "<";
  llvm::interleave(getShape(), printer.getStream(), "x");
  printer << " : " << getFormat().getName();
  if (getLayout())
    printer << ", " << getLayout();
  printer << ">";
}

LogicalResult QTensorType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  ArrayRef<int64_t> shape, FormatAttr format,
                                  LayoutAttr layout) {
  if (shape.empty())
    return emitError() << "qtensor must have at least one dimension";
  for (int64_t dim : shape)
    if (dim <= 0)
      return emitError() << "qtensor dimensions must be positive, got " << dim;
  int64_t rowLength = shape.back();
  if (rowLength % format.getBlockSize() != 0)
    return emitError() << "row length " << rowLength << " is not a multiple of "
                       << format.getName() << "'s block size "
                       << format.getBlockSize();
  if (layout) {
    int64_t rows = 1;
    for (int64_t dim : shape.drop_back())
      rows *= dim;
    if (rows % layout.getRows() != 0)
      return emitError() << "row count " << rows
                         << " is not a multiple of the layout's "
                         << layout.getRows() << " interleaved rows";
  }
  return success();
}

int64_t QTensorType::getNumElements() const {
  int64_t n = 1;
  for (int64_t dim : getShape())
    n *= dim;
  return n;
}

uint64_t QTensorType::getByteSize() const {
  return getFormat().getByteSize(getNumRows(), getRowLength());
}

QTensorType QTensorType::withFormat(::lowbit::formats::Format format) const {
  return QTensorType::get(getContext(), getShape(),
                          FormatAttr::get(getContext(), format), getLayout());
}

//===----------------------------------------------------------------------===//
// KVCacheType
//===----------------------------------------------------------------------===//

LogicalResult KVCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t layers, int64_t contextLength,
                                  int64_t kvHeads, int64_t headDim) {
  if (layers <= 0 || contextLength <= 0 || kvHeads <= 0 || headDim <= 0)
    return emitError() << "kv_cache sizes must be positive";
  return success();
}
