# Cross-compiling for 64-bit ARM Linux (Raspberry Pi 4, Cortex-A72) with Debian's
# g++-aarch64-linux-gnu. Use: cmake -DCMAKE_TOOLCHAIN_FILE=<this file> ...
# Binaries run on the Pi, or here under qemu-user (qemu-aarch64 -L /usr/aarch64-linux-gnu).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Tune for the Pi 4's core; plain ARMv8-A NEON (no dot-product instructions on the A72).
set(CMAKE_CXX_FLAGS_INIT "-mcpu=cortex-a72")
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-a72")
