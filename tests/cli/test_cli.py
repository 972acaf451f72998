#!/usr/bin/env python3
"""test_cli.py - end-to-end tests of the attn program (tools/), run by CTest (label cli).

Arrays are made with numpy; `attn run` / `attn compare` / `attn bench` / `attn info` run as
subprocesses; their outputs are checked against numpy's own computation of the walkthrough
algorithm (scores, max-subtracted softmax over the valid annotations, weighted sum) for each score
function and batch layout. Heatmaps must be valid PNG (chunks, CRCs, pixel data size) or SVG (XML)
files of the size heatmap.h documents. Every bad-file case must give exit status 2, a message
naming the file and the problem, and no output file (not even a temporary one).

usage: test_cli.py --attn PATH --group run|compare|heatmap|badfiles|bench|info [--cuda ON|OFF]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

import numpy as np

ATTN = None
CUDA_BUILT = None
CASES = {}

# numpy computes in float64 on the float32 inputs; fp32 backends must land within these.
RTOL, ATOL = 2e-4, 2e-5


def case(group):
    def register(fn):
        CASES.setdefault(group, []).append(fn)
        return fn
    return register


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def attn(args, cwd, expect=0, env=None):
    """Runs attn (env: variables to add); checks the exit status and that no sanitizer spoke."""
    p = subprocess.run([ATTN] + [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, **env) if env else None)
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        check(marker not in p.stderr, "sanitizer report:\n" + p.stderr)
    if p.returncode != expect:
        raise Failure("attn %s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s" %
                      (" ".join(map(str, args)), p.returncode, expect, p.stdout, p.stderr))
    return p


def close(x, ref, what, rtol=RTOL, atol=ATOL):
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    check(x.shape == ref.shape, "%s: shape %s, expected %s" % (what, x.shape, ref.shape))
    with np.errstate(invalid="ignore"):
        same_inf = np.isinf(ref) & (x == ref)
        ok = same_inf | (np.abs(x - ref) <= atol + rtol * np.abs(ref))
    if not ok.all():
        i = np.unravel_index(np.argmin(ok), ok.shape)
        raise Failure("%s: entry %s is %r, numpy says %r" % (what, i, x[i], ref[i]))


# ---------------------------------------------------------------------------------------------
# numpy's attention: the walkthrough algorithm, one set at a time
# ---------------------------------------------------------------------------------------------

def scores_numpy(q, a, score="dot", scale=None, w=None, wq=None, wa=None, v=None):
    q, a = q.astype(np.float64), a.astype(np.float64)
    if score == "dot":
        return q @ a.T
    if score == "scaled":
        return (scale if scale else 1.0 / np.sqrt(q.shape[1])) * (q @ a.T)
    if score == "general":
        return q @ w.astype(np.float64) @ a.T
    if score == "additive":
        hq = q @ wq.astype(np.float64).T  # [m, h]
        ha = a @ wa.astype(np.float64).T  # [n, h]
        return np.tanh(hq[:, None, :] + ha[None, :, :]) @ v.astype(np.float64)
    raise ValueError(score)


def attention_numpy(q, a, values=None, length=None, **score):
    """Scores, weights, context and lse of one set: q [m, d], a [n, d], values [n, dv]."""
    values = a if values is None else values
    n = a.shape[0]
    length = n if length is None else int(length)
    s = scores_numpy(q, a, **score)
    s[:, length:] = -np.inf
    w = np.zeros_like(s)
    lse = np.full(q.shape[0], -np.inf)
    if length > 0:
        mx = s[:, :length].max(axis=1, keepdims=True)
        e = np.exp(s[:, :length] - mx)
        total = e.sum(axis=1, keepdims=True)
        w[:, :length] = e / total
        lse = (mx + np.log(total))[:, 0]
    return s, w, w @ values.astype(np.float64), lse


def rng(seed):
    return np.random.default_rng(seed)


def f32(x):
    return np.asarray(x, dtype=np.float32)


def save(d, name, arr):
    path = os.path.join(d, name)
    np.save(path, arr)
    return name


def load(d, name):
    x = np.load(os.path.join(d, name))
    check(x.dtype == np.float32, "%s: dtype %s, expected float32" % (name, x.dtype))
    return x


def run_all_outputs(d, args, backend="auto"):
    p = attn(["run"] + args + ["--backend", backend, "--out", "c.npy", "--scores", "s.npy",
                               "--weights", "w.npy", "--lse", "l.npy"], d)
    check("backend: " in p.stdout, "run does not say which backend ran:\n" + p.stdout)
    return [load(d, n) for n in ("s.npy", "w.npy", "c.npy", "l.npy")], p


BACKENDS = ["reference", "cpu", "auto"]

# ---------------------------------------------------------------------------------------------
# attn run
# ---------------------------------------------------------------------------------------------

WALK_Q = [5, 1, 20]
WALK_A = [[3, 12, 45], [59, 2, 5], [1, 43, 5], [4, 3, 45.3]]


@case("run")
def walkthrough_golden(d):
    save(d, "q.npy", f32(WALK_Q))
    save(d, "a.npy", f32(WALK_A))
    for backend in BACKENDS:
        (s, w, c, l), p = run_all_outputs(d, ["--queries", "q.npy", "--annotations", "a.npy"],
                                          backend)
        check(c.shape == (3,) and s.shape == (4,) and w.shape == (4,) and l.shape == (),
              "walkthrough output shapes %s %s %s %s" % (c.shape, s.shape, w.shape, l.shape))
        close(s, [927, 397, 148, 929], backend + " scores", rtol=0, atol=1e-3)
        # The walkthrough's float128 values; 45.3 rounded to float32 moves them by ~1e-6.
        close(w, [0.1192029, 0.0, 0.0, 0.8807971], backend + " weights", rtol=0, atol=1e-5)
        close(c, [3.8807971, 4.0728263, 45.264239], backend + " context", rtol=1e-5, atol=0)
        ref = attention_numpy(f32([WALK_Q]), f32(WALK_A))
        close(w, ref[1][0], backend + " weights vs numpy")
        close(c, ref[2][0], backend + " context vs numpy")
        close(l, ref[3][0], backend + " lse")


@case("run")
def float64_inputs_are_converted(d):
    save(d, "q.npy", np.array([WALK_Q], dtype=np.float64))
    save(d, "a.npy", np.array(WALK_A, dtype=np.float64))
    (s, w, c, l), p = run_all_outputs(d, ["--queries", "q.npy", "--annotations", "a.npy"])
    check("q.npy: float64 queries converted to float32" in p.stderr, "no float64 note:\n" + p.stderr)
    check(c.shape == (1, 3) and l.shape == (1,), "2-D query output shapes")
    close(c, [[3.8807971, 4.0728263, 45.264239]], "context", rtol=1e-5, atol=0)


@case("run")
def every_score_function(d):
    r = rng(1)
    m, n, dim, dv, h = 7, 9, 5, 4, 6
    q, a, v = f32(r.standard_normal((m, dim))), f32(r.standard_normal((n, dim))), f32(
        r.standard_normal((n, dv)))
    W, WQ, WA, VV = (f32(r.standard_normal(s)) for s in ((dim, dim), (h, dim), (h, dim), (h,)))
    for name, arr in (("q", q), ("a", a), ("v", v), ("W", W), ("WQ", WQ), ("WA", WA), ("VV", VV)):
        save(d, name + ".npy", arr)
    variants = [
        ([], dict(score="dot")),
        (["--score", "scaled"], dict(score="scaled")),
        (["--score", "scaled", "--scale", "0.25"], dict(score="scaled", scale=0.25)),
        (["--score", "general", "--w", "W.npy"], dict(score="general", w=W)),
        (["--score", "additive", "--wq", "WQ.npy", "--wa", "WA.npy", "--v", "VV.npy"],
         dict(score="additive", wq=WQ, wa=WA, v=VV)),
    ]
    for extra, score in variants:
        for values in (None, v):
            args = ["--queries", "q.npy", "--annotations", "a.npy"] + extra
            if values is not None:
                args += ["--values", "v.npy"]
            for backend in BACKENDS:
                got, _ = run_all_outputs(d, args, backend)
                ref = attention_numpy(q, a, values, **score)
                for x, y, what in zip(got, ref, ("scores", "weights", "context", "lse")):
                    close(x, y, "%s %s %s" % (backend, " ".join(extra) or "dot", what))


@case("run")
def uniform_batch_with_lengths(d):
    r = rng(2)
    batch, m, n, dim = 3, 4, 6, 5
    q, a = f32(r.standard_normal((batch, m, dim))), f32(r.standard_normal((batch, n, dim)))
    lengths = np.array([6, 0, 3], dtype=np.int64)
    a[2, 3:] = np.nan  # past the valid length: never read
    save(d, "q.npy", q)
    save(d, "a.npy", a)
    save(d, "len.npy", lengths)
    for backend in BACKENDS:
        (s, w, c, l), _ = run_all_outputs(
            d, ["--queries", "q.npy", "--annotations", "a.npy", "--lengths", "len.npy"], backend)
        check(c.shape == (batch, m, dim) and w.shape == (batch, m, n) and l.shape == (batch, m),
              "batched output shapes")
        for b in range(batch):
            ref = attention_numpy(q[b], np.nan_to_num(a[b]), length=lengths[b])
            for x, y, what in zip((s[b], w[b], c[b], l[b]), ref, ("scores", "weights", "context",
                                                                   "lse")):
                close(x, y, "%s set %d %s" % (backend, b, what))


@case("run")
def shared_annotations(d):
    r = rng(3)
    q, a = f32(r.standard_normal((2, 3, 4))), f32(r.standard_normal((5, 4)))
    save(d, "q.npy", q)
    save(d, "a.npy", a)
    (s, w, c, l), _ = run_all_outputs(d, ["--queries", "q.npy", "--annotations", "a.npy"])
    for b in range(2):
        close(c[b], attention_numpy(q[b], a)[2], "shared annotations, set %d context" % b)


@case("run")
def variable_lengths(d):
    r = rng(4)
    qo, ao = np.array([0, 2, 2, 5, 6], np.int32), np.array([0, 3, 7, 7, 8], np.int32)
    q, a, v = f32(r.standard_normal((6, 3))), f32(r.standard_normal((8, 3))), f32(
        r.standard_normal((8, 2)))
    for name, arr in (("q", q), ("a", a), ("v", v), ("qo", qo), ("ao", ao)):
        save(d, name + ".npy", arr)
    for backend in BACKENDS:
        (s, w, c, l), _ = run_all_outputs(
            d, ["--queries", "q.npy", "--annotations", "a.npy", "--values", "v.npy",
                "--query-offsets", "qo.npy", "--annotation-offsets", "ao.npy"], backend)
        check(s.shape == (6, 4) and c.shape == (6, 2) and l.shape == (6,), "varlen shapes")
        for b in range(4):
            rows, cols = slice(qo[b], qo[b + 1]), slice(ao[b], ao[b + 1])
            ref = attention_numpy(q[rows], a[cols], v[cols])
            nb = ao[b + 1] - ao[b]
            close(s[rows, :nb], ref[0], "%s set %d scores" % (backend, b))
            close(w[rows, :nb], ref[1], "%s set %d weights" % (backend, b))
            close(c[rows], ref[2], "%s set %d context" % (backend, b))
            close(l[rows], ref[3], "%s set %d lse" % (backend, b))
            check(np.all(s[rows, nb:] == -np.inf) and np.all(w[rows, nb:] == 0),
                  "varlen padding must be -inf scores and 0 weights")


@case("run")
def npy_versions_2_and_3(d):
    r = rng(5)
    q, a = f32(r.standard_normal((3, 4))), f32(r.standard_normal((5, 4)))
    for name, arr, version in (("q.npy", q, (2, 0)), ("a.npy", a, (3, 0))):
        with open(os.path.join(d, name), "wb") as f:
            np.lib.format.write_array(f, arr, version=version)
    (s, w, c, l), _ = run_all_outputs(d, ["--queries", "q.npy", "--annotations", "a.npy"])
    close(c, attention_numpy(q, a)[2], "context from version 2.0/3.0 files")


# ---------------------------------------------------------------------------------------------
# attn compare
# ---------------------------------------------------------------------------------------------

def compare_rows(out):
    """{(output, backend): fields} from compare's table."""
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 9 and f[0] in ("context", "scores", "weights", "lse"):
            rows[(f[0], f[1])] = f
    return rows


@case("compare")
def compare_walkthrough(d):
    save(d, "q.npy", f32([WALK_Q, [1, 2, 3]]))
    save(d, "a.npy", f32(WALK_A))
    p = attn(["compare", "--queries", "q.npy", "--annotations", "a.npy"], d)
    rows = compare_rows(p.stdout)
    for out in ("context", "scores", "weights", "lse"):
        check((out, "cpu") in rows, "compare lists no %s row for cpu:\n%s" % (out, p.stdout))
        f = rows[(out, "cpu")]
        allowed = 0.0 if f[7] == "exact" else float(f[7])
        check(f[-1] == "ok" and float(f[2]) <= allowed * (1 + 1e-2),
              "compare row %s is not within its allowance" % f)
    check("every backend within the tolerance" in p.stdout, p.stdout)
    if CUDA_BUILT == "OFF":
        check("built without CUDA" in p.stdout, "compare must say CUDA is not built:\n" + p.stdout)
    for backend in ("reference", "cpu"):
        check(any(l.startswith(backend) and " ms " in l for l in p.stdout.splitlines()),
              "compare shows no time for " + backend)


@case("compare")
def compare_every_layout(d):
    r = rng(6)
    save(d, "q3.npy", f32(r.standard_normal((2, 5, 8)) * 30))  # scores in the hundreds
    save(d, "a3.npy", f32(r.standard_normal((2, 7, 8))))
    save(d, "len.npy", np.array([7, 2], np.int32))
    save(d, "WQ.npy", f32(r.standard_normal((4, 8))))
    save(d, "WA.npy", f32(r.standard_normal((4, 8))))
    save(d, "VV.npy", f32(r.standard_normal(4)))
    save(d, "q.npy", f32(r.standard_normal((6, 8))))
    save(d, "a.npy", f32(r.standard_normal((9, 8))))
    save(d, "qo.npy", np.array([0, 4, 6], np.int64))
    save(d, "ao.npy", np.array([0, 0, 9], np.int64))
    runs = [
        ["--queries", "q3.npy", "--annotations", "a3.npy", "--lengths", "len.npy"],
        ["--queries", "q3.npy", "--annotations", "a3.npy", "--score", "additive", "--wq",
         "WQ.npy", "--wa", "WA.npy", "--v", "VV.npy"],
        ["--queries", "q.npy", "--annotations", "a.npy", "--query-offsets", "qo.npy",
         "--annotation-offsets", "ao.npy", "--score", "scaled"],
        ["--queries", "q3.npy", "--annotations", "a3.npy", "--context-only", "--repeat", "1"],
    ]
    for args in runs:
        p = attn(["compare"] + args, d)
        rows = compare_rows(p.stdout)
        check(("context", "cpu") in rows and ("lse", "cpu") in rows, p.stdout)
        check(("--context-only" in args) == (("weights", "cpu") not in rows),
              "--context-only decides whether weights are compared:\n" + p.stdout)


@case("compare")
def compare_exact_fails_on_rounding_differences(d):
    # An fp32 backend rounds differently from the double-accumulating reference somewhere in
    # 40 x 300 dot products of width 64: --exact (zero tolerance) must report it with status 1,
    # while the documented tolerance accepts it.
    r = rng(10)
    save(d, "q.npy", f32(r.standard_normal((40, 64))))
    save(d, "a.npy", f32(r.standard_normal((300, 64))))
    args = ["compare", "--queries", "q.npy", "--annotations", "a.npy", "--repeat", "1"]
    attn(args, d)
    p = attn(args + ["--exact"], d, expect=1)
    rows = compare_rows(p.stdout)
    check(rows[("context", "cpu")][-1] == "FAIL", "--exact passes a rounded context:\n" + p.stdout)
    check("FAIL: some backend is outside the tolerance" in p.stdout, p.stdout)


@case("compare")
def compare_bad_input(d):
    save(d, "q.npy", f32([[1, 2, 3]]))
    save(d, "a.npy", f32([[1, 2]]))
    p = attn(["compare", "--queries", "q.npy", "--annotations", "a.npy"], d, expect=2)
    check("a.npy" in p.stderr and "q.npy" in p.stderr, p.stderr)


# ---------------------------------------------------------------------------------------------
# heatmaps
# ---------------------------------------------------------------------------------------------

# heatmap.h: the picture's size follows from the drawn grid.
LEFT, RIGHT, TOP, BOTTOM, MAX_CELLS = 80, 110, 40, 60, 64


def picture_size(rows, cols):
    def side(k):
        block = -(-k // MAX_CELLS) if k > MAX_CELLS else 1
        return -(-k // block)
    r, c = side(rows), side(cols)
    big = max(r, c)
    cell = 48 if big <= 12 else min(48, max(6, 720 // big))
    return LEFT + c * cell + RIGHT, TOP + r * cell + BOTTOM


def png_size(path):
    """Width and height of a PNG, after checking its chunks, CRCs and pixel data length."""
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", path + ": no PNG signature")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        check(zlib.crc32(kind + body) == crc, "%s: bad CRC in chunk %s" % (path, kind))
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
        if kind == b"IEND":
            break
    check(ihdr is not None and pos == len(data), path + ": missing IHDR or IEND")
    width, height, depth, color = ihdr[:4]
    channels = {2: 3, 6: 4}.get(color)
    check(depth == 8 and channels, "%s: unexpected PNG format %s" % (path, ihdr))
    check(len(zlib.decompress(idat)) == height * (1 + channels * width),
          path + ": pixel data does not match the size")
    return width, height


def svg_size(path):
    root = ET.parse(path).getroot()
    check(root.tag.endswith("svg"), path + ": root element is not <svg>")
    def number(text):
        for unit in ("px", "pt"):
            text = text[:-len(unit)] if text.endswith(unit) else text
        return int(round(float(text)))
    return number(root.get("width")), number(root.get("height"))


def has_cairo(d):
    return "cairo:     yes" in attn(["info"], d).stdout


@case("heatmap")
def heatmap_pictures(d):
    r = rng(7)
    save(d, "q.npy", f32(r.standard_normal((6, 8))))
    save(d, "a.npy", f32(r.standard_normal((10, 8))))
    save(d, "qbig.npy", f32(r.standard_normal((200, 16))))
    save(d, "abig.npy", f32(r.standard_normal((300, 16))))
    save(d, "q1.npy", f32(WALK_Q))
    save(d, "a1.npy", f32(WALK_A))
    if not has_cairo(d):
        p = attn(["run", "--queries", "q.npy", "--annotations", "a.npy", "--out", "c.npy",
                  "--heatmap", "w.png"], d, expect=2)
        check("heatmaps need cairo" in p.stderr, p.stderr)
        check(not os.path.exists(os.path.join(d, "c.npy")), "output written without cairo")
        return
    cases = [("q.npy", "a.npy", 6, 10, "w.png"), ("q.npy", "a.npy", 6, 10, "w.svg"),
             ("qbig.npy", "abig.npy", 200, 300, "big.png"),
             ("qbig.npy", "abig.npy", 200, 300, "big.svg"), ("q1.npy", "a1.npy", 1, 4, "walk.png")]
    for qf, af, rows, cols, pic in cases:
        attn(["run", "--queries", qf, "--annotations", af, "--out", "c.npy", "--heatmap", pic,
              "--palette", "purple"], d)
        path = os.path.join(d, pic)
        size = png_size(path) if pic.endswith(".png") else svg_size(path)
        check(size == picture_size(rows, cols),
              "%s: size %s, expected %s" % (pic, size, picture_size(rows, cols)))


@case("heatmap")
def heatmap_of_one_set(d):
    r = rng(8)
    save(d, "q.npy", f32(r.standard_normal((3, 2, 4))))
    save(d, "a.npy", f32(r.standard_normal((3, 5, 4))))
    if has_cairo(d):
        attn(["run", "--queries", "q.npy", "--annotations", "a.npy", "--out", "c.npy", "--heatmap",
              "set2.png", "--set", "2"], d)
        check(png_size(os.path.join(d, "set2.png")) == picture_size(2, 5), "set 2 picture size")
    p = attn(["run", "--queries", "q.npy", "--annotations", "a.npy", "--out", "c.npy", "--set",
              "3", "--show"], d, expect=2)
    check("--set" in p.stderr, p.stderr)


@case("heatmap")
def terminal_preview(d):
    save(d, "q.npy", f32([WALK_Q, [1, 2, 3], [0, 0, 1]]))
    save(d, "a.npy", f32(WALK_A))
    p = attn(["run", "--queries", "q.npy", "--annotations", "a.npy", "--out", "c.npy", "--show"],
             d)
    check("\x1b[38;5;" in p.stdout and "\u2580" in p.stdout and "\x1b[0m" in p.stdout,
          "--show prints no 256-colour half blocks:\n" + p.stdout)
    check("attention weights: 3 x 4" in p.stdout, p.stdout)
    check(not os.path.exists(os.path.join(d, "w.npy")), "--show wrote a weights file")


@case("heatmap")
def heatmap_bad_name(d):
    save(d, "q.npy", f32([WALK_Q]))
    save(d, "a.npy", f32(WALK_A))
    p = attn(["run", "--queries", "q.npy", "--annotations", "a.npy", "--out", "c.npy",
              "--heatmap", "w.jpg"], d, expect=2)
    check("w.jpg" in p.stderr, p.stderr)
    check(sorted(os.listdir(d)) == ["a.npy", "q.npy"], "files left: %s" % os.listdir(d))


# ---------------------------------------------------------------------------------------------
# bad files: exit status 2, a message naming the file and the problem, no output at all
# ---------------------------------------------------------------------------------------------

def npy_bytes(descr="<f4", shape=(1, 3), fortran="False", data=None, version=(1, 0),
              magic=b"\x93NUMPY", header=None):
    if header is None:
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran,
                                                                          repr(tuple(shape)))
    header = header.encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    if version[0] == 1:
        prefix = magic + bytes(version) + struct.pack("<H", len(header))
    else:
        prefix = magic + bytes(version) + struct.pack("<I", len(header))
    if data is None:
        count = int(np.prod(shape)) if len(shape) else 1
        data = b"\0" * (count * 4)
    return prefix + header + data


BAD_QUERIES = [
    ("bad magic", b"NOTNUMPY" + b"\0" * 100, "bad magic"),
    ("empty file", b"", "bad magic"),
    ("version 4.0", npy_bytes(version=(4, 0)), "unsupported .npy version 4.0"),
    ("complex dtype", npy_bytes(descr="<c8"), "unsupported dtype '<c8'"),
    ("big-endian", npy_bytes(descr=">f4"), "unsupported dtype '>f4'"),
    ("float16", npy_bytes(descr="<f2"), "unsupported dtype '<f2'"),
    ("fortran order", npy_bytes(fortran="True"), "fortran_order True"),
    ("data longer than shape", npy_bytes(data=b"\0" * 16), "does not match the data length"),
    ("truncated data", npy_bytes(data=b"\0" * 8), "truncated data"),
    ("2^60 elements", npy_bytes(shape=(2 ** 60,), data=b"\0" * 16), "truncated data"),
    ("byte count overflow", npy_bytes(descr="<f8", shape=(2 ** 61,), data=b"\0" * 8),
     "overflow the byte count"),
    ("element count overflow", npy_bytes(shape=(2 ** 40, 2 ** 40), data=b""),
     "overflows 64 bits"),
    ("truncated header", npy_bytes()[:30], "truncated header"),
    ("missing key", npy_bytes(header="{'descr': '<f4', 'fortran_order': False, }"),
     "missing key 'shape'"),
    ("duplicate key", npy_bytes(header="{'descr': '<f4', 'descr': '<f4', 'fortran_order': False,"
                                       " 'shape': (1, 3), }"), "given twice"),
    ("unknown key", npy_bytes(header="{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3),"
                                     " 'x': 1}"), "unknown key 'x'"),
    ("negative dim", npy_bytes(header="{'descr': '<f4', 'fortran_order': False, "
                                      "'shape': (-1, 3), }"), "non-negative integers"),
    ("structured dtype", npy_bytes(header="{'descr': [('a', '<f4')], 'fortran_order': False, "
                                          "'shape': (1, 3), }"), "structured"),
    ("integer queries", npy_bytes(descr="<i4"), "must be float32 or float64, not int32"),
    ("4-D queries", npy_bytes(shape=(1, 1, 1, 3)), "queries must be"),
]


def assert_no_outputs(d, inputs):
    left = sorted(set(os.listdir(d)) - set(inputs))
    check(not left, "files written despite the error: %s" % left)


@case("badfiles")
def bad_query_files(d):
    save(d, "a.npy", f32(WALK_A))
    for name, data, message in BAD_QUERIES:
        with open(os.path.join(d, "bad.npy"), "wb") as f:
            f.write(data)
        p = attn(["run", "--queries", "bad.npy", "--annotations", "a.npy", "--out", "c.npy",
                  "--weights", "w.npy"], d, expect=2)
        check("bad.npy" in p.stderr and message in p.stderr,
              "%s: message should name bad.npy and say '%s':\n%s" % (name, message, p.stderr))
        assert_no_outputs(d, ["a.npy", "bad.npy"])


@case("badfiles")
def files_that_disagree(d):
    r = rng(9)
    save(d, "q.npy", f32(r.standard_normal((2, 3))))
    save(d, "q3.npy", f32(r.standard_normal((2, 2, 3))))
    save(d, "a.npy", f32(r.standard_normal((4, 3))))
    save(d, "a4.npy", f32(r.standard_normal((4, 4))))
    save(d, "a3.npy", f32(r.standard_normal((3, 4, 3))))
    save(d, "v5.npy", f32(r.standard_normal((5, 2))))
    save(d, "lenf.npy", f32([1]))
    save(d, "len2.npy", np.array([1, 2], np.int32))
    save(d, "lenbig.npy", np.array([2 ** 40], np.int64))
    save(d, "len9.npy", np.array([9], np.int32))
    save(d, "qo.npy", np.array([0, 2], np.int32))
    save(d, "ao.npy", np.array([0, 3, 4], np.int32))
    save(d, "aodec.npy", np.array([0, 5], np.int32))
    # Offsets far past the annotations or negative: refused at once, before they size outputs.
    save(d, "qo2.npy", np.array([0, 1, 2], np.int32))
    save(d, "aohuge.npy", np.array([0, 3, 2000000000], np.int32))
    save(d, "aoneg.npy", np.array([-2147483647, 3, 4], np.int32))
    save(d, "W.npy", f32(np.eye(4)))
    inputs = sorted(os.listdir(d))
    cases = [
        (["--annotations", "a4.npy"], ["a4.npy", "q.npy", "width"]),
        (["--annotations", "a.npy", "--values", "v5.npy"], ["v5.npy", "a.npy"]),
        (["--queries", "q3.npy", "--annotations", "a3.npy"], ["a3.npy", "q3.npy"]),
        (["--annotations", "a.npy", "--lengths", "lenf.npy"], ["lenf.npy", "int32 or int64"]),
        (["--annotations", "a.npy", "--lengths", "len2.npy"], ["len2.npy", "one entry per set"]),
        (["--annotations", "a.npy", "--lengths", "lenbig.npy"], ["lenbig.npy", "int32"]),
        (["--annotations", "a.npy", "--lengths", "len9.npy"], ["length"]),  # the library's check
        (["--annotations", "a.npy", "--query-offsets", "qo.npy", "--annotation-offsets",
          "ao.npy"], ["ao.npy", "qo.npy"]),
        (["--annotations", "a.npy", "--query-offsets", "qo.npy", "--annotation-offsets",
          "aodec.npy"], ["aodec.npy", "annotation offsets"]),
        (["--annotations", "a.npy", "--query-offsets", "qo2.npy", "--annotation-offsets",
          "aohuge.npy"], ["aohuge.npy", "annotation offsets"]),
        (["--annotations", "a.npy", "--query-offsets", "qo2.npy", "--annotation-offsets",
          "aoneg.npy"], ["aoneg.npy", "annotation offsets"]),
        (["--annotations", "a.npy", "--query-offsets", "qo.npy"], ["go together"]),
        (["--annotations", "a.npy", "--score", "general", "--w", "W.npy"], ["W.npy", "W must be"]),
        (["--annotations", "a.npy", "--score", "general"], ["needs --w"]),
        (["--annotations", "a.npy", "--w", "W.npy"], ["--w does not apply"]),
        (["--annotations", "a.npy", "--score", "cosine"], ["cosine"]),
        (["--annotations", "missing.npy"], ["missing.npy", "cannot open"]),
        (["--annotations", "a.npy", "--backend", "gpu"], ["gpu"]),
        (["--annotations", "a.npy", "--bogus", "1"], ["--bogus"]),
    ]
    for args, words in cases:
        full = ["run", "--queries", "q.npy"] + args + ["--out", "c.npy", "--lse", "l.npy"]
        if "--queries" in args:
            full = ["run"] + args + ["--out", "c.npy", "--lse", "l.npy"]
        p = attn(full, d, expect=2)
        for word in words:
            check(word in p.stderr, "%s: message should contain '%s':\n%s" % (args, word,
                                                                               p.stderr))
        assert_no_outputs(d, inputs)
    # With scores asked for, the bad offsets would have sized them (16 GB for aohuge): the
    # tool refuses them itself, naming the file, before it allocates anything.
    for ao in ("aohuge.npy", "aoneg.npy"):
        p = attn(["run", "--queries", "q.npy", "--annotations", "a.npy", "--query-offsets",
                  "qo2.npy", "--annotation-offsets", ao, "--out", "c.npy", "--scores", "s.npy"],
                 d, expect=2)
        check(ao + ": annotation offsets must rise" in p.stderr, p.stderr)
        assert_no_outputs(d, inputs)
    p = attn(["run", "--queries", "q.npy", "--annotations", "a.npy"], d, expect=2)
    check("--out" in p.stderr, p.stderr)
    # Two outputs to one file.
    p = attn(["run", "--queries", "q.npy", "--annotations", "a.npy", "--out", "c.npy",
              "--lse", "l.npy", "--weights", "c.npy"], d, expect=2)
    check("--weights c.npy: the same file as --out" in p.stderr, p.stderr)
    assert_no_outputs(d, inputs)
    # Two names of one existing file.
    p = attn(["run", "--queries", "q.npy", "--annotations", "a.npy", "--out", "./a.npy",
              "--lse", "l.npy", "--weights", "a.npy"], d, expect=2)
    check("--weights a.npy: the same file as --out" in p.stderr, p.stderr)
    assert_no_outputs(d, inputs)


@case("badfiles")
def unwritable_outputs(d):
    save(d, "q.npy", f32([WALK_Q]))
    save(d, "a.npy", f32(WALK_A))
    p = attn(["run", "--queries", "q.npy", "--annotations", "a.npy", "--out", "c.npy",
              "--weights", "nodir/w.npy"], d, expect=2)
    check("nodir/w.npy" in p.stderr, p.stderr)
    assert_no_outputs(d, ["a.npy", "q.npy"])  # c.npy was written to a temporary file, then removed
    os.mkdir(os.path.join(d, "out.npy"))
    p = attn(["run", "--queries", "q.npy", "--annotations", "a.npy", "--out", "out.npy"], d,
             expect=2)
    check("out.npy" in p.stderr, p.stderr)
    assert_no_outputs(d, ["a.npy", "q.npy", "out.npy"])


# ---------------------------------------------------------------------------------------------
# bench and info
# ---------------------------------------------------------------------------------------------

@case("bench")
def bench_json(d):
    p = attn(["bench", "--shape", "2,3,5,4", "--backend", "reference,cpu", "--repeat", "3",
              "--json"], d)
    report = json.loads(p.stdout)
    results = report["results"]
    check([r["backend"] for r in results] == ["reference", "cpu"], str(results))
    for r in results:
        check(r["ok"] and (r["batch"], r["m"], r["n"], r["d"]) == (2, 3, 5, 4), str(r))
        check(0 < r["min_s"] <= r["median_s"] and r["gbps"] > 0 and r["gflops"] > 0, str(r))
        check(r["copy_fraction"] is not None and r["copy_fraction"] > 0, str(r))
        check("sgemm_fraction" in r and (r["sgemm_fraction"] is None or r["sgemm_fraction"] > 0),
              str(r))
    check(report["host_copy_gbps"] > 0 and report["repeat"] == 3, str(report))


@case("bench")
def bench_text_and_errors(d):
    p = attn(["bench", "--shape", "latency", "--backend", "cpu", "--repeat", "2", "--progress"], d)
    check(any(l.startswith("cpu") and "latency" in l for l in p.stdout.splitlines()), p.stdout)
    check("bench: [1/1]" in p.stderr, "no progress line:\n" + p.stderr)
    h = attn(["bench", "--help"], d)
    for name in ("decode-256", "gemm-8k", "walkthrough-1m", "long-32k"):
        check(name in h.stdout, "bench --help lists no " + name)
    attn(["bench", "--shape", "0,1,1,1"], d, expect=2)
    attn(["bench", "--suite", "tpu"], d, expect=2)
    attn(["bench", "--backend", "auto"], d, expect=2)


@case("info")
def info(d):
    p = attn(["info"], d)
    check("attn 0.1.0" in p.stdout and "auto:" in p.stdout, p.stdout)
    if CUDA_BUILT is not None:
        expect = "cuda:      on" if CUDA_BUILT == "ON" else "cuda:      off"
        check(expect in p.stdout, "info should say '%s':\n%s" % (expect, p.stdout))
    # The algorithm AUTO's context runs: ATTN_ALGO's when it names one (empty names none).
    p = attn(["info"], d, env={"ATTN_ALGO": ""})
    check("algorithm: auto\n" in p.stdout, p.stdout)
    p = attn(["info"], d, env={"ATTN_ALGO": "gemm"})
    check("algorithm: gemm (ATTN_ALGO)\n" in p.stdout, p.stdout)
    p = attn(["info"], d, env={"ATTN_ALGO": "fastest"}, expect=2)
    check("ATTN_ALGO: 'fastest'" in p.stderr, p.stderr)
    attn(["info", "--verbose"], d, expect=2)
    attn(["frobnicate"], d, expect=2)
    check("run" in attn(["--help"], d).stdout, "attn --help lists no commands")


def main():
    global ATTN, CUDA_BUILT
    ap = argparse.ArgumentParser()
    ap.add_argument("--attn", required=True)
    ap.add_argument("--group", required=True, choices=sorted(CASES))
    ap.add_argument("--cuda", choices=["ON", "OFF"])
    args = ap.parse_args()
    ATTN, CUDA_BUILT = os.path.abspath(args.attn), args.cuda
    failed = 0
    for fn in CASES[args.group]:
        with tempfile.TemporaryDirectory(prefix="attn-cli-") as d:
            try:
                fn(d)
                print("PASS %s" % fn.__name__)
            except Failure as e:
                failed += 1
                print("FAIL %s: %s" % (fn.__name__, e))
    print("%d of %d cases failed" % (failed, len(CASES[args.group])))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
