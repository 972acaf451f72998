# scripts/common.sh - shared by scripts/test.sh and scripts/demo.sh (sourced, not run).
# shellcheck shell=bash
#
# The Debian/Ubuntu packages attn needs, installing whichever are missing, and the build folders:
#   build/         ATTN_CUDA=AUTO or ON (the default configuration)
#   build-nocuda/  ATTN_CUDA=OFF
#   build-asan/    CPU-only Debug build with address and undefined-behaviour sanitizers (test.sh)
#   build-clang/   CPU-only build with clang and its undefined-behaviour sanitizer (test.sh)
#   build-emu/     the CUDA backend built for the CPU emulator of CUDA (tests/emu, test.sh)
# The CUDA toolkit itself is not installed here: with ATTN_CUDA=AUTO the CUDA backend is built
# when nvcc is found (/usr/local/cuda/bin/nvcc or $CUDACXX) and left out otherwise.

# Every package the build, the tests and the scripts need; each name checked with apt-cache.
#   cmake gcc make pkg-config  the build
#   g++                        the CPU emulator of CUDA (tests/emu) that runs the GPU suites
#   check libsubunit-dev       Check test suites (check.pc links -lsubunit)
#   libopenblas-dev            BLAS for the CPU backend
#   python3-numpy              .npy test data and the numpy comparison
#   libcairo2-dev              heatmap images of the command-line tool
#   clang                      the fuzzer (libFuzzer comes with its recommended packages,
#                              which is why apt-get installs recommends here) and test.sh's
#                              clang build
#   libomp-dev                 LLVM's OpenMP runtime, for the clang build's threads (clang
#                              neither depends on it nor recommends it)
#   clang-format               the formatting check in test.sh
ATTN_PACKAGES=(cmake gcc g++ make pkg-config check libsubunit-dev libopenblas-dev python3-numpy
  libcairo2-dev clang libomp-dev clang-format)

ATTN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ATTN_JOBS="${ATTN_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# Prints a step banner.
attn_step() {
  printf '\n==> %s\n' "$*"
}

# Installs the packages of ATTN_PACKAGES that are not installed yet. Runs apt-get update only
# when something is missing. Needs root (or sudo) only in that case.
attn_install_missing() {
  local missing=() pkg
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "dpkg-query not found: not a Debian/Ubuntu system; install by hand: ${ATTN_PACKAGES[*]}" >&2
    return 0
  fi
  for pkg in "${ATTN_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    echo "all packages present: ${ATTN_PACKAGES[*]}"
    return 0
  fi
  echo "installing missing packages: ${missing[*]}"
  local sudo=()
  if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "not root and no sudo: install these packages first: ${missing[*]}" >&2
      return 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null || return
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" </dev/null
}

# The build folder for the ATTN_CUDA value in $1 (AUTO, ON or OFF).
attn_build_dir() {
  case "$1" in
    OFF) echo "$ATTN_ROOT/build-nocuda" ;;
    *) echo "$ATTN_ROOT/build" ;;
  esac
}

# Configures and builds: attn_build <ATTN_CUDA> <build dir> [extra cmake args...]. Returns
# non-zero at the first failing command (callers may run it where set -e is ignored).
attn_build() {
  local cuda="$1" dir="$2"
  shift 2
  mkdir -p "$dir" || return
  cmake -S "$ATTN_ROOT" -B "$dir" -DATTN_CUDA="$cuda" "$@" | tee "$dir/attn-configure.log" || return
  cmake --build "$dir" -j "$ATTN_JOBS" || return
  # The top CMakeLists.txt says whether the CUDA backend is in this build.
  if grep -q 'attn: CUDA backend ON' "$dir/attn-configure.log"; then
    echo "built ${dir##*/}/ with the CUDA backend"
  else
    echo "built ${dir##*/}/ without the CUDA backend"
  fi
}

# Normalises ATTN_CUDA from the environment (default AUTO) and rejects anything else.
attn_cuda_setting() {
  local value="${ATTN_CUDA:-AUTO}"
  value="${value^^}"
  case "$value" in
    AUTO | ON | OFF) echo "$value" ;;
    *)
      echo "ATTN_CUDA must be AUTO, ON or OFF, not '$ATTN_CUDA'" >&2
      return 1
      ;;
  esac
}
