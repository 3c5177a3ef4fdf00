/* lowbit-rt for static executables: the artifact's kernel object (model.o)
 * is linked in and found through its lb_kernel_table. Weak, so that the
 * runner also links without one (every matmul then runs on the runtime's
 * fall-back). */
#include "lowbit/runtime.h"

extern const lb_kernel_entry lb_kernel_table[] __attribute__((weak));
int lb_rt_main(int argc, char **argv);

int main(int argc, char **argv) {
  lb_set_kernel_table(lb_kernel_table);
  return lb_rt_main(argc, argv);
}
