/*===- kernel_harness.c - Runs generated kernels linked in statically ------===*
 *
 * For targets the test machine cannot dlopen (aarch64 under qemu-aarch64):
 * CodegenTest emits the kernels as an object file, links it with this file
 * (aarch64-linux-gnu-gcc -static) and runs the result. Kernels are found
 * through lb_kernel_table (KernelABI.h).
 *
 * Input file, little-endian, per job until EOF:
 *   u32 kernelNameLen, name; u32 quantizerNameLen, name (may be empty);
 *   i64 rows, cols, tokens, xStride, yStride, actRowBytes, numRanges;
 *   numRanges x (i64 begin, i64 end); i64 weightBytes, weight bytes;
 *   tokens * xStride f32 activations.
 * Output file, per job: tokens * actRowBytes quantized activations, then
 * tokens * yStride f32 results.
 *
 *===----------------------------------------------------------------------===*/
#include "lowbit/Target/KernelABI.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const lb_kernel_entry lb_kernel_table[];

static void (*lookup(const char *name))(void) {
  for (const lb_kernel_entry *e = lb_kernel_table; e->name; ++e)
    if (strcmp(e->name, name) == 0)
      return e->fn;
  return NULL;
}

static int readAll(FILE *f, void *p, size_t n) {
  return fread(p, 1, n, f) == n;
}

static char *readName(FILE *f, int *ok) {
  unsigned len;
  *ok = readAll(f, &len, 4);
  if (!*ok)
    return NULL;
  char *s = calloc(len + 1, 1);
  *ok = readAll(f, s, len);
  return s;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: kernel_harness IN OUT\n");
    return 2;
  }
  FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
  if (!in || !out) {
    perror("kernel_harness");
    return 2;
  }
  lb_abi_version_fn version = (lb_abi_version_fn)lookup(LB_ABI_VERSION_SYMBOL);
  if (!version || version() != LB_KERNEL_ABI_VERSION) {
    fprintf(stderr, "kernel_harness: ABI version mismatch\n");
    return 3;
  }
  for (;;) {
    int ok;
    char *kernelName = readName(in, &ok);
    if (!ok)
      break;
    char *quantName = readName(in, &ok);
    long long h[7];
    ok = ok && readAll(in, h, sizeof(h));
    long long tokens = h[2], xStride = h[3], yStride = h[4], actRow = h[5],
              numRanges = h[6];
    long long *ranges = malloc(sizeof(long long) * 2 * (numRanges + 1));
    long long wBytes = 0;
    ok = ok && readAll(in, ranges, sizeof(long long) * 2 * numRanges) &&
         readAll(in, &wBytes, 8);
    unsigned char *w = malloc(wBytes + 64);
    float *x = malloc(sizeof(float) * (tokens * xStride + 1));
    ok = ok && readAll(in, w, wBytes) &&
         readAll(in, x, sizeof(float) * tokens * xStride);
    if (!ok) {
      fprintf(stderr, "kernel_harness: truncated input\n");
      return 2;
    }
    lb_matmul_kernel_fn kernel = (lb_matmul_kernel_fn)lookup(kernelName);
    lb_quantize_act_fn quant =
        quantName[0] ? (lb_quantize_act_fn)lookup(quantName) : NULL;
    if (!kernel || (quantName[0] && !quant)) {
      fprintf(stderr, "kernel_harness: %s or %s not in lb_kernel_table\n",
              kernelName, quantName);
      return 3;
    }
    unsigned char *xq = calloc(tokens * actRow + 1, 1);
    float *y = calloc(tokens * yStride + 1, sizeof(float));
    if (quant)
      quant(x, xq, tokens, h[1], xStride);
    for (long long r = 0; r < numRanges; ++r)
      kernel(w, x, quant ? xq : NULL, y, tokens, xStride, yStride,
             ranges[2 * r], ranges[2 * r + 1]);
    fwrite(xq, 1, tokens * actRow, out);
    fwrite(y, sizeof(float), tokens * yStride, out);
    free(kernelName), free(quantName), free(ranges), free(w), free(x);
    free(xq), free(y);
  }
  fclose(out);
  return 0;
}
