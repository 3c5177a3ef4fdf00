/* lowbit-rt with kernels loaded from the artifact's model.so. */
int lb_rt_main(int argc, char **argv);
int main(int argc, char **argv) { return lb_rt_main(argc, argv); }
