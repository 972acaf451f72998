#!/usr/bin/env python3
"""bench/numpy_attn.py - the numpy half of bench/cpu-vs-numpy.sh, and its report.

Times numpy doing the walkthrough's computation batched, softmax(Q @ A.T) @ A with a
max-subtracted softmax (in-place where numpy allows, to be fair to numpy), on the same shapes and
input distribution as bench/cpu_bench.c, then reads cpu_bench's output and prints the table and
the summary line. Usage: numpy_attn.py REPS CPU_BENCH_OUTPUT_FILE
"""
import sys
import time

import numpy as np

# name, batch, m, n, d  (same list and order as cpu_bench.c)
SHAPES = [
    ("latency", 1, 1, 4, 3),
    ("tiny", 1, 4096, 4, 3),
    ("medium", 1, 4096, 128, 256),
    ("gemm", 1, 8192, 1024, 512),
    ("long", 1, 1024, 4096, 128),
    ("decode", 4096, 1, 256, 128),
]


def attend(q, a):
    s = q @ np.swapaxes(a, -1, -2)
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s @ a


def products_only(q, a):
    """numpy's two matrix products of attend() without the softmax passes between them."""
    return (q @ np.swapaxes(a, -1, -2)) @ a


def time_numpy(batch, m, n, d, reps, rng, fn=attend):
    r = np.float32(np.sqrt(3.0) / d ** 0.25)  # unit-variance dot scores, as in cpu_bench.c
    shape_q = (batch, m, d) if batch > 1 else (m, d)
    shape_a = (batch, n, d) if batch > 1 else (n, d)
    q = rng.uniform(-r, r, size=shape_q).astype(np.float32)
    a = rng.uniform(-r, r, size=shape_a).astype(np.float32)
    fn(q, a)  # warm-up
    t0 = time.perf_counter()
    fn(q, a)
    one = time.perf_counter() - t0
    calls = 1 if one > 0.02 else int(0.02 / max(one, 1e-8)) + 1
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(q, a)
        times.append((time.perf_counter() - t0) / calls)
    return float(np.median(times))


def main():
    reps = max(5, int(sys.argv[1]))
    attn, sgemm, copy, pair, read = {}, None, None, None, None
    with open(sys.argv[2]) as f:
        for line in f:
            w = line.split()
            if not w or w[0].startswith("#"):
                continue
            if w[0] == "attn":
                attn[w[1]] = float(w[6])
            elif w[0] == "sgemm":
                sgemm = float(w[1])
            elif w[0] == "copy":
                copy = float(w[1])
            elif w[0] == "sgemm_pair":
                pair = float(w[1])
            elif w[0] == "read":
                read = float(w[1])
    rng = np.random.default_rng(1)
    print(f"numpy {np.__version__}; OpenBLAS sgemm {sgemm:.1f} GFLOP/s; "
          f"copy {copy:.1f} GB/s (read + write); medians of {reps} runs")
    print()
    print("| shape (batch x m, n, d) | attn | numpy | speedup | attn rate |")
    print("|---|---:|---:|---:|---:|")
    speedups = []
    gemm_fraction = decode_fraction = None
    numpy_times = {}
    for name, batch, m, n, d in SHAPES:
        t_np = time_numpy(batch, m, n, d, reps, rng)
        numpy_times[name] = t_np
        t_attn = attn[name]
        speedups.append(t_np / t_attn)
        flops = 4.0 * batch * m * n * d
        if name == "decode":
            nbytes = 4.0 * (batch * n * d + 2 * batch * m * d)
            rate = f"{nbytes / t_attn / 1e9:.1f} GB/s"
            decode_fraction = nbytes / t_attn / 1e9 / copy
        else:
            rate = f"{flops / t_attn / 1e9:.1f} GFLOP/s"
            if name == "gemm":
                gemm_fraction = flops / t_attn / 1e9 / sgemm
        unit, scale = ("us", 1e6) if t_attn < 1e-3 else ("ms", 1e3)
        label = f"{batch} x {m}, {n}, {d}" if batch > 1 else f"{m}, {n}, {d}"
        if name == "latency":
            label += " (per call)"
        print(f"| {label} | {t_attn * scale:.3f} {unit} | {t_np * scale:.3f} {unit} | "
              f"{t_np / t_attn:.2f}x | {rate} |")
    print()
    # The ceiling on the GEMM-shaped problem: no implementation that does the two products can
    # take less than they do alone, at the best sgemm rate this run measured (the square
    # product's, as a rule) or at OpenBLAS's own rate on these two products.
    _, batch, m, n, d = next(x for x in SHAPES if x[0] == "gemm")
    t_floor = 4.0 * batch * m * n * d / (sgemm * 1e9)
    t_np, t_attn = numpy_times["gemm"], attn["gemm"]
    t_np_products = time_numpy(batch, m, n, d, reps, rng, products_only)
    print(f"ceiling on {m}, {n}, {d}: numpy {t_np * 1e3:.3f} ms (its two products alone "
          f"{t_np_products * 1e3:.3f} ms), attn {t_attn * 1e3:.3f} ms; the two products alone "
          f"take {t_floor * 1e3:.3f} ms at the best sgemm rate, {pair * 1e3:.3f} ms as OpenBLAS "
          f"calls")
    print(f"ceiling: max_speedup_vs_numpy={t_np / t_floor:.2f} at the best sgemm rate, "
          f"{t_np / pair:.2f} at OpenBLAS's rate on these products; attn reaches "
          f"{t_np / t_attn:.2f} (its time is {t_attn / pair:.2f}x that of the two OpenBLAS calls)")
    # The decode shape only reads: its ceiling is a plain read loop, not the copy.
    _, batch, m, n, d = next(x for x in SHAPES if x[0] == "decode")
    rate = 4.0 * (batch * n * d + 2 * batch * m * d) / attn["decode"] / 1e9
    print(f"decode: attn reads {rate:.1f} GB/s, {rate / read:.2f} of a plain read loop "
          f"({read:.1f} GB/s), which itself reaches {read / copy:.2f} of the copy bandwidth")
    print()
    print(f"summary: min_speedup_vs_numpy={min(speedups):.2f} "
          f"sgemm_fraction={gemm_fraction:.2f} decode_bandwidth_fraction={decode_fraction:.2f}")


if __name__ == "__main__":
    main()
