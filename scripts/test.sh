#!/usr/bin/env bash
# scripts/test.sh - installs what is missing, builds attn and runs the whole test suite.
#
# For a fresh Debian or Ubuntu machine (run as root, or with sudo available). Idempotent.
#   1. installs the missing packages listed in scripts/common.sh (apt-get update only if needed);
#   2. checks the formatting of every .c/.h/.cu/.cuh file with clang-format (when present);
#   3. builds with ATTN_CUDA from the environment (AUTO by default; build/, or build-nocuda/ for
#      OFF) and runs ctest; GPU suites skip (exit 77) when no device is usable;
#   4. builds the CPU-only Debug configuration with address and undefined-behaviour sanitizers
#      in build-asan/ and runs ctest there; any sanitizer report fails the run;
#   5. builds the CPU-only configuration with clang in build-clang/ (Release, warnings as errors,
#      LLVM's OpenMP runtime, clang's undefined-behaviour sanitizer, which checks more than gcc's)
#      and runs ctest there; any sanitizer report fails the run (skipped without clang);
#   6. builds the CUDA backend for the CPU emulator of CUDA in build-emu/ and runs the GPU suites
#      on it against the reference, and bench/gpu_bench with every flash plan forced
#      (tests/emu/run.sh; x86-64 only; about 10 minutes on 2 cores): the only place the kernels
#      of cuda/ execute on a machine without a GPU.
# Exits non-zero when any step fails and ends with a short summary.
#
# Environment: ATTN_CUDA=AUTO|ON|OFF (default AUTO), ATTN_JOBS (default: all cores), ATTN_EMU=0
# to leave out step 6.
# Steps are functions run through run_step and the summary through a trap, so shellcheck cannot
# see them being called.
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ATTN_ROOT"

STEP_NAMES=()
STEP_RESULTS=()
FAILED=0
START_TIME=$SECONDS

print_summary() {
  local rc=$? i
  printf '\n==> summary (%ss)\n' "$((SECONDS - START_TIME))"
  for i in "${!STEP_NAMES[@]}"; do
    printf '  %-6s %s\n' "${STEP_RESULTS[$i]}" "${STEP_NAMES[$i]}"
  done
  if ((FAILED || rc != 0)); then
    echo "scripts/test.sh: FAILED"
  else
    echo "scripts/test.sh: all steps passed"
  fi
}
trap print_summary EXIT

# Runs one step, records PASS or FAIL with its duration; a failure does not stop later steps.
# Steps are functions that return non-zero on failure (set -e does not apply inside them here).
run_step() {
  local name="$1" t0=$SECONDS
  shift
  attn_step "$name"
  if "$@"; then
    STEP_RESULTS+=("PASS")
  else
    STEP_RESULTS+=("FAIL")
    FAILED=1
  fi
  STEP_NAMES+=("$name ($((SECONDS - t0))s)")
}

skip_step() {
  STEP_NAMES+=("$1")
  STEP_RESULTS+=("SKIP")
}

# The C, CUDA and header files under version control (or all outside build folders).
source_files() {
  if git -C "$ATTN_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$ATTN_ROOT" ls-files --cached --others --exclude-standard -- \
      '*.c' '*.h' '*.cu' '*.cuh' | while IFS= read -r f; do
      if [[ -f "$f" ]]; then printf '%s\n' "$f"; fi
    done
  else
    find . -path './build*' -prune -o -type f \
      \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print
  fi
}

check_format() {
  local files=()
  mapfile -t files < <(source_files)
  echo "$(clang-format --version): ${#files[@]} files"
  if ((${#files[@]} == 0)); then
    return 0
  fi
  if ! clang-format --dry-run --Werror "${files[@]}"; then
    echo "unformatted files above: run clang-format -i on them" >&2
    return 1
  fi
}

# The clang build, which must have found LLVM's OpenMP runtime: without it the CPU backend runs
# one thread and the runtime's behaviour this build is for goes unchecked. No AddressSanitizer
# here: it owns malloc, so test_cpu_backend could not count allocations (and LeakSanitizer
# reports the blocks libomp keeps at exit).
build_clang() {
  attn_build OFF "$1" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
    -DATTN_SANITIZE=undefined || return
  if ! grep -q 'attn: CPU backend threads: OpenMP' "$1/attn-configure.log"; then
    echo "clang found no OpenMP runtime (install libomp-dev)" >&2
    return 1
  fi
}

# A hung test fails after 15 minutes instead of CTest's default 25.
run_ctest() {
  ctest --test-dir "$1" --output-on-failure --no-tests=error --timeout 900 -j "$ATTN_JOBS"
}

# Sanitizer reports end the process with a distinct exit status (never abort, which would leave
# core files and confuse Check's fork mode); leaks count as reports.
run_ctest_sanitized() {
  ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:exitcode=86:abort_on_error=0" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87" \
    run_ctest "$1"
}

CUDA_SETTING="$(attn_cuda_setting)"
MAIN_DIR="$(attn_build_dir "$CUDA_SETTING")"
ASAN_DIR="$ATTN_ROOT/build-asan"

run_step "install missing packages" attn_install_missing

if command -v clang-format >/dev/null 2>&1; then
  run_step "clang-format check" check_format
else
  skip_step "clang-format check (clang-format not found)"
fi

run_step "build ATTN_CUDA=$CUDA_SETTING (${MAIN_DIR##*/}/)" \
  attn_build "$CUDA_SETTING" "$MAIN_DIR" -DCMAKE_BUILD_TYPE=Release
if [[ "${STEP_RESULTS[-1]}" == PASS ]]; then
  run_step "ctest ${MAIN_DIR##*/}/" run_ctest "$MAIN_DIR"
else
  skip_step "ctest ${MAIN_DIR##*/}/ (build failed)"
fi

run_step "build ATTN_CUDA=OFF ATTN_SANITIZE=address,undefined Debug (build-asan/)" \
  attn_build OFF "$ASAN_DIR" -DCMAKE_BUILD_TYPE=Debug -DATTN_SANITIZE=address,undefined
if [[ "${STEP_RESULTS[-1]}" == PASS ]]; then
  run_step "ctest build-asan/ (sanitizer reports fatal)" run_ctest_sanitized "$ASAN_DIR"
else
  skip_step "ctest build-asan/ (build failed)"
fi

# gcc builds everything above; clang (and with it LLVM's OpenMP runtime, whose behaviour differs
# from libgomp's) gets a CPU-only build of its own.
CLANG_DIR="$ATTN_ROOT/build-clang"
if command -v clang >/dev/null 2>&1; then
  run_step "build ATTN_CUDA=OFF with clang, OpenMP and ATTN_SANITIZE=undefined (build-clang/)" \
    build_clang "$CLANG_DIR"
  if [[ "${STEP_RESULTS[-1]}" == PASS ]]; then
    run_step "ctest build-clang/ (sanitizer reports fatal)" run_ctest_sanitized "$CLANG_DIR"
  else
    skip_step "ctest build-clang/ (build failed)"
  fi
else
  skip_step "clang build (clang not found)"
fi

if [[ "${ATTN_EMU:-1}" == 0 ]]; then
  skip_step "GPU suites on the CPU emulator of CUDA (ATTN_EMU=0)"
elif [[ "$(uname -sm)" != "Linux x86_64" ]]; then
  skip_step "GPU suites on the CPU emulator of CUDA (needs x86-64 Linux)"
else
  run_step "GPU suites on the CPU emulator of CUDA (build-emu/)" tests/emu/run.sh
fi

exit "$FAILED"
