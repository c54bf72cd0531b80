#!/usr/bin/env bash
# Shared set-up of tools/train, tools/test, tools/sanitize and tools/fuzz:
# installs the Debian packages that are missing (quiet when all are present), then
# configures and builds if the build is missing or stale. Sourced, not run: it
# defines sscl_setup.
set -euo pipefail

SSCL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Build tools, libraries, jq (tools/compare) and the Fashion-MNIST data; OpenBLAS so that LibTorch's
# BLAS calls do not go to the reference BLAS (about 3x slower on our shapes).
SSCL_PACKAGES=(
  cmake ninja-build g++ git pkg-config
  libtorch-dev libopenblas0-pthread
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libtomlplusplus-dev libtbb-dev libspdlog-dev nlohmann-json3-dev libcli11-dev zlib1g-dev
  libgloo-dev libonnx-dev libprotobuf-dev protobuf-compiler libopencv-dnn-dev
  libgtest-dev libgmock-dev jq
  dataset-fashion-mnist
)

# Only tools/sanitize and tools/fuzz add these (to SSCL_PACKAGES): clang with
# its sanitizer and libFuzzer runtimes (libclang-rt-14-dev is only a recommendation
# of clang-14), lld, and llvm-symbolizer (in llvm-14) for the reports' stacks.
SSCL_SANITIZER_PACKAGES=(clang-14 libclang-rt-14-dev lld-14 llvm-14)

# Only the tests add these (tools/test, tools/sanitize): Debian's PyTorch, with
# which tests/tools/export_end_to_end_test.cpp loads an exported model in Python.
SSCL_TEST_PACKAGES=(python3-torch)

# Extra `cmake -S -B` arguments of a fresh configure (the sanitized build's).
SSCL_CONFIGURE_ARGS=()

sscl_install_packages() {
  local missing=()
  for pkg in "${SSCL_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "[setup] installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "[setup] error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# sscl_setup BUILD_DIR BUILD_TYPE [ninja targets...] (none: everything)
# The cores this process may use, for how many processes or build jobs to start:
# nproc without the OpenMP variables, which it would otherwise obey (they set one
# process's threads; tools/test's shards set OMP_NUM_THREADS=1).
sscl_cores() { env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc; }

sscl_setup() {
  local build_dir="$1" build_type="$2"
  shift 2
  sscl_install_packages
  if [ ! -f "$build_dir/build.ninja" ]; then
    echo "[setup] configuring $build_dir ($build_type)" >&2
    cmake -S "$SSCL_ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "${SSCL_CONFIGURE_ARGS[@]}" >&2
  fi
  # Ninja rebuilds only what changed; it is quiet when the build is up to date.
  local jobs
  jobs="$(sscl_cores)"
  local targets=()
  [ $# -gt 0 ] && targets=(--target "$@")
  cmake --build "$build_dir" -j "$jobs" "${targets[@]}" -- --quiet >&2 \
    || { echo "[setup] error: build failed" >&2; exit 1; }
}
