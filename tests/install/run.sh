#!/usr/bin/env bash
# tests/install/run.sh - installs a build of attn into a scratch prefix and builds the README's
# example (samples/readme_example.c) against it as a program outside the tree would:
#   - with pkg-config: `pkg-config --cflags --libs attn` (the shared library) and
#     `pkg-config --static ...` (the static one, with the libraries attn was built with);
#   - with CMake: find_package(attn CONFIG) and the targets attn::attn and attn::attn_static
#     (tests/install/consumer/), from a C project and from a C++-only one (C++20, where c++ is
#     found), which cannot look for OpenMP's C flavour.
# Each program must run and print the walkthrough's weights and context. The
# installed tree is moved before the pkg-config builds, which must not care (attn.pc's paths are
# relative to it). CTest runs it as `install_package`.
#
# Usage: tests/install/run.sh BUILD_DIR C_COMPILER [CMAKE [PKG_CONFIG]]
set -euo pipefail

build=$(cd "$1" && pwd)
cc=$2
cmake=${3:-cmake}
pkgconfig=${4:-pkg-config}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
example=$root/samples/readme_example.c

scratch=$(mktemp -d "${TMPDIR:-/tmp}/attn-install.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

"$cmake" --install "$build" --prefix "$scratch/prefix" > "$scratch/install.log"
mv "$scratch/prefix" "$scratch/moved"
prefix=$scratch/moved

# The CUDA libraries libattn.so needs at run time, where the loader may not know them.
cuda_libdir=$(sed -n 's/^CUDAToolkit_LIBRARY_DIR:[A-Z]*=//p' "$build/CMakeCache.txt")

failures=0
# run NAME LIBDIR PROGRAM: runs PROGRAM and checks its output.
run() {
  local name=$1 libdir=$2 program=$3 out
  if ! out=$(LD_LIBRARY_PATH="$libdir${cuda_libdir:+:$cuda_libdir}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$program" 2>&1); then
    echo "FAIL $name: exit status $?:"$'\n'"$out"
    failures=$((failures + 1))
    return
  fi
  if ! grep -qxF 'weights 0.1192 0.0000 0.0000 0.8808' <<<"$out" ||
    ! grep -qxF 'context 3.8808 4.0728 45.2642' <<<"$out"; then
    echo "FAIL $name: not the walkthrough's weights and context:"$'\n'"$out"
    failures=$((failures + 1))
    return
  fi
  echo "ok   $name"
}

# pkg-config, shared and static.
pc_dir=$(dirname "$(find "$prefix" -name attn.pc -print -quit)")
export PKG_CONFIG_PATH="$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# The installed tree lies outside any sysroot the caller's pkg-config was pointed at
# (tests/gpu/device-check.sh sets one for the Check it unpacks): pkg-config would prefix it to
# attn.pc's paths, and the compiler would not find attn.h.
unset PKG_CONFIG_SYSROOT_DIR
libdir=$("$pkgconfig" --variable=libdir attn)
echo "attn.pc: libdir $libdir; --libs: $("$pkgconfig" --libs attn); --static --libs:" \
  "$("$pkgconfig" --static --libs attn)"
# shellcheck disable=SC2046 # pkg-config's output is a list of words
"$cc" -o "$scratch/pc_shared" "$example" $("$pkgconfig" --cflags --libs attn)
run "pkg-config, shared" "$libdir" "$scratch/pc_shared"
# The static link names libattn.a itself: -lattn would take the shared library next to it.
# shellcheck disable=SC2046
"$cc" -o "$scratch/pc_static" "$example" $("$pkgconfig" --cflags attn) "$libdir/libattn.a" \
  $("$pkgconfig" --static --libs attn | sed 's/\(^\| \)-lattn\( \|$\)/ /')
run "pkg-config --static" /nonexistent "$scratch/pc_static"

# CMake's find_package: a C project, and a C++-only one (where a C++ compiler is found).
# consumer NAME ARGS...: configures and builds tests/install/consumer into $scratch/NAME.
consumer() {
  local name=$1
  shift
  if ! "$cmake" -S "$root/tests/install/consumer" -B "$scratch/$name" \
    -DCMAKE_PREFIX_PATH="$prefix" -DEXAMPLE_SOURCE="$example" "$@" > "$scratch/$name.log" 2>&1 ||
    ! "$cmake" --build "$scratch/$name" >> "$scratch/$name.log" 2>&1; then
    cat "$scratch/$name.log"
    exit 1
  fi
}
consumer c-project -DCMAKE_C_COMPILER="$cc"
run "find_package, attn::attn" "$libdir" "$scratch/c-project/example_shared"
run "find_package, attn::attn_static" /nonexistent "$scratch/c-project/example_static"
programs=4
if command -v c++ >/dev/null 2>&1; then
  consumer cxx-project -DCONSUMER_CXX=ON
  run "find_package, C++ project, attn::attn" "$libdir" "$scratch/cxx-project/example_shared"
  run "find_package, C++ project, attn::attn_static" /nonexistent \
    "$scratch/cxx-project/example_static"
  programs=6
else
  echo "skip find_package in a C++ project (no c++ compiler)"
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures of $programs installed-package programs failed"
  exit 1
fi
echo "the installed package works with pkg-config and find_package (shared and static)"
