# Cross-compiling toolchain for arm64 (aarch64: the Jetson Orin's CPU) with
# Debian's cross compiler (g++-aarch64-linux-gnu) against an arm64 Debian 12
# sysroot that holds the project's -dev packages (tools/cross-arm64 builds one).
#   cmake -S . -B build/arm64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DSSCL_ARM64_SYSROOT=/work/arm64-sysroot
# The sysroot comes from -DSSCL_ARM64_SYSROOT, else $SSCL_ARM64_SYSROOT, else
# /work/arm64-sysroot. Test programs run under qemu-aarch64 -L SYSROOT.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

if(NOT SSCL_ARM64_SYSROOT)
  if(DEFINED ENV{SSCL_ARM64_SYSROOT})
    set(SSCL_ARM64_SYSROOT "$ENV{SSCL_ARM64_SYSROOT}")
  else()
    set(SSCL_ARM64_SYSROOT /work/arm64-sysroot)
  endif()
endif()
if(NOT EXISTS "${SSCL_ARM64_SYSROOT}/usr/include/aarch64-linux-gnu")
  message(FATAL_ERROR "SSCL_ARM64_SYSROOT=${SSCL_ARM64_SYSROOT} is not an arm64 Debian sysroot "
                      "(no usr/include/aarch64-linux-gnu): run tools/cross-arm64 sysroot")
endif()
# try_compile projects re-read this file: hand them the sysroot.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SSCL_ARM64_SYSROOT)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_SYSROOT "${SSCL_ARM64_SYSROOT}")

# Libraries, headers and CMake packages from the sysroot only; programs
# (protoc, git) from the host.
set(CMAKE_FIND_ROOT_PATH "${SSCL_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# gtest_discover_tests and add_test run the programs through this.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L "${SSCL_ARM64_SYSROOT}")
