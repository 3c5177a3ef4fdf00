// RUN: not lowbit-opt %s --lowbit-assign-formats="preset=q9_k" 2>&1 | FileCheck %s --check-prefix=PRESET
// RUN: not lowbit-opt %s --lowbit-assign-formats="preset=q4_0 tensor-type=ffn=q9" 2>&1 | FileCheck %s --check-prefix=FORMAT
// RUN: not lowbit-opt %s --lowbit-assign-formats="preset=q4_0 tensor-type=(=q8_0" 2>&1 | FileCheck %s --check-prefix=REGEX
// RUN: not lowbit-opt %s --lowbit-assign-formats="preset=q4_0 output-tensor-type=q7" 2>&1 | FileCheck %s --check-prefix=OUTPUT

// PRESET: error: unknown preset 'q9_k'; known presets: q4_0 q4_1
// FORMAT: error: unknown format 'q9' in --tensor-type 'ffn=q9'
// REGEX: error: invalid --tensor-type regex '('
// OUTPUT: error: unknown format 'q7' for output-tensor-type
module {}
