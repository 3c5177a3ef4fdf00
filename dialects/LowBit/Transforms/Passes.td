//===- Passes.td - lowbit transformation passes ------------*- tablegen -*-===//
#ifndef LOWBIT_TRANSFORMS_PASSES_TD
#define LOWBIT_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def LowBitConvertONNX : Pass<"lowbit-convert-onnx", "::mlir::ModuleOp"> {
  let summary = "Turn the ONNX nodes lowbit understands into lowbit ops";
  let description = [{
    The second step of the ONNX import (the first, lowbit import, keeps
    every node as a `lowbit.onnx.node`): matmuls against constant weights
    become `lowbit.matmul` over a `lowbit.global_weight`, so the rest of the
    pipeline (format assignment, allocation, quantization) sees the weights
    it sees in any model.

    Constant weights are initializers or `Constant` nodes (as many exports
    carry them).

    - `MatMul(X, W)`, W an f32 constant `[K, N]`: the weight is W
      transposed (`!lowbit.qtensor<N x K : f32>`, one row per output, in a
      resource blob).
    - `Gemm(A, B, C)` with alpha = beta = 1 and transA = 0: with transB = 1,
      B is already `[N, K]` and the weight references its bytes in the file;
      C (1-D) becomes the matmul's bias.
    - `Gather(T, ids)` on axis 0, T an f32 initializer `[rows, width]`: the
      node stays (ONNX's Gather semantics), reading the table as a weight
      (`lowbit.weight`, the bytes referenced in place), which the ONNX
      exporter writes as com.microsoft GatherBlockQuantized when quantized.

    An initializer that nothing else reads is replaced by the weight (the
    symbol moves over; its Constant node goes too); `onnx.name` on the weight keeps its ONNX name, and
    `onnx.name` / `onnx.outputs` on the matmul the node's names, which the
    ONNX exporter writes back. Other nodes are left as they are.

    Before:
    ```mlir
    lowbit.onnx.initializer @W : tensor<64x32xf32> = #lowbit.external<...>
    %w = lowbit.onnx.constant @W : tensor<64x32xf32>
    %y = lowbit.onnx.node "MatMul"(%x, %w) {outputs = ["y"]} : (tensor<?x64xf32>, tensor<64x32xf32>) -> tensor<?x32xf32>
    ```
    After:
    ```mlir
    lowbit.global_weight @W : !lowbit.qtensor<32x64 : f32> = dense_resource<W> : tensor<8192xi8> {onnx.name = "W"}
    %w = lowbit.weight @W : !lowbit.qtensor<32x64 : f32>
    %y = lowbit.matmul %x, %w {onnx.outputs = ["y"]} : tensor<?x64xf32>, !lowbit.qtensor<32x64 : f32> -> tensor<?x32xf32>
    ```
  }];
}

def LowBitAssignFormats : Pass<"lowbit-assign-formats", "::mlir::ModuleOp"> {
  let summary = "Choose a storage format for every weight from a preset and rules";
  let description = [{
    Applies a llama.cpp-style preset (q4_k_m, q3_k_s, ...) with its per-tensor
    mixing rules (output and embedding types, attn_v / ffn_down bumps by layer
    position, fall-backs for row lengths that do not fit a block) and the
    user's overrides, then (with `dynamic-gate`) a table of (layer band x
    tensor kind -> format) rules over the preset's choices, matched on the
    weights' roles. The choice is recorded as a `lowbit.target` attribute on
    each `lowbit.global_weight` whose format changes; `lowbit-quantize`
    materialises it. The module's `general.file_type` and
    `general.quantization_version` metadata are set as llama.cpp sets them.

    Before:
    ```mlir
    lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<...>
    ```
    After `--lowbit-assign-formats="preset=q4_k_m"`:
    ```mlir
    lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<...>
        {lowbit.target = #lowbit.format<q4_k>}
    ```
  }];
  let options = [
    Option<"preset", "preset", "std::string", "\"\"",
           "Preset name (q4_0, q4_k_m, ...; see lowbit compile --help)">,
    ListOption<"tensorTypes", "tensor-type", "std::string",
               "REGEX=FORMAT overrides, first match wins">,
    Option<"outputTensorType", "output-tensor-type", "std::string", "\"\"",
           "Format of output.weight">,
    Option<"tokenEmbeddingType", "token-embedding-type", "std::string", "\"\"",
           "Format of token_embd.weight">,
    Option<"pure", "pure", "bool", "false",
           "Use the preset's default format for every quantizable tensor">,
    Option<"hasImportance", "has-importance", "bool", "false",
           "An importance matrix will be used (changes some rules)">,
    Option<"dynamicGate", "dynamic-gate", "std::string", "\"\"",
           "Layer-band rule table applied over the preset: 'published' "
           "(the IQ-DynamicGate recipe) or a table file (lib/Quant/"
           "DynamicGate.h)">
  ];
}

def LowBitQuantize : Pass<"lowbit-quantize", "::mlir::ModuleOp"> {
  let summary = "Encode weights into their target formats";
  let description = [{
    For every `lowbit.global_weight` with a `lowbit.target` format, decodes
    the current data, encodes it into the target format (importance-weighted
    scale search when an importance matrix is given), stores the bytes as a
    resource blob and rewrites the weight's type and every `lowbit.weight`
    that refers to it. Fails, naming the tensor, on NaN/Inf weights or an
    importance vector of the wrong size.

    `method=rtn` (default) encodes each row on its own. `method=gptq` uses
    the calibration Hessian of each weight's input from `state` (written by
    lowbit-calibrate with Hessians) for GPTQ error feedback inside the
    target's blocks (lowbit/Quant/GPTQ.h): the bytes are still the target
    format's. Weights without a Hessian (token_embd) fall back to RTN;
    `lowbit.quant_method` records which was used and
    `lowbit.gptq_error_ratio` the output error on calibration data relative
    to RTN. Weights scaled by lowbit-awq-scale (`lowbit.awq_scaled`) get
    their importance and Hessian rescaled to match their scaled inputs.

    Before:
    ```mlir
    lowbit.global_weight @w : !lowbit.qtensor<2x32 : f32> = dense_resource<w> : tensor<256xi8>
        {lowbit.target = #lowbit.format<q8_0>}
    ```
    After:
    ```mlir
    lowbit.global_weight @w : !lowbit.qtensor<2x32 : q8_0> = dense_resource<w_q8_0> : tensor<68xi8>
    ```
  }];
  let options = [
    Option<"imatrix", "imatrix", "std::string", "\"\"",
           "llama.cpp importance matrix file (GGUF or legacy .dat)">,
    Option<"imatrixName", "imatrix-name", "std::string", "\"\"",
           "What quantize.imatrix.file records (default: the imatrix path; "
           "a driver that made a temporary one names its source instead)">,
    Option<"threads", "threads", "int", "0",
           "Encoder threads (0 = all cores)">,
    Option<"method", "method", "std::string", "\"rtn\"",
           "rtn (round each row) or gptq (Hessian error feedback)">,
    Option<"state", "state", "std::string", "\"\"",
           "Calibration state with Hessians (needed by method=gptq)">,
    Option<"damp", "damp", "double", "0.01",
           "GPTQ damping, a fraction of the mean Hessian diagonal">,
    Option<"actOrder", "act-order", "bool", "true",
           "GPTQ: process blocks and columns in decreasing diag(H)">
  ];
}

def LowBitCalibrate : Pass<"lowbit-calibrate", "::mlir::ModuleOp"> {
  let summary = "Record activation statistics by running the model on text";
  let description = [{
    Runs the reference executor over calibration tokens, chunked like
    llama.cpp's imatrix tool (the text tokenized once with BOS, chunks of
    `ctx` tokens each evaluated from an empty cache with BOS first), and
    records for every matmul weight the per-input-channel sum of squares,
    sum and token count, for token_embd.weight how often each row is looked
    up, and with `hessians=true` the Hessian X^T X of every matmul input,
    a group of layers at a time within `hessian-budget`. `calib=self`
    samples the text from the model itself (seeded).

    Writes `imatrix-out` (llama.cpp's GGUF imatrix) and/or `state` (a GGUF
    calibration state: the same imatrix with sums, the tokens, the model's
    fingerprint and the Hessians; see lowbit/Calibration/Hessian.h). The IR
    changes only by a module attribute naming the outputs.

    Before:
    ```mlir
    module attributes {lowbit.metadata = [...]} { ... }
    ```
    After `--lowbit-calibrate="calib=calib.txt ctx=256 state=calib.gguf"`:
    ```mlir
    module attributes {lowbit.calibration = {chunks = 377 : i64,
        passes = 1 : i64, ppl = 45.2 : f64, state = "calib.gguf",
        tokens = 96512 : i64}, lowbit.metadata = [...]} { ... }
    ```
  }];
  let dependentDialects = ["::mlir::lowbit::LowBitDialect"];
  let options = [
    Option<"calibText", "calib", "std::string", "\"\"",
           "Calibration text file, or 'self' to sample it from the model">,
    Option<"ctx", "ctx", "int64_t", "0",
           "Tokens per chunk (0 = 512 or the model's context if smaller)">,
    Option<"chunks", "chunks", "int64_t", "0",
           "Evaluate at most this many chunks (0 = all)">,
    Option<"selfTokens", "self-tokens", "int64_t", "16384",
           "Tokens to sample with calib=self">,
    Option<"seed", "seed", "int64_t", "1",
           "Sampling seed for calib=self">,
    Option<"imatrixOut", "imatrix-out", "std::string", "\"\"",
           "Write llama.cpp's GGUF importance matrix here">,
    Option<"state", "state", "std::string", "\"\"",
           "Write the calibration state (GGUF) here">,
    Option<"hessians", "hessians", "bool", "false",
           "Also accumulate the Hessian X^T X of every matmul input">,
    Option<"hessianBudget", "hessian-budget", "std::string", "\"1GiB\"",
           "Most memory for Hessians at once (bytes, or 512MiB, 2GiB, ...)">,
    Option<"threads", "threads", "int", "0",
           "Executor threads (0 = all cores)">
  ];
}

def LowBitSensitivity : Pass<"lowbit-sensitivity", "::mlir::ModuleOp"> {
  let summary = "Predict the damage of every candidate format of every weight";
  let description = [{
    For every quantizable weight and every candidate format its row length
    fits, encodes the weight with the real codec (importance-weighted as
    lowbit-quantize will) and computes the expected squared output error per
    token from the calibration statistics: sum over rows of
    sum_c Var[x_c] e_c^2 + (e . E[x])^2 (see lowbit/Analysis/Sensitivity.h
    for the derivation and its approximation). With `measure=kld` the damage
    is instead the measured mean KL divergence of the model's next-token
    distribution on calibration tokens when only that weight is quantized;
    with `measure=gain` it is the predicted damage scaled, per tensor, so
    that it matches the KL divergence measured for one format (q3_k, or
    q4_0 for rows of 32): the prediction's shape across formats, the
    measured weight of the tensor in the model's output. With `method=gptq`
    and `measure=kld` the measured tensor is quantized by GPTQ instead of plain rounding, so
    the allocation ranks formats by the damage GPTQ leaves (it helps the
    K-quants far more than the lattice i-quants). Results are kept in `state` (JSON, keyed by the model's fingerprint,
    tensor and format), written after every tensor, so a rerun reuses them
    and an interrupted run resumes. Statistics come from `statistics` (a
    calibration state or any imatrix) or from the module's
    lowbit.calibration attribute; `no-importance` weighs all columns alike.

    Before:
    ```mlir
    lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<...>
    ```
    After `--lowbit-sensitivity="statistics=calib.gguf formats=q4_k,q6_k"`:
    ```mlir
    lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<...>
        {lowbit.sensitivity = {q4_k = 2.1e-02 : f64, q6_k = 1.4e-03 : f64}}
    ```
  }];
  let dependentDialects = ["::mlir::lowbit::LowBitDialect"];
  let options = [
    Option<"statistics", "statistics", "std::string", "\"\"",
           "Calibration state or imatrix file (default: lowbit.calibration)">,
    Option<"noImportance", "no-importance", "bool", "false",
           "Plain squared error: every column counts the same">,
    ListOption<"candidateFormats", "formats", "std::string",
               "Candidate formats (default: iq1_s iq1_m iq2_xxs iq2_xs iq2_s "
               "q2_k iq3_xxs iq3_s q3_k iq4_xs q4_0 iq4_nl q4_1 q4_k q5_0 q5_1 "
               "q5_k q6_k q8_0 f16; with no-importance, iq1_s iq2_xxs iq2_xs "
               "are left out)">,
    Option<"measure", "measure", "std::string", "\"wmse\"",
           "Damage: wmse (predicted from statistics), gain (predicted, "
           "scaled per tensor to one measured KL divergence) or kld "
           "(measured for every format)">,
    Option<"kldChunks", "kld-chunks", "int64_t", "4",
           "Calibration chunks the KL divergence is measured on">,
    Option<"method", "method", "std::string", "\"rtn\"",
           "How a tensor is quantized for measure=kld: rtn, or gptq "
           "(with the Hessians of `hessians`, or of `statistics`)">,
    Option<"hessians", "hessians", "std::string", "\"\"",
           "Calibration state with Hessians for method=gptq (default: "
           "statistics)">,
    Option<"calibText", "calib", "std::string", "\"\"",
           "Text for measure=kld when the statistics hold no tokens">,
    Option<"ctx", "ctx", "int64_t", "0",
           "Chunk size for measure=kld (0 = the calibration's)">,
    Option<"state", "state", "std::string", "\"\"",
           "Results file (JSON) to reuse and update">,
    Option<"threads", "threads", "int", "0",
           "Threads (0 = all cores)">
  ];
}

def LowBitAllocateBits : Pass<"lowbit-allocate-bits", "::mlir::ModuleOp"> {
  let summary = "Choose one format per weight to meet a file-size budget";
  let description = [{
    Picks, for every weight with a `lowbit.sensitivity` attribute, the
    format that minimises the total predicted damage while the GGUF file the
    module exports to stays within the budget: `target-bpw` (bits per weight
    of the whole file, file bytes * 8 / all elements, as llama.cpp reports)
    or `target-size` (bytes; 3.2GiB, 3200MB). The file size is computed
    exactly: header, metadata and tensor infos as the exporter lays them out,
    each tensor padded to the alignment, plus `reserve-bytes` for metadata
    later passes add. Multiple-choice knapsack: exact dynamic programming
    when small, else Lagrangian relaxation plus greedy fill. `tensor-type`
    pins (REGEX=FORMAT) are honoured and left out of the search.
    The choice is recorded as
    `lowbit.target` like lowbit-assign-formats; lowbit-quantize applies it.

    Before:
    ```mlir
    lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<...>
        {lowbit.sensitivity = {q4_k = 2.1e-02 : f64, q6_k = 1.4e-03 : f64}}
    ```
    After `--lowbit-allocate-bits="target-bpw=4.5"`:
    ```mlir
    lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<...>
        {lowbit.target = #lowbit.format<q4_k>}
    ```
  }];
  let dependentDialects = ["::mlir::lowbit::LowBitDialect"];
  let options = [
    Option<"targetBpw", "target-bpw", "double", "0.0",
           "Bits per weight of the whole file">,
    Option<"targetSize", "target-size", "std::string", "\"\"",
           "File size budget (bytes, or 3.2GiB, 3200MB, ...)">,
    ListOption<"tensorTypes", "tensor-type", "std::string",
               "REGEX=FORMAT pins, first match wins; left out of the search">,
    Option<"reserveBytes", "reserve-bytes", "int64_t", "0",
           "Metadata bytes later passes will add to the file">,
    Option<"method", "method", "std::string", "\"auto\"",
           "auto, exact or lagrangian">
  ];
}

def LowBitAWQScale : Pass<"lowbit-awq-scale", "::mlir::ModuleOp"> {
  let summary = "Scale weight input channels by activation (AWQ), folded exactly";
  let description = [{
    For every group of weights that read one input, searches AWQ's per-input
    channel scales s = a^alpha (a = RMS activation per channel from the
    calibration state's importance matrix; alpha on a grid in [0, 1])
    minimising the Hessian-weighted output error of quantizing the group to
    its `lowbit.target` formats (lowbit/Quant/AWQ.h). The columns of the
    group's weights are multiplied by s and the producer of the input is
    divided by s, so the float model computes the same function:

    - `rms_norm` -> matmuls (q/k/v, gate/up, output): the norm weight;
    - `attention` -> matmul (attn_output): the rows of the value projection,
      with s tied across the query heads that share a KV head;
    - `mul(act(gate), up)` -> matmul (ffn_down): the rows of `up`.

    Groups are found in the IR, so any architecture built from these ops is
    handled; a group is skipped when a weight has other users (tied
    embeddings) or none of its weights has a quantized target. Weights must
    be f32/f16/bf16; rewritten data goes to new resource blobs (consumers
    with a target as f32, everything else in its own format). Each scaled
    weight records `lowbit.awq_scaled` (its scales, which lowbit-quantize
    uses to rescale importance and Hessians) and `lowbit.awq_alpha`.

    Before:
    ```mlir
    lowbit.global_weight @blk.0.attn_norm.weight : !lowbit.qtensor<256 : f32> = #lowbit.external<...>
    lowbit.global_weight @blk.0.attn_q.weight : !lowbit.qtensor<256x256 : f32> = #lowbit.external<...>
        {lowbit.target = #lowbit.format<q4_k>}
    ```
    After `--lowbit-awq-scale="state=calib.gguf"`:
    ```mlir
    lowbit.global_weight @blk.0.attn_norm.weight : !lowbit.qtensor<256 : f32> = dense_resource<...>
    lowbit.global_weight @blk.0.attn_q.weight : !lowbit.qtensor<256x256 : f32> = dense_resource<...>
        {lowbit.awq_alpha = 0.36 : f32, lowbit.awq_scaled = dense_resource<...> : tensor<256xf32>,
         lowbit.target = #lowbit.format<q4_k>}
    ```
  }];
  let options = [
    Option<"state", "state", "std::string", "\"\"",
           "Calibration state with importance matrix and Hessians">,
    Option<"grid", "grid", "int", "20",
           "Points of the alpha grid in [0, 1]">,
    Option<"maxSearchRows", "max-search-rows", "int64_t", "0",
           "Rows of each weight the search quantizes (0 = all)">,
    Option<"threads", "threads", "int", "0",
           "Threads (0 = all cores)">
  ];
}

#endif // LOWBIT_TRANSFORMS_PASSES_TD
