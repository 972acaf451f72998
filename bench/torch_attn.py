#!/usr/bin/env python3
"""bench/torch_attn.py - the PyTorch half of bench/gpu-vs-torch.sh, and its report.

Times PyTorch on the GPU benchmark's shapes (bench/gpu_bench.c), on the same device, in fp32
with TF32 disabled:
  torch-matmul  torch.softmax(Q @ A^T, -1) @ A (batched matmul for the decode shape);
  torch-sdpa    torch.nn.functional.scaled_dot_product_attention(Q, A, A, scale=1.0) (the dot
                score), with the backend PyTorch picks; each backend that can run the shape is
                also timed on its own (torch-sdpa-efficient, torch-sdpa-math, ...), which shows
                which one the default call used.
Method as in gpu_bench: inputs uniform in [-r, r], r = sqrt(3) / d^(1/4); CUDA events on the
current stream; before every timed call a buffer of twice the L2 size (at least 64 MiB) is
read (a sum into one float: the L2 is left holding clean lines) or, with --flush write,
written (Tensor.fill_: left full of dirty lines, as gpu_bench --flush write); medians and
minima of --reps calls after one warm-up call; bytes = queries + annotations read once +
context written, FLOPs = 4 m n d per set; copy = Tensor.copy_ of 1 GiB, bytes read + written.
Every implementation's context is compared with a float64 computation on sampled rows
(max_abs_err_vs_fp64, for information).

Usage:
  torch_attn.py [--reps N] [--json FILE] [--small] [--device N] [--shape LIST]
                [--flush read|write]
      runs PyTorch; exit 77 when PyTorch or a CUDA device is missing;
  torch_attn.py --merge ATTN_JSON [TORCH_JSON]
      prints the combined table of gpu_bench --json and this script's --json (standard library
      only: runs without PyTorch).
"""
import argparse
import json
import math
import statistics
import sys
import warnings

SKIP = 77

# name, batch, m, n, d: the same lists as bench/gpu_bench.c (full_shapes and small_shapes).
SHAPES = [
    ("walkthrough", 1, 1000000, 4, 3),
    ("decode", 4096, 1, 1024, 128),
    ("shared", 1, 8192, 1024, 512),
    ("long", 1, 16, 32768, 128),
]
SMALL_SHAPES = [
    ("walkthrough", 1, 10000, 4, 3),
    ("decode", 64, 1, 1024, 128),
    ("shared", 1, 256, 1024, 512),
    ("long", 1, 16, 4096, 128),
]
SAMPLE_SETS, SAMPLE_ROWS = 64, 256
COPY_BYTES = 1 << 30

# Targets of issue 6 (on an H100), checked by --merge.
TARGETS = [
    ("decode_copy_fraction", 0.80),
    ("walkthrough_copy_fraction", 0.70),
    ("shared_sgemm_fraction", 0.70),
]


def shape_bytes(batch, m, n, d):
    return 4.0 * batch * (2 * m * d + n * d)


def shape_flops(batch, m, n, d):
    return 4.0 * batch * m * n * d


def fmt(v, spec):
    return "n/a" if v is None or not math.isfinite(v) else format(v, spec)


# --------------------------------------------------------------------------------------------
# Running PyTorch
# --------------------------------------------------------------------------------------------


def load_torch():
    """The torch module, or None after printing why it cannot run here."""
    try:
        import torch  # noqa: PLC0415 (imported here: --merge runs without PyTorch)
    except ImportError as e:
        print(f"torch_attn.py: skipped: PyTorch is not installed for {sys.executable} ({e})")
        return None
    if not torch.cuda.is_available():
        print(f"torch_attn.py: skipped: PyTorch {torch.__version__} sees no CUDA device "
              f"(CUDA build: {torch.version.cuda})")
        return None
    return torch


class Runner:
    def __init__(self, torch, device, reps, flush):
        self.torch = torch
        self.dev = torch.device("cuda", device)
        self.reps = reps
        torch.cuda.set_device(self.dev)
        props = torch.cuda.get_device_properties(self.dev)
        self.props = props
        self.l2 = int(getattr(props, "L2_cache_size", 0) or 0)
        self.flush_bytes = max(2 * self.l2, 64 << 20)
        self.flush = torch.zeros(self.flush_bytes, dtype=torch.uint8, device=self.dev)
        self.flush_f32 = self.flush.view(torch.float32)
        self.flush_sum = torch.zeros((), dtype=torch.float32, device=self.dev)
        self.flush_write = flush == "write"
        self.flush_value = 0

    def flush_l2(self):
        """Evicts the L2: reads the buffer (clean lines) or, --flush write, writes it."""
        if self.flush_write:
            self.flush_value = (self.flush_value + 1) % 256
            self.flush.fill_(self.flush_value)
        else:
            self.torch.sum(self.flush_f32, 0, out=self.flush_sum)

    def time(self, fn):
        """(median ms, min ms) of reps calls of fn, each after an L2 flush; one warm-up first."""
        torch = self.torch
        fn()
        torch.cuda.synchronize()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(self.reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(self.reps)]
        for i in range(self.reps):
            self.flush_l2()
            starts[i].record()
            fn()
            ends[i].record()
        torch.cuda.synchronize()
        ms = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
        return statistics.median(ms), ms[0]

    def copy_gbps(self):
        torch = self.torch
        free, _ = torch.cuda.mem_get_info(self.dev)
        nbytes = min(COPY_BYTES, (free // 4) & ~0xFFFFF)
        src = torch.ones(nbytes // 4, dtype=torch.float32, device=self.dev)
        dst = torch.empty_like(src)
        med, _ = self.time(lambda: dst.copy_(src))
        return 2.0 * nbytes / (med * 1e-3) / 1e9, nbytes


def sdpa_call(torch, q4, a4):
    """scaled_dot_product_attention with the dot score (scale 1)."""
    f = torch.nn.functional.scaled_dot_product_attention
    try:
        return f(q4, a4, a4, scale=1.0)
    except TypeError:  # PyTorch < 2.1 has no scale argument: its default is 1/sqrt(d)
        return f(q4 * math.sqrt(q4.shape[-1]), a4, a4)


def sdpa_backends(torch):
    """[(name, backend enum)] of the SDPA backends this PyTorch can force, or []."""
    try:
        from torch.nn.attention import SDPBackend  # noqa: PLC0415
    except ImportError:
        return []
    out = []
    for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"):
        b = getattr(SDPBackend, name, None)
        if b is not None:
            out.append((name.split("_")[0].lower(), b))
    return out


def forced_sdpa(torch, backend, q4, a4):
    from torch.nn.attention import sdpa_kernel  # noqa: PLC0415

    with sdpa_kernel([backend]):
        return sdpa_call(torch, q4, a4)


def run_shape(r, name, batch, m, n, d):
    torch = r.torch
    dev = r.dev
    rng = torch.Generator(device=dev)
    rng.manual_seed(1234)
    rad = math.sqrt(3.0) / d ** 0.25  # unit-variance dot scores, as in gpu_bench.c
    qshape = (batch, m, d) if batch > 1 else (m, d)
    ashape = (batch, n, d) if batch > 1 else (n, d)
    q = torch.rand(qshape, generator=rng, device=dev, dtype=torch.float32)
    q.mul_(2 * rad).sub_(rad)
    a = torch.rand(ashape, generator=rng, device=dev, dtype=torch.float32)
    a.mul_(2 * rad).sub_(rad)
    q4 = q.reshape(batch, 1, m, d)
    a4 = a.reshape(batch, 1, n, d)

    # float64 reference on sampled sets (decode) or rows (one set)
    if batch > 1:
        step = batch // min(batch, SAMPLE_SETS)
        qs, as_ = q[::step][:SAMPLE_SETS].double(), a[::step][:SAMPLE_SETS].double()

        def pick(c):
            return c.reshape(batch, m, d)[::step][:SAMPLE_SETS]
    else:
        step = m // min(m, SAMPLE_ROWS)
        qs, as_ = q[::step][:SAMPLE_ROWS].double(), a.double()

        def pick(c):
            return c.reshape(m, d)[::step][:SAMPLE_ROWS]
    ref = torch.softmax(qs @ as_.transpose(-2, -1), dim=-1) @ as_

    impls = [
        ("torch-matmul", lambda: torch.softmax(q @ a.transpose(-2, -1), dim=-1) @ a, None),
        ("torch-sdpa", lambda: sdpa_call(torch, q4, a4), None),
    ]
    usable = []
    for bname, backend in sdpa_backends(torch):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                forced_sdpa(torch, backend, q4, a4)
            torch.cuda.synchronize()
        except Exception:  # noqa: BLE001 (RuntimeError: no kernel of this backend for the shape)
            continue
        usable.append(bname)
        impls.append((f"torch-sdpa-{bname}",
                      (lambda b=backend: forced_sdpa(torch, b, q4, a4)), bname))

    nbytes, flops = shape_bytes(batch, m, n, d), shape_flops(batch, m, n, d)
    results = []
    for impl, fn, backend in impls:
        res = {"impl": impl, "status": "ok", "backend": backend, "message": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = fn()
                err = (pick(out).double() - ref).abs().max().item()
                del out
                med, mn = r.time(fn)
            res.update(median_ms=med, min_ms=mn, gbps=nbytes / (med * 1e-3) / 1e9,
                       gflops=flops / (med * 1e-3) / 1e9, max_abs_err_vs_fp64=err)
        except Exception as e:  # noqa: BLE001 (out of memory, no kernel for this shape, ...)
            res.update(status="error", message=str(e).splitlines()[0] if str(e) else repr(e),
                       median_ms=None, min_ms=None, gbps=None, gflops=None)
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        results.append(res)

    # Which backend the default call used: the forced one whose time is closest.
    sdpa = results[1]
    forced = [x for x in results[2:] if x["status"] == "ok"]
    if sdpa["status"] == "ok" and forced:
        best = min(forced, key=lambda x: abs(x["median_ms"] - sdpa["median_ms"]))
        sdpa["backend"] = f"~{best['backend']}"
    sdpa["backends_usable"] = usable

    return {"name": name, "batch": batch, "m": m, "n": n, "d": d, "bytes": nbytes,
            "flops": flops, "results": results}


def run_torch(args):
    torch = load_torch()
    if torch is None:
        return SKIP
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    r = Runner(torch, args.device, args.reps, args.flush)
    p = r.props
    print(f"# PyTorch on {p.name}\n")
    print(f"- PyTorch {torch.__version__} (CUDA {torch.version.cuda}); {p.name}, "
          f"sm_{p.major}{p.minor}, {p.multi_processor_count} SMs, "
          f"{p.total_memory / 2**30:.1f} GiB, L2 {r.l2 / 2**20:.1f} MiB")
    print("- fp32, TF32 off (torch.backends.cuda.matmul.allow_tf32 = False, "
          "torch.backends.cudnn.allow_tf32 = False)")
    how = "written (--flush write)" if r.flush_write else "read (--flush read)"
    print(f"- method: CUDA events; {r.flush_bytes / 2**20:.0f} MiB {how} before every timed "
          f"call; median and minimum of {args.reps} calls after one warm-up")
    if args.small:
        print("- **--small**: reduced shapes, not issue 6's")
    copy, copy_bytes = r.copy_gbps()
    torch.cuda.empty_cache()  # the copy's buffers, freed on return
    print(f"- copy: Tensor.copy_ of {copy_bytes / 2**20:.0f} MiB: **{copy:.1f} GB/s** "
          "(bytes read + bytes written)\n")
    print("| shape (batch x m, n, d) | impl | median ms | min ms | GB/s | GFLOP/s | x copy | "
          "max abs err vs fp64 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    shapes = []
    failed = 0
    for name, batch, m, n, d in (SMALL_SHAPES if args.small else SHAPES):
        if args.shape and name not in args.shape.split(","):
            continue
        print(f"torch_attn.py: {name}...", file=sys.stderr)
        s = run_shape(r, name, batch, m, n, d)
        torch.cuda.empty_cache()  # the shape's tensors, freed on return
        for x in s["results"]:
            x["copy_fraction"] = x["gbps"] / copy if x["status"] == "ok" else None
            label = x["impl"] + (f" ({x['backend']})" if x["impl"] == "torch-sdpa" else "")
            if x["status"] == "ok":
                print(f"| {name} {batch} x {m}, {n}, {d} | {label} | {x['median_ms']:.4f} | "
                      f"{x['min_ms']:.4f} | {x['gbps']:.1f} | {x['gflops']:.1f} | "
                      f"{x['copy_fraction']:.3f} | {x['max_abs_err_vs_fp64']:.2e} |")
            else:
                failed += x["impl"] in ("torch-matmul", "torch-sdpa")
                print(f"| {name} {batch} x {m}, {n}, {d} | {label} | error | | | | | "
                      f"{x['message'].replace('|', '/')} |")
        sys.stdout.flush()
        shapes.append(s)
    doc = {"source": "torch", "device": p.name, "torch_version": torch.__version__,
           "cuda_version": torch.version.cuda, "small": bool(args.small), "reps": args.reps,
           "copy_gbps": copy, "copy_bytes": copy_bytes,
           "copy_convention": "bytes read + bytes written", "l2_bytes": r.l2,
           "flush_bytes": r.flush_bytes, "flush": args.flush, "tf32": False, "shapes": shapes}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------
# Merging gpu_bench's and this script's JSON
# --------------------------------------------------------------------------------------------


def by_impl(shape):
    return {x["impl"]: x for x in shape.get("results", [])}


def ok_ms(x):
    return x["median_ms"] if x and x.get("status") == "ok" else None


def merge(attn_path, torch_path):
    with open(attn_path) as f:
        attn = json.load(f)
    tor = None
    if torch_path:
        with open(torch_path) as f:
            tor = json.load(f)
    print(f"# attn vs PyTorch: {attn['device']}\n")
    print(f"- attn: {attn['header']}")
    if attn.get("mode") == "gpu":
        print(f"- attn run: copy {fmt(attn.get('copy_gbps'), '.1f')} GB/s (bytes read + "
              f"written); medians of {attn['reps']}; L2 flushed before every call "
              f"(--flush {attn.get('flush', 'write')})")
    else:
        print(f"- attn run: **{attn.get('mode')} mode**: not a GPU result; medians of "
              f"{attn['reps']}")
    if tor:
        print(f"- PyTorch {tor['torch_version']} (CUDA {tor['cuda_version']}) on {tor['device']}, "
              f"fp32, TF32 off; its own copy measure {fmt(tor.get('copy_gbps'), '.1f')} GB/s")
        if tor["device"] != attn["device"]:
            print(f"- **warning**: the two runs name different devices ({attn['device']!r}, "
                  f"{tor['device']!r})")
        # Runs from before --flush existed wrote their flush buffers.
        if tor.get("flush", "write") != attn.get("flush", "write") and attn.get("mode") == "gpu":
            print(f"- **warning**: the two runs flushed the L2 differently (attn --flush "
                  f"{attn.get('flush', 'write')}, PyTorch --flush {tor.get('flush', 'write')})")
        if bool(tor.get("small")) != bool(attn.get("small")):
            print("- **warning**: one run used --small and the other did not")
    else:
        print("- PyTorch: not run")
    if attn.get("small"):
        print("- **--small**: reduced shapes, not issue 6's")
    print("- speedup = PyTorch time / attn time (attn auto); x copy and x cuBLAS are attn auto's "
          "ratios to the same run's copy bandwidth and cuBLAS's two GEMMs\n")
    print("| shape (batch x m, n, d) | attn auto ms | best attn ms (algo) | torch matmul ms | "
          "torch sdpa ms (backend) | speedup vs matmul | speedup vs sdpa | attn x copy | "
          "attn x cuBLAS | checks |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    torch_shapes = {s["name"]: s for s in tor["shapes"]} if tor else {}
    speedups = []
    for s in attn["shapes"]:
        name = s["name"]
        dims = f"{s['batch']} x {s['m']}, {s['n']}, {s['d']}"
        rows = by_impl(s)
        auto = rows.get("attn-auto")
        auto_ms = ok_ms(auto)
        timed = [x for x in rows.values() if ok_ms(x) is not None and x.get("check") == "ok"]
        best = min(timed, key=lambda x: x["median_ms"]) if timed else None
        failed = [x["impl"][5:] for x in rows.values()
                  if x.get("check") == "fail" or x.get("status") == "error"]
        checks = "ok" if not failed else "**FAIL**: " + ", ".join(failed)
        mm_ms = sd_ms = None
        sd_cell = "n/a"
        ts = torch_shapes.get(name)
        if ts and (ts["batch"], ts["m"], ts["n"], ts["d"]) != (s["batch"], s["m"], s["n"], s["d"]):
            print(f"| {name} {dims} | shapes differ between the runs: PyTorch ran "
                  f"{ts['batch']} x {ts['m']}, {ts['n']}, {ts['d']} | | | | | | | | |")
            continue
        if ts:
            trows = by_impl(ts)
            mm_ms = ok_ms(trows.get("torch-matmul"))
            sd = trows.get("torch-sdpa")
            sd_ms = ok_ms(sd)
            if sd_ms is not None:
                sd_cell = f"{sd_ms:.4f} ({sd.get('backend') or 'default'})"
            elif sd:
                sd_cell = "error"
        sp_mm = mm_ms / auto_ms if mm_ms and auto_ms else None
        sp_sd = sd_ms / auto_ms if sd_ms and auto_ms else None
        torch_best = min([t for t in (mm_ms, sd_ms) if t], default=None)
        if torch_best and auto_ms:
            speedups.append((torch_best / auto_ms, name))
        best_txt = f"{best['median_ms']:.4f} ({best['impl'][5:]})" if best else "n/a"
        print(f"| {name} {dims} | {fmt(auto_ms, '.4f')} | {best_txt} | {fmt(mm_ms, '.4f')} | "
              f"{sd_cell} | {fmt(sp_mm, '.2f')} | {fmt(sp_sd, '.2f')} | "
              f"{fmt(auto.get('copy_fraction') if auto else None, '.3f')} | "
              f"{fmt(auto.get('sgemm_fraction') if auto else None, '.3f')} | {checks} |")
    summ = attn.get("summary", {})
    print()
    print("summary: " + " ".join(f"{k}={fmt(summ.get(k), '.3f')}" for k, _ in TARGETS))
    if speedups:
        worst = min(speedups)
        print(f"summary: min_speedup_vs_torch={worst[0]:.2f} ({worst[1]}; PyTorch's faster "
              f"of matmul and sdpa over attn auto)")
    else:
        print("summary: min_speedup_vs_torch=n/a")
    print()
    for key, goal in TARGETS:
        v = summ.get(key)
        state = "not measured" if v is None else ("met" if v >= goal else "NOT met")
        print(f"target {key} >= {goal:.2f}: {state} ({fmt(v, '.3f')})")
    names = {s["name"] for s in attn["shapes"]}
    if speedups and len(speedups) == len(names):
        state = "met" if min(speedups)[0] > 1.0 else "NOT met"
        print(f"target faster than PyTorch fp32 on every shape: {state}")
    else:
        print("target faster than PyTorch fp32 on every shape: not measured on every shape")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=20, help="timed calls per figure (>= 10)")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--small", action="store_true", help="gpu_bench --small's shapes")
    ap.add_argument("--device", type=int, default=0, help="CUDA device index")
    ap.add_argument("--shape", help="comma-separated subset of walkthrough,decode,shared,long")
    ap.add_argument("--flush", choices=("read", "write"), default="read",
                    help="the L2 flush before each timed call reads (default) or writes a "
                         "buffer of 2 x L2, as gpu_bench --flush")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="ATTN_JSON [TORCH_JSON]: print the combined table and exit")
    args = ap.parse_args()
    if args.merge:
        if len(args.merge) > 2:
            ap.error("--merge takes ATTN_JSON and optionally TORCH_JSON")
        return merge(args.merge[0], args.merge[1] if len(args.merge) > 1 else None)
    if args.reps < 10:
        ap.error("--reps must be at least 10")
    return run_torch(args)


if __name__ == "__main__":
    sys.exit(main())
