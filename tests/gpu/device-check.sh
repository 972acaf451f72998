#!/usr/bin/env bash
# device-check.sh - the one-command check of attn's CUDA backend on a GPU machine.
#
# For a machine with an NVIDIA GPU, the CUDA toolkit (nvcc, compute-sanitizer), cmake and python3,
# but no package manager and no network. It:
#   1. unpacks the Debian packages of Check (and pkg-config) from a folder of .deb files into a
#      folder of its own (no root, nothing installed system-wide),
#   2. configures and builds attn (CUDA on, warnings as errors) against them,
#   3. runs the GPU suites (ctest -L gpu),
#   4. runs the GPU benchmark (every executable in <build>/bench whose name contains "gpu":
#      bench/gpu_bench), and the PyTorch comparison when python3 has PyTorch with CUDA, then
#      gpu_bench on the walkthrough with the former L2 flush (--flush write, flush-write.log)
#      and on the shared and long shapes with TILE's tilings and the tensor-core plans forced
#      (tile-plans.log),
#   5. runs bench/gpu-sweep.sh (every flash plan forced on the dispatcher's deciding shapes),
#      and with AB_BASE set, bench/gpu-ab.sh against that baseline,
#   6. profiles the flash kernels of AUTO on the four benchmark shapes with Nsight Compute (ncu,
#      its basic section set, clocks left alone) when ncu is on PATH, the shared shape's TILE
#      kernel once more with its warp stall samples by SASS instruction, and the TC plan's kernel
#      on the shared shape (its pipes and stalls; see profile),
#   7. then, side by side (correctness only: nothing is timed any more), runs the GPU code under
#      compute-sanitizer memcheck, racecheck, synccheck and initcheck (see sanitize), and the
#      suites not labelled gpu (ctest -LE gpu),
#   8. writes a report (report.md) and every log into $OUT when OUT names a folder, else into
#      <build>/device-check.
# The timed steps (4 to 6) run alone on the GPU. When the build fails with warnings as errors
# (a newer host compiler than the development machines' may warn more), that is a failed step,
# and the rest runs on a build without -Werror so that the run still measures something.
# It exits 0 when every step passed, 1 when one failed (or ARCHIVE could not be written), 2 when
# none failed but DEADLINE left some unrun or stopped part-way (SKIP and CUT in the report), 64 when
# STEPS names an unknown step or an empty one. Meant to take under 10 minutes on an H100 with
# DEADLINE set: without it the sanitizers run until each run ends or reaches SANITIZER_TIMEOUT,
# which can take far longer (racecheck alone runs 10 or more of them).
#
# Usage: tests/gpu/device-check.sh [DEB_DIR]
#   DEB_DIR  the .deb files (default: <repo>/.debs). Fetch them beforehand on a Debian 12
#            (bookworm, amd64) machine with network access:
#
#     mkdir -p .debs && cd .debs && \
#       apt-get download check libsubunit-dev libsubunit0 pkgconf pkgconf-bin libpkgconf3
#
#   check is Check itself (static libcheck_pic.a, check.h, check.pc); its check.pc requires
#   libsubunit (libsubunit-dev: subunit.pc and libsubunit.so; libsubunit0: libsubunit.so.0), as
#   `apt-cache depends check libsubunit-dev` shows (check's other dependency, mawk, only serves
#   checkmk, which attn does not use). pkgconf, pkgconf-bin and libpkgconf3 give pkg-config, which
#   tests/CMakeLists.txt needs to find Check; a pkg-config already on the machine is used instead
#   when the three are not given.
# Environment: OUT (report folder), BUILD_DIR (default <repo>/build-device-check), JOBS (build
# parallelism, default nproc), SANITIZER_TIMEOUT (seconds per sanitizer run, default 300),
# DEADLINE (seconds after the start by which every step must end, default 0: none; a step that
# would start after it is skipped and the time-limited commands are cut at it, so that the
# report is written inside a lease), AB_BASE (a commit, or a source tree for a machine without
# the git history, such as `git archive REV | tar -x -C build-gpu-ab/base-tree` carried along:
# after the sweep, bench/gpu-ab.sh times AUTO on issue 6's shapes against it, base and working
# tree alternately, into ab.log), STEPS (the steps after the build, a comma-separated subset of
# suites, benchmark, sweep, ab, profile, sanitize and others; default all of them: a second call
# on the same warm machine with STEPS=sanitize reuses the first call's build and gives the
# sanitizers, which the timed steps leave a few minutes, the whole call), ARCHIVE (a .tar.gz to
# write at the end holding the report folder but its .ncu-rep files, which the ncu-*.csv files
# and ncu.log summarise: for a machine that hands back only a few files, such as one that returns
# 8 files of a folder, where the report folder holds 20 or more; ARCHIVE may lie inside OUT).
set -u -o pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/../.." && pwd)
deb_dir=${1:-$repo/.debs}
build=${BUILD_DIR:-$repo/build-device-check}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 4)}
sanitizer_timeout=${SANITIZER_TIMEOUT:-300}
deadline=${DEADLINE:-0}
ab_base=${AB_BASE:-}
out=${OUT:-$build/device-check}
all_steps=suites,benchmark,sweep,ab,profile,sanitize,others
steps=${STEPS:-$all_steps}
IFS=, read -ra step_names <<<"$steps"
for name in "${step_names[@]}"; do
  if [[ -z "$name" || ",$all_steps," != *",$name,"* ]]; then
    echo "device-check.sh: STEPS='$steps' names '$name', not one of $all_steps" >&2
    exit 64
  fi
done
deps=$build/deps
report=$out/report.md

mkdir -p "$out" "$build" || exit 1
: >"$report"

say() { printf '%s\n' "$*" | tee -a "$report"; }

# Whether STEPS asks for step $1.
wanted() { [[ ",$steps," == *",$1,"* ]]; }

# Seconds left before DEADLINE (less a margin for the report), at most $1; a large number when
# there is no deadline.
left() {
  local cap=${1:-100000}
  if [ "$deadline" -le 0 ]; then
    echo "$cap"
    return
  fi
  local l=$((deadline - SECONDS - 15))
  [ "$l" -lt "$cap" ] || l=$cap
  [ "$l" -gt 0 ] || l=0
  echo "$l"
}

# Exit status of a step or command stopped by DEADLINE (not a failure of what it runs).
CUT=3

# Runs a command cut at $1 seconds and at DEADLINE. Its exit status, except $CUT when DEADLINE
# stopped it or left no time to start it; stopped by the $1-second cap, timeout's 124 (or 137).
limited() {
  local cap=$1
  shift
  local t r
  t=$(left "$cap")
  if [ "$t" -le 0 ]; then
    echo "=== not run: no time left before DEADLINE: $*"
    return "$CUT"
  fi
  timeout -k 10 "$t" "$@"
  r=$?
  if { [ "$r" -eq 124 ] || [ "$r" -eq 137 ]; } && [ "$t" -lt "$cap" ]; then
    echo "=== stopped at DEADLINE after ${t}s: $*"
    return "$CUT"
  fi
  return "$r"
}

# Folds a command's exit status r into a running status rc: a failure (1) outranks a DEADLINE
# cut ($CUT), which outranks success. Prints the new rc.
fold_rc() {
  local rc=$1 r=$2
  if [ "$r" -eq 0 ]; then
    echo "$rc"
  elif [ "$r" -eq "$CUT" ]; then
    if [ "$rc" -eq 0 ]; then echo "$CUT"; else echo "$rc"; fi
  else
    echo 1
  fi
}

# Runs a command through limited (cap $1), logs its exit status, and folds it into the calling
# function's rc (bash's dynamic scope: every caller declares `local rc=0`).
tracked() {
  local cap=$1 r
  shift
  limited "$cap" "$@"
  r=$?
  echo "=== exit $r"
  rc=$(fold_rc "$rc" "$r")
}

# Runs a named step with its output in $out/<log>; records pass/fail in the report. A step that
# would start with under 20 seconds left before DEADLINE is skipped (SKIP in the report), and one
# that DEADLINE stopped part-way (exit $CUT) is CUT: neither counts as failed.
step() {
  local name=$1 log=$2
  shift 2
  if [ "$deadline" -gt 0 ] && [ "$(left)" -lt 20 ]; then
    say "- SKIP $name (no time left before DEADLINE=${deadline}s)"
    return 1
  fi
  local start=$SECONDS
  "$@" >"$out/$log" 2>&1
  local rc=$?
  local took=$((SECONDS - start))
  if [ "$rc" -eq 0 ]; then
    say "- PASS $name (${took}s, log: $log)"
  elif [ "$rc" -eq "$CUT" ]; then
    say "- CUT $name (stopped at DEADLINE=${deadline}s after ${took}s; what ran is in $log)"
  else
    say "- FAIL $name (exit $rc, ${took}s, log: $log)"
  fi
  return "$rc"
}

# Extracts one .deb into $deps with dpkg-deb when there is one, else with python3 (a .deb is an
# ar archive holding data.tar.{xz,gz,bz2}).
extract_deb() {
  local deb=$1
  if command -v dpkg-deb >/dev/null 2>&1; then
    dpkg-deb -x "$deb" "$deps"
    return
  fi
  python3 - "$deb" "$deps" <<'PY'
import io, sys, tarfile
deb, dest = sys.argv[1], sys.argv[2]
with open(deb, "rb") as f:
    if f.read(8) != b"!<arch>\n":
        sys.exit(f"{deb}: not an ar archive")
    while True:
        header = f.read(60)
        if len(header) < 60:
            sys.exit(f"{deb}: no data.tar member")
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        data = f.read(size)
        if size % 2:
            f.read(1)
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(dest)
            break
PY
}

unpack_debs() {
  rm -rf "$deps" && mkdir -p "$deps" || return 1
  local found=0 deb
  for deb in "$deb_dir"/*.deb; do
    [ -e "$deb" ] || continue
    echo "unpacking $deb"
    extract_deb "$deb" || return 1
    found=1
  done
  if [ "$found" -eq 0 ]; then
    echo "no .deb files in $deb_dir (see the apt-get download line at the top of $0)"
    return 1
  fi
  [ -f "$deps/usr/include/check.h" ] || {
    echo "check.h missing after unpacking: is the check .deb there?"
    return 1
  }
}

configure() {
  local werror=${1:-ON} pkg_config
  if [ -x "$deps/usr/bin/pkgconf" ]; then
    pkg_config=$deps/usr/bin/pkgconf
  else
    pkg_config=$(command -v pkg-config || command -v pkgconf) || {
      echo "no pkg-config: add pkgconf pkgconf-bin libpkgconf3 to $deb_dir"
      return 1
    }
  fi
  echo "pkg-config: $pkg_config"
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DATTN_CUDA=ON -DATTN_WERROR="$werror" \
    -DPKG_CONFIG_EXECUTABLE="$pkg_config" -DCMAKE_PREFIX_PATH="$deps/usr"
}

build_all() {
  cmake --build "$build" -j "$jobs"
}

# The GPU test binaries ctest knows (label gpu), less the one that faults on purpose (fault).
gpu_tests() {
  ctest --test-dir "$build" -L gpu -LE fault -N -V 2>/dev/null |
    sed -n 's/^[0-9]*: Test command: \([^ ]*\).*/\1/p'
}

# One compute-sanitizer tool over the GPU code, quickest and most telling runs first, each cut at
# SANITIZER_TIMEOUT and DEADLINE: for racecheck, gpu_bench with the shared-memory plans forced on
# four small shapes and test_gpu_compute's flash case in slices of its shapes; test_gpu_compute one
# test case at a time (CK_RUN_CASE: edges, then 32 seeds of fuzz, then flash (racecheck: its slices
# above), grid and invariance after gpu_bench), gpu_bench on small shapes with every flash plan
# forced, then the other GPU suites (gpu_bench with --flush write: a memset, not a checked kernel
# reading 64 MiB before every timed call). API errors are not reported: test_gpu_errors provokes
# them on purpose, and attn checks every CUDA call itself.
sanitize() {
  local tool=$1 rc=0 bin c
  local runs=() compute=""
  for bin in $(gpu_tests); do
    case $(basename "$bin") in
    test_gpu_compute) compute=$bin ;;
    *) runs+=("$bin") ;;
    esac
  done
  one() {
    local what="compute-sanitizer --tool $tool $*"
    [ -z "${CK_RUN_CASE:-}" ] || what+=" (CK_RUN_CASE=$CK_RUN_CASE)"
    [ -z "${ATTN_FLASH_SHAPES:-}" ] || what+=" (ATTN_FLASH_SHAPES=$ATTN_FLASH_SHAPES)"
    echo "=== $what"
    # 77 (the suite found no usable device) counts as a failure here.
    CK_TIMEOUT_MULTIPLIER=10 tracked "$sanitizer_timeout" compute-sanitizer --tool "$tool" \
      --error-exitcode 99 --report-api-errors no --print-limit 20 "$@"
  }
  if [ "$tool" = racecheck ]; then
    # racecheck is the slowest tool and the only one that sees shared-memory races: the plans
    # that share memory between threads (BLOCK<8>, TILE<64>, TILE<32>, TILE<16>, TC, STREAM, and
    # the combine kernel behind the split ones) first, on small shapes, then test_gpu_compute's
    # flash case a slice of its shapes a run (ATTN_FLASH_SHAPES; the whole case took over 190 s
    # on an H100), the flash-only shapes (13 on) first, so that a time limit leaves whole slices
    # checked ("23-" runs to the last shape, so that shapes added later are covered too). Only
    # then the edges case, which alone outlasted 212 s in the fourth H100 run, where it ran
    # first and left racecheck nothing else.
    # (8 x 1 x 600 x 136: STREAM<2>, 8 columns a lane.)
    local shared=block8,split8,tile,splittile,tile32,splittile32,tile16,splittile16,tc,splittc
    one "$build/bench/gpu_bench" --reps 10 --algo auto \
      --dims 2x70x300x16,2x20x300x16,8x1x600x20,8x1x600x136 --flush write \
      --plans "$shared,stream,splitstream"
    if [ -n "$compute" ]; then
      local r
      for r in 13-17 18-22 23- 0-6 7-12; do
        ATTN_FLASH_SHAPES=$r CK_RUN_CASE=flash one "$compute"
      done
    fi
  fi
  if [ -n "$compute" ]; then
    CK_RUN_CASE=edges one "$compute"
    CK_RUN_CASE=fuzz ATTN_FUZZ_SEEDS=0-31 one "$compute"
  fi
  one "$build/bench/gpu_bench" --reps 10 --algo auto --flush write \
    --dims 2x70x300x16,2x20x300x16,8x1x600x20,70x1x300x20,1x100x9x3,1x300x4x3,2x130x520x136 \
    --plans all
  if [ -n "$compute" ]; then
    [ "$tool" = racecheck ] || CK_RUN_CASE=flash one "$compute"
    for c in grid invariance; do CK_RUN_CASE=$c one "$compute"; done
  fi
  for bin in ${runs[@]+"${runs[@]}"}; do one "$bin"; done
  return "$rc"
}

gpu_suites() {
  # Skipped suites (no usable device) count as failures here: this script is for GPU machines.
  local log rc
  log=$(limited 300 ctest --test-dir "$build" -L gpu --output-on-failure 2>&1)
  rc=$?
  printf '%s\n' "$log"
  if printf '%s\n' "$log" | grep -q 'Skipped'; then
    echo "GPU suites were skipped: no usable CUDA device"
    return 1
  fi
  return "$rc"
}

# Every benchmark executable in <build>/bench whose name contains "gpu" (bench/gpu_bench: every
# attn algorithm on issue 6's shapes, the copy and cuBLAS figures, and a check of each result
# against the reference), with its JSON beside the logs; then, when python3 has PyTorch with
# CUDA, bench/torch_attn.py and the combined table of bench/gpu-vs-torch.sh from the same JSON.
# A wrong result, an error or a skip (77: no usable device) fails the step; a missing PyTorch
# does not.
benchmark() {
  local bin name ran=0 rc=0
  for bin in "$build"/bench/*gpu*; do
    if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then continue; fi
    name=$(basename "$bin")
    echo "=== $bin --json $out/$name.json"
    tracked 300 "$bin" --json "$out/$name.json"
    ran=1
  done
  if [ "$ran" -eq 0 ]; then
    echo "no GPU benchmark in $build/bench (bench/CMakeLists.txt builds gpu_bench with CUDA)"
    return 1
  fi
  if [ ! -s "$out/gpu_bench.json" ]; then
    echo "no $out/gpu_bench.json: the PyTorch comparison was not run"
    return 1
  fi
  if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
    >/dev/null 2>&1; then
    echo "=== bench/torch_attn.py --json $out/torch.json"
    tracked 300 python3 "$repo/bench/torch_attn.py" --json "$out/torch.json"
    if [ -s "$out/torch.json" ]; then
      echo "=== attn against PyTorch (bench/gpu-vs-torch.sh's table)"
      python3 "$repo/bench/torch_attn.py" --merge "$out/gpu_bench.json" "$out/torch.json" ||
        rc=1
    fi
  else
    echo "PyTorch with CUDA is not available to python3: the PyTorch comparison was not run"
    python3 "$repo/bench/torch_attn.py" --merge "$out/gpu_bench.json" || rc=1
  fi
  # The walkthrough under the former flush (a memset, leaving the L2 dirty) beside the read
  # flush above: what the dirty lines' write-back costs a 24 MB call. Its own log, so that the
  # report's summary lines stay the main run's.
  echo "=== $build/bench/gpu_bench --flush write --shape walkthrough --algo auto" \
    "(output in flush-write.log)"
  tracked 120 "$build/bench/gpu_bench" --flush write --shape walkthrough --algo auto \
    --json "$out/gpu_bench-flush-write.json" >"$out/flush-write.log" 2>&1
  grep -E '^\| walkthrough' "$out/flush-write.log"
  # The TILE tilings on the shared and long shapes (AUTO's TILE<64> and TILE<16>, split, against
  # TILE<32>, and the tensor-core plans, an arithmetic of their own that only a forced plan
  # runs), so that the comparison exists even where DEADLINE cuts the sweep short.
  local plans=splittile,tile32,splittile32,splittile16,tc,splittc
  echo "=== $build/bench/gpu_bench --shape shared,long --algo auto --plans $plans" \
    "(output in tile-plans.log)"
  tracked 120 "$build/bench/gpu_bench" --shape shared,long --algo auto --plans "$plans" \
    --json "$out/gpu_bench-tile-plans.json" >"$out/tile-plans.log" 2>&1
  grep -E '^\| (shared|long)' "$out/tile-plans.log"
  return "$rc"
}

say "# attn device check"
say ""
say "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "- commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
say "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi unavailable')"
say "- nvcc: $(nvcc --version 2>/dev/null | tail -1 || echo 'not found')"
say "- cmake: $(cmake --version 2>/dev/null | head -1)"
say "- steps: $steps"
say ""
say "## Steps"

# The CUDA tools (compute-sanitizer, ncu) where an image keeps them off PATH.
for dir in /usr/local/cuda/bin /opt/nvidia/nsight-compute/*; do
  if [ -d "$dir" ]; then PATH=$PATH:$dir; fi
done
export PATH
export PKG_CONFIG_SYSROOT_DIR=$deps
export PKG_CONFIG_LIBDIR=$deps/usr/lib/x86_64-linux-gnu/pkgconfig:$deps/usr/share/pkgconfig
export PKG_CONFIG_PATH=$PKG_CONFIG_LIBDIR
export LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# Warp stall samples by SASS instruction of the first kernel matching regex $2 in gpu_bench's AUTO
# run of shape $3: the report in $out/ncu-$1.ncu-rep, its SASS page in $out/ncu-$1-sass.csv.
# Folds into the caller's rc (tracked).
source_profile() {
  local name=$1 kernel=$2 shape=$3
  echo "=== ncu: source counters of $kernel, gpu_bench --shape $shape --algo auto"
  rm -f "$out/ncu-$name.ncu-rep" "$out/ncu-$name-sass.csv" # not an earlier run's
  tracked 90 ncu --clock-control none --section SourceCounters --section WarpStateStats \
    -k "regex:$kernel" --launch-count 1 --export "$out/ncu-$name" --force-overwrite \
    "$build/bench/gpu_bench" --reps 10 --algo auto --shape "$shape"
  if [ -f "$out/ncu-$name.ncu-rep" ]; then
    # Not counted as a failure: an older ncu may lack --page source; the report file stays.
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's
    limited 60 bash -c 'ncu --import "$1" --page source --print-source sass --csv >"$2" ||
      { r=$?; rm -f "$2"; exit "$r"; }' _ "$out/ncu-$name.ncu-rep" "$out/ncu-$name-sass.csv"
    echo "=== exit $? (the SASS page; not counted)"
  fi
}

# Nsight Compute on the flash kernels of AUTO, one benchmark shape at a time: the first two
# flash launches (the kernel, and the combine kernel where spans are split), the basic section
# set with the warp state, scheduler and instruction statistics, clocks as the card has them
# (METHOD.md: leave the card's settings alone). Then the shared shape's TILE kernel and the
# walkthrough's short-set kernel once more with the source counters (source_profile: warp stall
# samples by SASS instruction), kept in OUT as ncu-tile-shared.ncu-rep and
# ncu-short-walkthrough.ncu-rep and printed instruction by instruction to ncu-*-sass.csv: where
# their loops stall.
profile() {
  local shape flush rc=0
  # First the L2 as each flush leaves it for the walkthrough's kernel (--cache-control none: ncu
  # flushes nothing itself): DRAM bytes read and written and the L2 hit rate of one timed call
  # (launch 3, after the checked call and a timed one). Clean lines: reads near the call's 12
  # MB, writes near 0 (its 12 MB of context can stay in L2); dirty ones: writes up to as much
  # again; a hit rate well above 0: the flush did not evict the call's inputs.
  local metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum
  metrics+=,lts__t_sector_hit_rate.pct
  for flush in read write; do
    echo "=== ncu --cache-control none: gpu_bench --shape walkthrough --flush $flush"
    tracked 60 ncu --clock-control none --cache-control none --metrics "$metrics" \
      -k regex:flash_short --launch-skip 2 --launch-count 1 \
      "$build/bench/gpu_bench" --reps 10 --algo auto --shape walkthrough --flush "$flush"
  done
  for shape in walkthrough decode shared long; do
    echo "=== ncu: gpu_bench --shape $shape --algo auto"
    tracked 60 ncu --clock-control none --set basic --section WarpStateStats \
      --section SchedulerStats --section InstructionStats -k regex:flash --launch-count 2 \
      "$build/bench/gpu_bench" --reps 10 --algo auto --shape "$shape"
  done
  source_profile tile-shared flash_tile shared
  # The walkthrough's short-set kernel likewise: latency-bound on the H100 (third run: 0.58
  # issued a scheduler and cycle with 5.4 warps, DRAM 30% busy); this says on what.
  source_profile short-walkthrough flash_short walkthrough
  # The tensor-core plan's kernel (flash_tile_kernel<64, true>) on the shared shape: how busy its
  # tensor pipe is against the fp32 pipe that splits the operands, and what its warps wait on.
  echo "=== ncu: the TC kernel, gpu_bench --shape shared --algo auto --plans tc"
  rm -f "$out/ncu-tc-shared.ncu-rep"
  tracked 90 ncu --clock-control none --set basic --section ComputeWorkloadAnalysis \
    --section WarpStateStats --section SchedulerStats --section InstructionStats \
    --section SourceCounters --kernel-name-base mangled -k regex:flash_tile_kernelILi64ELb1E \
    --launch-count 1 --export "$out/ncu-tc-shared" --force-overwrite --print-summary none \
    "$build/bench/gpu_bench" --reps 10 --algo auto --shape shared --plans tc
  if [ -f "$out/ncu-tc-shared.ncu-rep" ]; then
    limited 60 ncu --import "$out/ncu-tc-shared.ncu-rep" --print-details all
    echo "=== exit $? (printing the TC report; not counted)"
  fi
  return "$rc"
}

# Steps run side by side; each records itself in the report.
side_by_side() {
  local pids=() pid
  if ! wanted sanitize; then
    :
  elif command -v compute-sanitizer >/dev/null 2>&1; then
    for tool in memcheck racecheck synccheck initcheck; do
      step "compute-sanitizer $tool" "sanitizer-$tool.log" sanitize "$tool" &
      pids+=($!)
    done
  else
    say "- FAIL compute-sanitizer: not found on PATH"
  fi
  if wanted others; then
    step "the other suites (ctest -LE gpu)" ctest-all.log limited 600 ctest --test-dir "$build" \
      -LE gpu -j 8 --output-on-failure &
    pids+=($!)
  fi
  for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid"; done
}

if step "unpack .debs from $deb_dir" unpack.log unpack_debs && step "configure" configure.log configure; then
  built=0
  if step "build (sm_80, sm_90, compute_90; warnings and spills as errors)" build.log build_all; then
    built=1
  elif step "configure without -Werror (to measure the rest)" configure-nowerror.log configure OFF &&
    step "build without -Werror" build-nowerror.log build_all; then
    built=1
  fi
  if [ "$built" -eq 1 ]; then
    wanted suites && step "GPU suites (ctest -L gpu)" gpu-suites.log gpu_suites
    wanted benchmark && step "GPU benchmark" benchmark.log benchmark
    wanted sweep && step "flash plan sweep (bench/gpu-sweep.sh)" sweep.log \
      limited 300 "$repo/bench/gpu-sweep.sh" "$build/bench/gpu_bench" "$out/sweep.json"
    if [ -n "$ab_base" ] && wanted ab; then
      step "A/B against $ab_base (bench/gpu-ab.sh, issue 6's shapes, AUTO)" ab.log \
        limited 300 env ATTN_AB_OUT="$build/ab" "$repo/bench/gpu-ab.sh" "$ab_base" --reps 20 \
        --shape walkthrough,decode,shared,long --algo auto
    fi
    if ! wanted profile; then
      :
    elif command -v ncu >/dev/null 2>&1; then
      step "Nsight Compute on AUTO's flash kernels" ncu.log profile
    else
      say "- NOTE Nsight Compute not run: ncu is not on PATH"
    fi
    side_by_side
  fi
fi

say ""
say "## Summaries"
# Only the logs of the steps this call ran (a default OUT keeps an earlier call's).
if wanted sweep && [ -f "$out/sweep.log" ]; then
  say "- sweep.log: $(grep -E '^checks:' "$out/sweep.log" | tail -1)"
  sed -n '/^fastest forced plan/,/^$/p' "$out/sweep.log" | while IFS= read -r line; do
    [ -n "$line" ] && say "    $line"
  done
fi
if wanted ab && [ -f "$out/ab.log" ]; then
  say "- ab.log (new / base below 1: the working tree is faster):"
  sed -n '/^| shape/,/^failures/p' "$out/ab.log" | while IFS= read -r line; do say "    $line"; done
fi
for log in "$out"/gpu-suites.log "$out"/ctest-all.log; do
  case $(basename "$log") in
  gpu-suites.log) wanted suites || continue ;;
  *) wanted others || continue ;;
  esac
  [ -f "$log" ] && say "- $(basename "$log"): $(grep -E 'tests passed|tests failed' "$log" | tail -1)"
done
if wanted benchmark && [ -f "$out/benchmark.log" ]; then
  grep -E '^(summary|checks|target)' "$out/benchmark.log" | while IFS= read -r line; do
    say "- benchmark.log: $line"
  done
fi
for log in "$out"/sanitizer-*.log; do
  wanted sanitize && [ -f "$log" ] || continue
  # racecheck ends a run with "RACECHECK SUMMARY: N hazards displayed", the others with "ERROR
  # SUMMARY: N errors".
  say "- $(basename "$log"): $(grep -cE '(ERROR SUMMARY: 0 errors|RACECHECK SUMMARY: 0 hazards)' "$log") clean runs, $(grep -cE '(ERROR|RACECHECK) SUMMARY: [1-9]' "$log") with errors or hazards"
done
failures=$(grep -c '^- FAIL' "$report")
skipped=$(grep -cE '^- (SKIP|CUT)' "$report")
say ""
if [ "$failures" -gt 0 ]; then
  say "RESULT: FAIL ($failures step(s) failed, $skipped skipped or cut at DEADLINE)"
elif [ "$skipped" -gt 0 ]; then
  say "RESULT: INCOMPLETE ($skipped step(s) skipped or cut at DEADLINE, none failed)"
else
  say "RESULT: PASS"
fi
say "Logs: $out"
if [ -n "${ARCHIVE:-}" ]; then
  # Written outside OUT first, then moved; where ARCHIVE lies in OUT (beside the logs it holds),
  # an earlier run's archive there is left out of it. A folder named ARCHIVE is refused (mv -T).
  archived=0 exclude=()
  rel=$(realpath -m --relative-to="$out" "$ARCHIVE")
  case $rel in
  .. | ../* | /*) ;;
  *) exclude=(--exclude="./$rel") ;;
  esac
  part=$(mktemp "${TMPDIR:-/tmp}/device-check.XXXXXX.tgz") && chmod 644 "$part" &&
    tar -czf "$part" --exclude='*.ncu-rep' ${exclude[@]+"${exclude[@]}"} -C "$out" . &&
    mv -T "$part" "$ARCHIVE" && archived=1
  if [ "$archived" -eq 1 ]; then
    echo "Archive: $ARCHIVE ($(du -k "$ARCHIVE" | cut -f1) KiB)"
  else
    echo "device-check.sh: could not write ARCHIVE=$ARCHIVE" >&2
    rm -f "${part:-}"
    exit 1
  fi
fi
if [ "$failures" -gt 0 ]; then exit 1; fi
if [ "$skipped" -gt 0 ]; then exit 2; fi
exit 0
