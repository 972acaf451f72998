#!/usr/bin/env bash
# bench/gpu-ab.sh - a change against its baseline on one GPU in one run: bench/gpu_bench built
# from the working tree and from another commit, run alternately (base, new, base, new) so that
# both see the same card in the same state. METHOD: time the same version twice; a difference
# smaller than that spread is noise.
#
# Usage: bench/gpu-ab.sh BASE_REV|BASE_DIR [gpu_bench options...]
#   bench/gpu-ab.sh HEAD~1 --shape decode,long --algo auto
#   bench/gpu-ab.sh main --dims 4096x1x1024x128,1x16x32768x128 --algo auto
# Builds gpu_bench (CUDA Release, no tests, samples or tools) for the working tree in <out>/new
# and for BASE_REV, checked out by `git worktree add` into <out>/base-src (or for the source
# tree BASE_DIR, on a machine without the git history), in <out>/base. Each side runs twice
# with the given options and --json; the table gives, per shape and
# implementation, both medians of each side and the ratio new/base of their means (below 1: the
# working tree is faster), and the worst spread between a side's two runs, to read the ratios
# against. Options BASE_REV's gpu_bench does not know fail its runs (--dims and --plans exist
# from commit 34650a5 on, --plans all from e087808 on, --flush from 45a9967 on). A base from
# before --flush flushes the L2 with a memset, so the working tree's side then runs with
# --flush write too (unless the options name a flush), and the table says which flush each side
# used. --cpu runs both on the CPU backend,
# wall-clock: a test of this script on machines without a GPU, not a comparison of GPU code.
#
# Environment: ATTN_AB_OUT (default <repo>/build-gpu-ab), JOBS (build parallelism), PYTHON.
# Exit status: 0 done, every check of both sides passed; 1 a failure (build, run, a wrong
# result); 2 usage; 77 no usable CUDA device.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${ATTN_AB_OUT:-$root/build-gpu-ab}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 4)}
python=${PYTHON:-python3}

say() { printf 'gpu-ab: %s\n' "$*" >&2; }

if [ $# -lt 1 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
  sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -ge 1 ] && exit 0
  exit 2
fi
base_rev=$1
shift
mkdir -p "$out" || exit 1
if [ -d "$base_rev" ] && [ -f "$base_rev/CMakeLists.txt" ]; then
  # A source tree (say `git archive REV | tar -x -C DIR`, for a machine without the history).
  src=$(cd "$base_rev" && pwd)
  base_sha=$src
elif ! base_sha=$(git -C "$root" rev-parse --verify --quiet "$base_rev^{commit}"); then
  say "'$base_rev' names no commit of $root and no source tree"
  exit 2
else
  src=$out/base-src
fi

# The baseline's sources: a detached worktree at base_sha (re-created when it moved).
if [ "$src" = "$out/base-src" ] && [ "$(git -C "$src" rev-parse HEAD 2>/dev/null)" != "$base_sha" ]; then
  git -C "$root" worktree remove --force "$src" >/dev/null 2>&1
  rm -rf "$src"
  git -C "$root" worktree prune
  if ! git -C "$root" worktree add --detach "$src" "$base_sha" >"$out/worktree.log" 2>&1; then
    say "git worktree add failed: see $out/worktree.log"
    exit 1
  fi
fi

# Builds bench/gpu_bench from $1 into $2.
build() {
  local from=$1 dir=$2
  if [ ! -f "$dir/CMakeCache.txt" ] || [ "$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' \
    "$dir/CMakeCache.txt")" != "$from" ]; then
    rm -rf "$dir"
    cmake -S "$from" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DATTN_CUDA=ON \
      -DATTN_BUILD_TESTS=OFF -DATTN_BUILD_SAMPLES=OFF -DATTN_BUILD_TOOLS=OFF || return 1
  fi
  cmake --build "$dir" -j "$jobs" --target gpu_bench
}
for side in base new; do
  from=$root
  [ "$side" = base ] && from=$src
  say "building gpu_bench ($side: $([ "$side" = base ] && echo "$base_sha" || echo 'working tree'))"
  if ! build "$from" "$out/$side" >"$out/build-$side.log" 2>&1; then
    say "building the $side side failed: see $out/build-$side.log"
    exit 1
  fi
done

# A base without --flush flushes by a memset: the new side then does the same.
new_args=()
if ! "$out/base/bench/gpu_bench" --help 2>/dev/null | grep -q -- '--flush'; then
  case " $* " in
  *" --flush "*) ;;
  *)
    new_args=(--flush write)
    say "the base's gpu_bench has no --flush (it writes its flush buffer): the new side runs" \
      "with --flush write too"
    ;;
  esac
fi

# base, new, base, new.
rc=0
for run in 1 2; do
  for side in base new; do
    say "run $run, $side: $out/$side-$run.md"
    extra=()
    [ "$side" = new ] && extra=(${new_args[@]+"${new_args[@]}"})
    "$out/$side/bench/gpu_bench" "$@" ${extra[@]+"${extra[@]}"} --json "$out/$side-$run.json" \
      >"$out/$side-$run.md"
    r=$?
    if [ "$r" -eq 77 ]; then
      cat "$out/$side-$run.md" >&2
      say "skipped: no usable CUDA device"
      exit 77
    fi
    if [ "$r" -ne 0 ] || [ ! -s "$out/$side-$run.json" ]; then
      say "gpu_bench ($side, run $run) exited $r: see $out/$side-$run.md"
      rc=1
    fi
  done
done
[ "$rc" -eq 0 ] || exit 1

"$python" - "$out" "$base_sha" <<'PY'
import json, sys

out, base_sha = sys.argv[1], sys.argv[2]
runs = {side: [json.load(open(f"{out}/{side}-{i}.json")) for i in (1, 2)]
        for side in ("base", "new")}

def medians(doc):
    m = {}
    for shape in doc["shapes"]:
        key = f'{shape["name"]} {shape["batch"]} x {shape["m"]}, {shape["n"]}, {shape["d"]}'
        if shape.get("cublas_ms") is not None:
            m[(key, "cuBLAS 2 GEMMs")] = shape["cublas_ms"]
        for r in shape["results"]:
            if r["status"] == "ok":
                m[(key, r["impl"])] = r["median_ms"]
    return m

med = {side: [medians(d) for d in docs] for side, docs in runs.items()}
keys = [k for k in med["new"][0] if all(k in m for s in med.values() for m in s)]
base = base_sha if "/" in base_sha else base_sha[:12]  # a source tree's path, or a commit
print(f'# gpu_bench: working tree against {base} on {runs["new"][0]["device"]}')
print()
# gpu_bench from before --flush wrote its flush buffer (and its JSON has no "flush").
flush = {side: docs[0].get("flush", "write") for side, docs in runs.items()}
if any(docs[0].get("mode") == "cpu" for docs in runs.values()):
    print("L2 flush: none (--cpu)")
else:
    print(f'L2 flush: base --flush {flush["base"]}, new --flush {flush["new"]}')
    if flush["base"] != flush["new"]:
        print("**warning**: the two sides flushed the L2 differently; their times do not compare")
print()
print("| shape (batch x m, n, d) | impl | base ms (run 1, 2) | new ms (run 1, 2) | new / base |")
print("|---|---|---:|---:|---:|")
spread = 0.0
for k in keys:
    b = [m[k] for m in med["base"]]
    n = [m[k] for m in med["new"]]
    for pair in (b, n):
        spread = max(spread, abs(pair[0] - pair[1]) / min(pair))
    ratio = (n[0] + n[1]) / (b[0] + b[1])
    print(f"| {k[0]} | {k[1]} | {b[0]:.4f}, {b[1]:.4f} | {n[0]:.4f}, {n[1]:.4f} | {ratio:.3f} |")
print()
print(f"largest spread between a side's two runs: {100 * spread:.1f}% "
      "(ratios closer to 1 than that are noise)")
failures = sum(d["failures"] for docs in runs.values() for d in docs)
print(f"failures (errors or wrong results) over the four runs: {failures}")
sys.exit(1 if failures else 0)
PY
