# Cross build of the runtime for AArch64 Linux with Debian's
# g++-aarch64-linux-gnu; binaries are static so that qemu-aarch64 runs them
# without an AArch64 sysroot.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# The generated kernels use dot-product instructions (sdot).
set(CMAKE_C_FLAGS_INIT "-march=armv8.2-a+dotprod")
set(CMAKE_CXX_FLAGS_INIT "-march=armv8.2-a+dotprod")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
