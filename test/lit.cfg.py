# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "LOWBIT"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.lowbit_obj_root, "test")
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py",
                   "unit", "fuzz", "Tools"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
config.substitutions.append(("%shared", config.lowbit_shared_dir))
config.substitutions.append(("%srcroot", config.lowbit_src_root))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

# Tests that need ../shared/models or ../shared/golden declare
# "REQUIRES: shared-models" and are reported UNSUPPORTED (with this reason)
# when the folder is absent.
if os.path.isdir(os.path.join(config.lowbit_shared_dir, "models")):
    config.available_features.add("shared-models")
else:
    lit_config.note("../shared/models not found: tests needing real models are skipped")
if os.path.isdir(os.path.join(config.lowbit_shared_dir, "golden")):
    config.available_features.add("shared-golden")
if os.path.isdir(os.path.join(config.lowbit_shared_dir, "tokenizers")):
    config.available_features.add("shared-tokenizers")

config.environment["LOWBIT_NO_PROGRESS"] = "1"

# ONNX fixtures are written as protobuf text (test/ONNX/Inputs/*.txtpb) and
# encoded with protoc against Debian's onnx.proto (libonnx-dev,
# protobuf-compiler); the ONNX backend node tests come from libonnx-testdata.
import sys
config.substitutions.append(("%python", sys.executable))
# ONNX Runtime (npm onnxruntime-node, installed into the build folder by
# scripts/setup.sh) runs lowbit's ONNX output in the tests.
ort_modules = os.path.join(config.lowbit_obj_root, "ort-client", "node_modules")
if os.path.isdir(os.path.join(ort_modules, "onnxruntime-node")):
    config.available_features.add("onnxruntime")
    config.environment["NODE_PATH"] = ort_modules
else:
    lit_config.note("onnxruntime-node not found in " + ort_modules +
                    ": the ONNX Runtime tests are skipped (scripts/setup.sh "
                    "installs it)")
config.substitutions.append(
    ("%ort-compare",
     "node " + os.path.join(config.lowbit_src_root, "test", "clients", "ort",
                            "ort-compare.js")))
config.substitutions.append(
    ("%onnx-encode",
     "protoc -I/usr/include onnx/onnx.proto --encode=onnx.ModelProto"))

tool_dirs = [config.lowbit_tools_dir, config.llvm_tools_dir]
tools = [
    ToolSubst("lowbit-opt", unresolved="fatal"),
    ToolSubst("lowbit", unresolved="fatal"),
    ToolSubst("lowbit-gguf", unresolved="fatal"),
    ToolSubst("lowbit-test-state", unresolved="fatal"),
    ToolSubst("lowbit-rt", unresolved="fatal"),
    # Debian's llvm-22-tools / mlir-22-tools, for the assembly checks of the
    # generated kernels (test/Target).
    ToolSubst("llc", unresolved="fatal"),
    ToolSubst("mlir-translate", unresolved="fatal"),
]
llvm_config.add_tool_substitutions(tools, tool_dirs)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.lowbit_tools_dir, append_path=True)

# Native AArch64 artifacts run under qemu-user with a static, cross-built
# runtime (scripts/build-runtime-aarch64.sh, built once into
# %aarch64_build); skipped with a note when the tools are absent.
import shutil
config.substitutions.append(
    ("%aarch64_build", os.path.join(config.lowbit_obj_root, "runtime-aarch64")))
if shutil.which("qemu-aarch64") and shutil.which("aarch64-linux-gnu-g++"):
    config.available_features.add("aarch64-qemu")
else:
    lit_config.note("qemu-aarch64 or aarch64-linux-gnu-g++ not found: the "
                    "AArch64 runtime tests are skipped (scripts/setup.sh "
                    "installs qemu-user and g++-aarch64-linux-gnu)")
