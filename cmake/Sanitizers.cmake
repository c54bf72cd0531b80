# Hostile-input builds (tools/sanitize, tools/fuzz), both off by default:
#   SSCL_SANITIZE=ON  AddressSanitizer + UndefinedBehaviorSanitizer on our code
#                     (LibTorch, OpenCV and the other Debian libraries are prebuilt
#                     and stay uninstrumented); any UB report aborts the test.
#   SSCL_FUZZ=ON      also the libFuzzer executables of tests/fuzz (clang only),
#                     the code they exercise with coverage for their feedback.
# The sanitizers go through add_compile_options so that they reach every target
# below, the precompiled header included (a PCH must be built with the same flags).
option(SSCL_SANITIZE "Instrument our code with AddressSanitizer and UBSan" OFF)
option(SSCL_FUZZ "Build the libFuzzer targets of tests/fuzz (clang; implies SSCL_SANITIZE)" OFF)

if(SSCL_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SSCL_FUZZ needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}; "
                        "configure with -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  set(SSCL_SANITIZE ON CACHE BOOL "" FORCE)
  # The coverage flags go on single files (tests/fuzz), which a unity batch would merge.
  set(SSCL_UNITY_BUILD OFF CACHE BOOL "" FORCE)
  # What -fsanitize=fuzzer-no-link adds (edge counters, comparison tracing), for
  # tests/fuzz to put on the files the fuzzers exercise only: on every file it made
  # the build about a third slower.
  set(SSCL_FUZZ_COVERAGE_FLAGS -fsanitize-coverage=inline-8bit-counters,indirect-calls,trace-cmp,pc-table)
endif()

if(SSCL_SANITIZE)
  # Frame pointers give ASan complete stacks; a UB report is fatal so that a
  # test cannot pass with one.
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # The runtime options and leak suppressions, built into every executable.
  add_library(sscl_sanitizer_defaults OBJECT ${PROJECT_SOURCE_DIR}/cmake/sanitizer_defaults.cpp)
  find_program(SSCL_LLVM_SYMBOLIZER NAMES llvm-symbolizer-14 llvm-symbolizer)
  if(SSCL_LLVM_SYMBOLIZER)
    target_compile_definitions(sscl_sanitizer_defaults PRIVATE SSCL_LLVM_SYMBOLIZER="${SSCL_LLVM_SYMBOLIZER}")
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # lld links the ~20 executables (each with every object file) several times faster than ld.bfd.
    find_program(SSCL_LLD NAMES ld.lld-14 ld.lld)
    if(SSCL_LLD)
      add_link_options(-fuse-ld=lld)
    endif()
  endif()
endif()
