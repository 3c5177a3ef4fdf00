/* lowbit-rt for static executables: the artifact's kernel object and its
 * symbol table (model_symbols.c, written by lowbit compile) are linked in. */
#include "lowbit/runtime.h"

extern const lb_symbol_t lb_artifact_symbols[];
extern const size_t lb_artifact_symbol_count;
int lb_rt_main(int argc, char **argv);

int main(int argc, char **argv) {
  lb_set_static_symbols(lb_artifact_symbols, lb_artifact_symbol_count);
  return lb_rt_main(argc, argv);
}
