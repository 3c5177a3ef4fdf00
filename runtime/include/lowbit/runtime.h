/*===- runtime.h - The lowbit native runtime: C API -----------------------===*
 *
 * Runs a native artifact written by `lowbit compile --emit native`: a
 * directory with model.so (the generated matmul kernels), weights.bin (packed
 * weights, mmap'ed) and manifest.json (hyperparameters, tensors, kernels;
 * tokenizer metadata in metadata.gguf beside it, which this library does not
 * read). No LLVM/MLIR dependency.
 *
 *   lb_model_t *model;
 *   lb_status_t st;
 *   if (lb_model_load("out/", &model, &st) != LB_OK) { puts(st.message); ... }
 *   lb_context_params_t p = lb_context_default_params();
 *   p.n_threads = 4;
 *   lb_context_t *ctx;
 *   lb_context_create(model, &p, &ctx, &st);
 *   lb_eval(ctx, tokens, n, 0, n - 1, &st);     // logits of the last token
 *   const float *logits = lb_get_logits(ctx, NULL);
 *   lb_context_free(ctx);
 *   lb_model_free(model);
 *
 * Every function that can fail returns a status code and, when `status` is
 * not NULL, fills it with the code and a message naming the file and what is
 * wrong. Nothing here aborts on bad input.
 *
 *===----------------------------------------------------------------------===*/
#ifndef LOWBIT_RUNTIME_H
#define LOWBIT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "lowbit/Target/KernelABI.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_status_code {
  LB_OK = 0,
  LB_ERROR_INVALID_ARGUMENT = 1, /* a NULL handle, a negative count, ... */
  LB_ERROR_IO = 2,               /* a file is missing or unreadable */
  LB_ERROR_BAD_ARTIFACT = 3,     /* malformed or inconsistent artifact */
  LB_ERROR_ABI_MISMATCH = 4,     /* built for another kernel ABI version */
  LB_ERROR_UNSUPPORTED = 5,      /* an architecture or format not handled */
  LB_ERROR_OUT_OF_MEMORY = 6,
  LB_ERROR_CONTEXT_FULL = 7, /* pos + n_tokens exceeds the context */
} lb_status_code_t;

typedef struct lb_status {
  lb_status_code_t code;
  char message[512];
} lb_status_t;

/* "ok", "invalid argument", ... */
const char *lb_status_code_name(lb_status_code_t code);

typedef struct lb_model lb_model_t;
typedef struct lb_context lb_context_t;

/*--- Logging ---------------------------------------------------------------*/

typedef enum lb_log_level {
  LB_LOG_INFO = 0,
  LB_LOG_WARNING = 1, /* e.g. a tensor runs on the slow fall-back path */
} lb_log_level_t;
typedef void (*lb_log_fn)(lb_log_level_t level, const char *message,
                          void *user);
/* Where log lines go; NULL restores the default (stderr, prefixed
 * "lowbit-runtime: "). Process-wide. */
void lb_log_set(lb_log_fn fn, void *user);

/*--- Kernels linked into the program (static builds) -----------------------*/

/* Static executables cannot dlopen model.so: they link the artifact's kernel
 * object and pass its lb_kernel_table (KernelABI.h; ended by a NULL name)
 * here before lb_model_load, which then resolves kernels from that table
 * instead of opening model.so. The table must stay valid; NULL goes back to
 * dlopen. Process-wide. */
void lb_set_kernel_table(const lb_kernel_entry *table);

/*--- Models ----------------------------------------------------------------*/

/* Loads the artifact in `dir`. Checks the manifest against the kernel ABI
 * version, the sizes of the code file and weights.bin (before loading or
 * mapping them) and every tensor's bounds; resolves each tensor's kernel.
 * A tensor without a kernel runs on a decode-to-f32 fall-back, logged once
 * per tensor as a warning and counted in lb_model_info_t /
 * lb_model_fallback_report.
 *
 * An artifact is machine code: load only artifacts you trust as you would
 * an executable. The checks catch damage (truncation, a flipped byte with
 * `verify`), not malice, and a file truncated while it is mapped can still
 * fault. */
lb_status_code_t lb_model_load(const char *dir, lb_model_t **model,
                               lb_status_t *status);

typedef struct lb_model_params {
  /* Also compare the SHA-256 of the code file and weights.bin with the
   * manifest's before using them (reads every byte: about 0.7 s per GiB
   * with the x86 SHA extensions, about 4 s per GiB without). */
  int32_t verify;
} lb_model_params_t;
lb_model_params_t lb_model_default_params(void);
/* lb_model_load with parameters; `params` may be NULL (defaults). */
lb_status_code_t lb_model_load_with_params(const char *dir,
                                           const lb_model_params_t *params,
                                           lb_model_t **model,
                                           lb_status_t *status);
/* Frees a model; its contexts must be freed first. NULL is ignored. */
void lb_model_free(lb_model_t *model);

typedef struct lb_model_info {
  const char *name;         /* general.name, may be "" */
  const char *architecture; /* "llama" */
  const char *target;       /* "x86-64-v3", ... */
  int64_t n_vocab;
  int64_t n_ctx_train;
  int64_t n_embd;
  int64_t n_layer;
  int64_t n_head;
  int64_t n_head_kv;
  int64_t n_ff;
  int64_t n_params;      /* weights of every tensor */
  uint64_t weight_bytes; /* bytes of every tensor */
  int32_t n_tensors;
  int32_t n_kernel_tensors;   /* matmul weights with a generated kernel */
  int32_t n_fallback_tensors; /* matmul weights on the f32 fall-back */
} lb_model_info_t;
void lb_model_get_info(const lb_model_t *model, lb_model_info_t *info);

/* One line per matmul weight: name, format, layout, kernel or "FALLBACK"
 * and why. Owned by the model. */
const char *lb_model_kernel_report(const lb_model_t *model);

/*--- Contexts --------------------------------------------------------------*/

typedef struct lb_context_params {
  int32_t n_threads; /* worker threads including the caller; <= 0: all */
  int32_t n_ctx;     /* KV cache positions; <= 0: the training context */
  int32_t n_batch;   /* most tokens per forward pass; <= 0: 512 */
} lb_context_params_t;
lb_context_params_t lb_context_default_params(void);

/* A context owns a thread pool, the KV cache of one sequence and the
 * activation buffers. `params` may be NULL (defaults). The model must
 * outlive the context. */
lb_status_code_t lb_context_create(lb_model_t *model,
                                   const lb_context_params_t *params,
                                   lb_context_t **ctx, lb_status_t *status);
void lb_context_free(lb_context_t *ctx);
int32_t lb_context_n_ctx(const lb_context_t *ctx);
int32_t lb_context_n_threads(const lb_context_t *ctx);

/* Evaluates `n_tokens` tokens at positions [pos, pos + n_tokens). The cache
 * must hold positions [0, pos) of the same sequence (pos = 0 starts a new
 * one; entries at >= pos are overwritten). Logits are computed for rows
 * [first_output, n_tokens): first_output = n_tokens - 1 gives the last
 * token's only, n_tokens none. */
lb_status_code_t lb_eval(lb_context_t *ctx, const int32_t *tokens,
                         int32_t n_tokens, int32_t pos, int32_t first_output,
                         lb_status_t *status);

/* Logits of the last lb_eval: (n_tokens - first_output) rows of n_vocab
 * floats, row-major; `n_rows` (may be NULL) receives the row count. Valid
 * until the next lb_eval or lb_context_free. */
const float *lb_get_logits(const lb_context_t *ctx, int32_t *n_rows);

#ifdef __cplusplus
}
#endif

#endif /* LOWBIT_RUNTIME_H */
