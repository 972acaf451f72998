#!/bin/sh
# run_fuzz.sh - a bounded libFuzzer run of the .npy reader, for CTest.
# usage: run_fuzz.sh FUZZ_BINARY WORK_DIR SEED_CORPUS SECONDS
# New inputs go to WORK_DIR/corpus (the seed corpus in the source tree is only read); a crash
# leaves its input in WORK_DIR/ and fails the test.
set -eu
fuzz=$1 work=$2 seeds=$3 seconds=$4
mkdir -p "$work/corpus"
exec "$fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" "$seeds"
