// Runtime options of the sanitized build (SSCL_SANITIZE, cmake/Sanitizers.cmake),
// linked into every executable: the tests, the sscl_train they spawn and the
// fuzzers all run with them, with no environment to set. ASAN_OPTIONS,
// UBSAN_OPTIONS and LSAN_OPTIONS still override them.

#ifndef SSCL_LLVM_SYMBOLIZER
#define SSCL_LLVM_SYMBOLIZER ""
#endif

extern "C" {

// allocator_may_return_null: an allocation that cannot be had fails as it does
// without ASan (LibTorch then throws c10::Error), so that the tests see the
// program's own handling of absurd sizes rather than an ASan abort.
// check_initialization_order, strict_init_order: globals of our files must not be
// read before they are constructed, whatever the link order.
const char* __asan_default_options() {
  return "allocator_may_return_null=1:check_initialization_order=1:strict_init_order=1:"
         "external_symbolizer_path=" SSCL_LLVM_SYMBOLIZER;
}

// -fno-sanitize-recover already makes UB fatal; the stack says where it came from.
const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1:external_symbolizer_path=" SSCL_LLVM_SYMBOLIZER;
}

// Leaks that are not ours, one `leak:PATTERN` line each. None so far: the whole
// suite and the fuzzers exit leak-free with Debian 12's LibTorch 1.13, OpenCV 4.6
// and oneTBB. Match a library (`leak:libtorch_cpu.so`) or one of its functions,
// never one of ours, so that a leak in our code is still reported.
const char* __lsan_default_suppressions() { return ""; }

}  // extern "C"
