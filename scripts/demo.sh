#!/usr/bin/env bash
# scripts/demo.sh - installs what is missing, builds attn and runs the two samples on the best
# backend: samples/walkthrough (the walkthrough's numbers, step by step, with heatmaps) and
# samples/batch (thousands of random decoder states, timed and checked against the reference).
#
# For a fresh Debian or Ubuntu machine (run as root, or with sudo available). Idempotent.
# Environment: ATTN_CUDA=AUTO|ON|OFF (default AUTO; OFF builds in build-nocuda/), ATTN_JOBS.
# The build folders are the ones scripts/test.sh uses.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ATTN_ROOT"

cuda_setting="$(attn_cuda_setting)"
build_dir="$(attn_build_dir "$cuda_setting")"

attn_step "install missing packages"
attn_install_missing

attn_step "build ATTN_CUDA=$cuda_setting (${build_dir##*/}/)"
attn_build "$cuda_setting" "$build_dir" -DCMAKE_BUILD_TYPE=Release

attn_step "samples/walkthrough"
"$build_dir/samples/walkthrough"

attn_step "samples/batch"
"$build_dir/samples/batch"
