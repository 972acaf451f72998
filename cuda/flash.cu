/*
 * flash.cu - the plan and launch of the one-pass forward for calls that want only the context (and
 * maybe the lse): an online softmax over the annotations, read once, with long sets split across
 * blocks and merged by a combine kernel (flash-decoding).
 *
 * The arithmetic is fixed, so that every variant, tiling and split gives the same bits (which is
 * what lets the dispatcher choose among them by shape without breaking batch invariance). For a
 * query q of set b with valid annotations 0 .. L-1:
 *
 *   score  s_j = scale * fma-chain over t of q'_t a'_jt       (t in order; additive: the chain
 *                                                             of v_t tanh(q'_t + a'_jt), no scale)
 *   chunk  rows [32 c, 32 c + 32) of a span: m = max_j s_j, p_j = exp(s_j - m) (0 when m = -inf),
 *          l = sum_j p_j (j in order) and x_col = fma-chain over j of p_j v_j,col (j in order)
 *   span   rows [256 u, 256 u + 256) of the set: the chunks folded in order into (-inf, 0, 0)
 *   total  the spans folded in order into (-inf, 0, 0)
 *   fold   (M, S, X) with (m, l, x): M' = max(M, m); a = exp(M - M'), b = exp(m - M') (both 1
 *          when M' = -inf); S' = S a + l b; X' = X a + x b, each product rounded on its own
 *   output c_col = X_col / S and lse = M + log S; zero context and lse = -inf when M = -inf.
 *
 * NaN in a score makes M NaN and so the whole row NaN; +inf gives NaN as in the reference.
 * Annotations past a set's valid length are never read.
 *
 * Variants (flash.cuh has the plan's interface; each kernel file's top comment says how its
 * kernels work, and flash_kernels.cuh holds what they share):
 *   THREAD  a thread per query row, everything in registers (k and dv at most 16), and the
 *           short-set kernel for k, dv <= 4 and sets of at most 8: millions of tiny queries
 *           (flash_thread.cu).
 *   BLOCK   a block per tile of 1 or 8 queries of one set, the stages of annotation rows in
 *           shared memory (flash_block.cu).
 *   TILE    a block per tile of 64, 32 or 16 queries of one set (uniform batches, dot-like
 *           scores), register-blocked like an SGEMM (flash_tile.cu).
 *   WARP    a warp per query row (dv at most 256), everything in registers (flash_warp.cu).
 *   STREAM  WARP with each chunk of annotation rows staged in shared memory by cp.async
 *           (dot-like scores, d <= 256, dv <= 256, 16-byte aligned rows; flash_warp.cu); AUTO
 *           takes it up to dv = 128 only (above, it is unmeasured).
 *   TC      the exception to the fixed arithmetic above, run only when ATTN_CU_FLASH forces it
 *           (plans tc, splittc): TILE<64> with both products on the tensor cores in 3xTF32
 *           (flash_tile.cu).
 * With plan.spans > 1 (few tiles or rows, long sets) each span of a set gets blocks of its own
 * (BLOCK, TILE, TC, WARP, STREAM), which write its (M, S, X) to the workspace, and the combine
 * kernel (flash_combine.cu) folds them in order.
 * No atomics anywhere: deterministic run to run.
 */
#include "flash_kernels.cuh"
#include "flash_plans.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The plan's thresholds. Measured on an H100 (80 GB HBM3, 132 SMs) by bench/gpu-sweep.sh, every
 * plan forced on 34 shapes (the second of two runs, commit 687a5b1: bench/README.md has its
 * table; medians in ms of each plan itself, "split" the plan with its spans on blocks of their
 * own), where an earlier H200 sweep had placed them elsewhere. A third H100 sweep (commit
 * 5196610, 2026-11-27) agreed with every choice below within 6%, but for TILE<32>, which it
 * placed, and the exceptions named here (9% to 33% slower than the fastest plan). A fourth
 * (commit 644377c, 2026-11-28, 41 shapes; only each shape's fastest plan and AUTO's time came
 * back) moved TILE's tile sizes, below:
 *   - THREAD beats TILE while a thread's walk over the annotations is short: with k, dv <= 4
 *     (THREAD<4>) at n = 4 (0.0163 against 0.476) and n = 32 (0.0555 against 0.365); the 16-wide
 *     THREAD at n = 16 (1 x 200000 x 16 x 16: 0.0821 against 0.141) and n = 32 (1 x 200000 x 32 x
 *     16: 0.108 against 0.163) but not at n = 64 (1 x 20000 x 64 x 8: 0.0461 against 0.0338).
 *   - TILE, split when needed, beats every other plan from 16 queries a set (but WARP split on 1 x
 *     2000 x 64 x 8, a call too small to fill the GPU: 0.0112 against TILE<16>'s 0.0149, the third
 *     sweep 0.0109 against 0.0146, the fourth 0.0110 against 0.0146, left as it is), and from 4
 *     where the sets are long: 128 sets of 8 x 1024 x 128 TILE<16> split 0.106 against BLOCK<8>
 *     split 0.166 and WARP split 0.190; 256 sets of 4 x 1024: 0.179 against WARP split 0.191 and
 *     STREAM split 0.220. On short sets it loses (4096 sets of 4 x 64 x 64: 0.251 against STREAM
 *     0.106), and at 2 queries a set WARP leads (2048 x 2 x 1024 x 256: 1.58 against 2.37).
 *     Lengths between 64 and 1024 are not measured.
 *   - Tile sizes. A set of m queries costs TILE<QT> ceil(m / QT) tiles of QT rows; TILE<64> and
 *     TILE<32> compute 8 x 8 scores a thread against TILE<16>'s 8 x 4, so the larger tile wins
 *     where it computes no more rows, or few more, and its blocks (tiles times spans, where
 *     split) still reach every multiprocessor:
 *       - TILE<64> from 33 queries a set, where it computes 64 rows as TILE<32> does and TILE<16>
 *         48 (fourth sweep, 64 sets of 40 x 1024 x 128: 0.0982 against TILE<16>'s 0.1137; third,
 *         64 sets of 48: 0.1007 against TILE<16> 0.113 and TILE<32> 0.115);
 *       - TILE<32> from 17, where it computes no more rows than TILE<16> (64 sets of 32 x 1024 x
 *         128, 256 blocks: 0.0620 against TILE<16> 0.0803 and TILE<64> 0.0956), and above 32 where
 *         TILE<64>'s blocks fall short of the multiprocessors: 1 x 2048 x 1024 x 128 (TILE<64>: 128
 *         blocks) 0.0586 against TILE<64>'s 0.0673, 1 x 2048 x 1024 x 256 0.0995 against 0.107, 1 x
 *         8192 x 256 x 128 0.0542 against 0.0611;
 *       - TILE<16> elsewhere: TILE<32> at 128 blocks loses to it too (64 sets of 24 x 512 x
 *         64: 0.0411 against 0.0474), and where neither larger tile has a block a multiprocessor:
 *         1 x 64 x 4096 x 128 (TILE<64> 16 blocks) 0.0318 against 0.0674, 1 x 256 x 4096 x 128
 *         (64) 0.0425 against 0.0681, 1 x 4096 x 256 x 16 (64) 0.0290 against 0.0349, 1 x 2000 x
 *         64 x 8 (32) 0.0149 against 0.0170.
 *     At k <= 64 TILE<32> trails TILE<64> even with twice its blocks (1 x 8192 x 1024 x 64: 0.185
 *     against 0.113, 1024 blocks against 512), though it beats TILE<16> (0.247), and TILE<64> wins
 *     with more than half the multiprocessors: 1 x 6144 x 256 x 64 (96 blocks) 0.0398 against
 *     TILE<32>'s 0.0478 and TILE<16>'s 0.0657. Where TILE<64> has at most half, TILE<32> with a
 *     block a multiprocessor is the rule's choice, unmeasured at k <= 64 (as is k between 64 and
 *     128). From one block a multiprocessor TILE<64> leads (256 blocks, 1 x 1024 x 4096 x 128:
 *     0.102 against TILE<32> 0.120 and TILE<16> 0.143).
 *   - STREAM, split, beats WARP and BLOCK<1> below 4 queries a set (or 16 on short sets) from 2
 *     query rows a call: decode 4096 x 1 x 1024 x 128 0.804 against WARP 1.16 and BLOCK<1> split
 *     1.31 (unsplit STREAM 0.839); 1024 x 1 x 4096 x 128 0.808 against 1.16 and 1.38; 4096 x 1 x
 *     256 x 128 0.230 against 0.300 and 0.337; 4 x 1 x 32768 x 128 0.0505 against 0.0652 and
 *     0.0769; 2 x 1 x 32768 x 128 0.0448 against 0.0594 and 0.0465. With one row (1 x 1 x 262144 x
 *     128) BLOCK<1> split leads, 0.133 against 0.142. But where STREAM's warps (rows times spans)
 *     need more than one wave of its blocks (three a multiprocessor at d = dv = 128 with the values
 *     the annotations, one with values of their own: its shared memory) and WARP's fit in one (16 a
 *     multiprocessor), WARP leads: 256 x 1 x 1024 x 128 (1024 warps against 792 and 2112 places),
 *     WARP split 0.0801 against STREAM split 0.0916. (The estimate takes both as split into every
 *     span; where a split does not happen, at exactly 16 warps a multiprocessor or past the
 *     partials' 128 MiB, it may keep STREAM where WARP would fit.)
 *   - Where AUTO does not run STREAM (dv > 128, other score forms, unaligned rows), WARP from 64
 * query rows a call, else BLOCK<1> (H100: decode WARP 1.16 against BLOCK<1> split 1.31, 2048 x 2 x
 *     1024 x 256 1.58 against 2.30, but 4096 x 1 x 1024 x 256 WARP 3.35 (split 3.24) against
 *     BLOCK<1> split 2.98, the third sweep 3.33, 3.23 and 2.96, left as it is; H200, 4 x 1 x 32768
 *     x 128: 0.086 against 0.079). The fourth sweep: 4096 x 1 x 1024 x 256 again (BLOCK<1> split
 *     2.97 against WARP 3.34), 4096 x 1 x 512 x 256 (1.50 against WARP 1.66), and 1024 x 1 x 4096
 *     x 256, where WARP unsplit took 2.82 against AUTO's WARP split 3.22 (on the H200 split WARP
 *     led at 1024 x 1 x 4096 x 128, below). Left as they are until a sweep's full rows come back:
 *     every plan on these shapes reads its annotations at 1.3 to 1.5 TB/s, half the copy rate, so
 *     the gain is in a plan for dv > 128 (STREAM<2>, forced only until a sweep times it), not in
 *     choosing between these.
 *   - BLOCK<8> from 8 queries a set where TILE does not run (additive scores, query offsets, short
 *     sets). */
#define FLASH_THREAD4_MAX_N     32   /* THREAD<4> first: sets of at most this many annotations */
#define FLASH_THREAD_MAX_N      32   /* the 16-wide THREAD first: likewise */
#define FLASH_TILE_MIN_Q        16   /* TILE: queries a set from which it runs ... */
#define FLASH_TILE_LONG_MIN_Q   4    /* ... or from this many where ... */
#define FLASH_TILE_LONG_MIN_N   1024 /* ... the sets have this many annotations */
#define FLASH_BLOCK8_MIN_Q      8    /* BLOCK<8>: queries a set from which it runs */
#define FLASH_TILE64_MIN_Q      33   /* TILE<64> from here with a block an SM, ... */
#define FLASH_TILE64_SMALL_K    64   /* ... or at k up to this with blocks > SMs / 2; ... */
#define FLASH_TILE32_MIN_Q      16   /* ... else TILE<32> above this with a block an SM */
#define FLASH_STREAM_MIN_ROWS   2    /* STREAM (split) instead of WARP or BLOCK<1> from here */
#define FLASH_STREAM_MAX_BLOCKS 8   /* STREAM's blocks a multiprocessor, at most, in the estimate */
#define FLASH_STREAM_AUTO_DV    128 /* STREAM in AUTO up to this dv (above: forced only) */
#define FLASH_WARP_MIN_ROWS     64  /* WARP instead of BLOCK<1> from this many query rows a call */
/* Splitting: below 4 tiles (BLOCK, TILE) or 16 warps (WARP) a multiprocessor; STREAM always (see
 * above). WARP on the H200: 4096 x 1 x 1024 x 128 unsplit 0.976 against 0.989 split; 1024 x 1 x
 * 4096 x 128 split 0.975 against 1.162 unsplit. */
/* BLOCK: dynamic shared memory for the span accumulators [tile x dv] (the static part is about
 * 19 KiB; the sum stays under the 48 KiB every launch may use without opting in). */
#define FLASH_ACC_BYTES (24 * 1024)
/* Largest workspace for span partials, in floats (128 MiB: the 8192-query, 4-span split of the
 * benchmark's shared-annotation shape with dv = 512 needs 64.2 MiB). */
#define FLASH_MAX_PARTIAL_FLOATS ((size_t)1 << 25)

/* ---------------------------------------------------------------------------------------- */
/* Plan and launch                                                                           */
/* ---------------------------------------------------------------------------------------- */

static int64_t tiles_of(const attn_cu_layout &l, int tile) {
  return l.qo ? (l.m + tile - 1) / tile : l.batch * ((l.m + tile - 1) / tile);
}

/* The plan ATTN_CU_FLASH forces (tests only): known is false when the variable is unset, empty
 * or names no plan; strict when the name ends in '!'. */
struct flash_forced {
  bool known, strict, split;
  attn_cu_flash_variant variant;
  int tile;
};
/* The plans of flash_plans.h by name: what ATTN_CU_FLASH names, and attn_cuda_flash_plan_name
 * gives. */
static const struct {
  const char *name;
  attn_cu_flash_variant variant;
  int tile;
  bool split;
} flash_plan_rows[] = {
#define FLASH_PLAN_ROW(name, variant, tile, split)                                                 \
  {#name, ATTN_CU_FLASH_##variant, tile, split != 0},
    ATTN_FLASH_PLANS(FLASH_PLAN_ROW) ATTN_FLASH_TC_PLANS(FLASH_PLAN_ROW)
#undef FLASH_PLAN_ROW
};

static flash_forced flash_force() {
  flash_forced f = {false, false, false, ATTN_CU_FLASH_BLOCK, 1};
  const char *e = getenv("ATTN_CU_FLASH");
  char name[16];
  const size_t n = e ? strlen(e) : 0;
  if (n == 0 || n >= sizeof name) return f;
  memcpy(name, e, n + 1);
  f.strict = name[n - 1] == '!';
  if (f.strict) name[n - 1] = '\0';
  for (const auto &plan : flash_plan_rows)
    if (!strcmp(name, plan.name)) {
      f.known = true;
      f.variant = plan.variant;
      f.tile = plan.tile;
      f.split = plan.split;
    }
  return f;
}

attn_cuda_status_t attn_cu_flash_check_forced(attn_cuda_t *cu, const attn_cuda_problem_t *p,
                                              const attn_cu_flash_plan *plan) {
  const flash_forced f = flash_force();
  if (!f.strict || p->op != ATTN_CUDA_OP_FORWARD || p->scores.data || p->weights.data ||
      (p->algo != ATTN_CUDA_ALGO_AUTO && p->algo != ATTN_CUDA_ALGO_FLASH))
    return ATTN_CUDA_OK;
  if (f.known && plan && plan->variant == f.variant &&
      (f.variant == ATTN_CU_FLASH_THREAD || plan->tile == f.tile))
    return ATTN_CUDA_OK;
  snprintf(cu->message, sizeof cu->message,
           "cuda: ATTN_CU_FLASH=%s forces a flash plan that cannot run this call",
           getenv("ATTN_CU_FLASH"));
  return ATTN_CUDA_ERR_RUNTIME;
}

attn_cuda_status_t attn_cu_flash_init(attn_cuda_t *cu) {
  attn_cu_flash_thread_init(cu);
  int optin = 0;
  ATTN_CU_CHECK(
      cu, cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, cu->device));
  /* The TILE kernels need more than the 48 KiB any launch may use: opt in, and ask for the
   * largest shared-memory carveout so that two blocks fit a multiprocessor. A device or driver
   * that refuses runs the other variants instead. */
  attn_cu_flash_tile_init(cu, optin);
  /* STREAM: as much as its widest call takes (k' = 256, dv = 128 of their own, two warps), or the
   * device's limit; a call that needs more than that runs another variant. */
  cu->flash.stream_smem = attn_cu_flash_stream_init(optin);
  int per_sm = 0, reserved = 0;
  if (cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, cu->device) !=
          cudaSuccess ||
      cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, cu->device) !=
          cudaSuccess)
    per_sm = reserved = 0; /* unknown: the plan counts one STREAM block a multiprocessor */
  cu->flash.smem_per_sm = (size_t)per_sm;
  cu->flash.smem_reserved = (size_t)reserved;
  (void)cudaGetLastError(); /* a refusal above is an answer, not an error to leave behind */
  return ATTN_CUDA_OK;
}

/* Span partials for `spans` grid spans, or 0 when they do not fit. */
static size_t partial_floats(const attn_cuda_problem_t *p, int64_t spans) {
  int64_t f;
  if (__builtin_mul_overflow(attn_cu_query_rows(attn_cu_layout_of(p)), spans, &f) ||
      __builtin_mul_overflow(f, p->dv + 2, &f) || (size_t)f > FLASH_MAX_PARTIAL_FLOATS)
    return 0;
  return (size_t)f;
}

/* The plan of p on a device described by dev: attn_cu_flash_plan_of's body, which tests reach
 * through attn_cuda_flash_plan_name with a device of their own. */
static bool flash_plan_for(const attn_cuda_problem_t *p, const attn_cuda_flash_device_t &dev,
                           attn_cu_flash_plan *plan) {
  if (p->op != ATTN_CUDA_OP_FORWARD || p->scores.data || p->weights.data) return false;
  const attn_cu_layout l = attn_cu_layout_of(p);
  const int64_t sms = dev.sm_count > 0 ? dev.sm_count : 1;
  const int64_t k = p->kind == ATTN_CUDA_SCORE_ADDITIVE ? p->h : p->d;
  const int64_t rows = attn_cu_query_rows(l);
  const int64_t per_set = l.qo ? (p->batch > 0 ? p->m / p->batch : 0) : p->m;
  const bool small = k <= FLASH_SMALL && p->dv <= FLASH_SMALL;
  const bool block1 = p->dv <= FLASH_ACC_BYTES / (int64_t)sizeof(float);
  const bool block8 = p->dv <= FLASH_ACC_BYTES / (int64_t)(8 * sizeof(float));
  const bool tile = dev.tile && !l.qo && p->kind != ATTN_CUDA_SCORE_ADDITIVE;
  const bool warp = p->dv <= FLASH_WARP_DV; /* implies block1 */
  const size_t stream_smem = attn_cu_flash_stream_smem(p);
  const bool stream = stream_smem > 0 && stream_smem <= dev.stream_smem;
  if (!small && !block1 && !tile) return false;

  /* Default plan (thresholds above): THREAD for many small queries against a handful of
   * annotations; TILE where a set has 16 queries or more to share each annotation read, or 4
   * on long sets (and for any dv too wide for BLOCK), in tiles of 64 from 33 queries a set, else
   * 32 from 17, else 16, a tile taken only where its blocks (spans counted) reach every
   * multiprocessor (or more than half for TILE<64> at k <= 64); THREAD for the other small queries
   * TILE cannot run; BLOCK tiles of 8 queries where a set has 8 or more; below that STREAM,
   * split, where it can run and the call has 2 query rows (but WARP where STREAM would take a
   * second wave that WARP does not), else WARP (dv <= 256) when the call has the rows to fill
   * the GPU with warps, else BLOCK tiles of 1; spans split across blocks when the tiles alone
   * would leave most of the GPU idle. */
  const bool many = rows >= 16 * sms;
  const int64_t thread_n = k <= 4 && p->dv <= 4 ? FLASH_THREAD4_MAX_N : FLASH_THREAD_MAX_N;
  const int64_t span_bound = (p->n + FLASH_SPAN - 1) / FLASH_SPAN;
  const bool tile_q = per_set >= FLASH_TILE_MIN_Q ||
                      (per_set >= FLASH_TILE_LONG_MIN_Q && p->n >= FLASH_TILE_LONG_MIN_N);
  const bool warp_rows = warp && rows >= FLASH_WARP_MIN_ROWS;
  const int64_t warp_places = sms * FLASH_WARP_MIN_BLOCKS * FLASH_WARPS;
  bool stream_first = stream && p->dv <= FLASH_STREAM_AUTO_DV && rows >= FLASH_STREAM_MIN_ROWS;
  if (stream_first && warp_rows && rows <= warp_places && span_bound <= 65535) {
    /* the warps STREAM would run (split), against the places its blocks and WARP's leave */
    const int64_t warps = rows * span_bound;
    const size_t per_block = stream_smem + dev.smem_reserved;
    const int64_t fit = (int64_t)(dev.smem_per_sm / per_block);
    const int64_t stream_blocks = fit < 1                         ? 1
                                  : fit > FLASH_STREAM_MAX_BLOCKS ? FLASH_STREAM_MAX_BLOCKS
                                                                  : fit;
    stream_first = warps <= sms * stream_blocks * stream_warps(1) || warps > warp_places;
  }
  plan->variant = small && many && p->n <= thread_n         ? ATTN_CU_FLASH_THREAD
                  : tile && (tile_q || !block1)             ? ATTN_CU_FLASH_TILE
                  : small && (many || !block1)              ? ATTN_CU_FLASH_THREAD
                  : per_set >= FLASH_BLOCK8_MIN_Q && block8 ? ATTN_CU_FLASH_BLOCK
                  : stream_first                            ? ATTN_CU_FLASH_STREAM
                  : warp_rows                               ? ATTN_CU_FLASH_WARP
                                                            : ATTN_CU_FLASH_BLOCK;
  if (plan->variant == ATTN_CU_FLASH_TILE) {
    /* TILE<QT>'s blocks: its tiles, times the spans where it would split them */
    const auto blocks = [&](int qt) {
      const int64_t tiles = tiles_of(l, qt);
      return tiles < 4 * sms && span_bound <= 65535 ? tiles * span_bound : tiles;
    };
    const bool tile64 = per_set >= FLASH_TILE64_MIN_Q &&
                        (blocks(64) >= sms || (k <= FLASH_TILE64_SMALL_K && 2 * blocks(64) > sms));
    plan->tile = tile64 ? 64 : per_set > FLASH_TILE32_MIN_Q && blocks(32) >= sms ? 32 : 16;
  } else {
    plan->tile =
        plan->variant == ATTN_CU_FLASH_BLOCK && per_set >= FLASH_BLOCK8_MIN_Q && block8 ? 8 : 1;
  }

  bool split = false, forced_split = false;
  const flash_forced f = flash_force();
  if (f.known) {
    const bool runs = f.variant == ATTN_CU_FLASH_THREAD   ? small
                      : f.variant == ATTN_CU_FLASH_TILE   ? tile
                      : f.variant == ATTN_CU_FLASH_TC     ? tile && dev.tc
                      : f.variant == ATTN_CU_FLASH_WARP   ? warp
                      : f.variant == ATTN_CU_FLASH_STREAM ? stream
                                                          : block1 && (f.tile == 1 || block8);
    if (runs) {
      plan->variant = f.variant;
      if (f.variant != ATTN_CU_FLASH_THREAD) {
        plan->tile = f.tile;
        forced_split = true;
        split = f.split;
      }
    }
  }
  if (!forced_split)
    split =
        plan->variant == ATTN_CU_FLASH_STREAM ||
        tiles_of(l, plan->tile) < 4 * sms * (plan->variant == ATTN_CU_FLASH_WARP ? FLASH_WARPS : 1);

  plan->smem = plan->variant == ATTN_CU_FLASH_STREAM ? stream_smem
               : plan->variant == ATTN_CU_FLASH_TILE || plan->variant == ATTN_CU_FLASH_TC
                   ? attn_cu_flash_tile_bytes(plan->variant, plan->tile)
               : plan->variant == ATTN_CU_FLASH_BLOCK
                   ? (size_t)plan->tile * (size_t)p->dv * sizeof(float)
                   : 0;
  plan->spans = 1;
  plan->partial_floats = 0;
  if (plan->variant != ATTN_CU_FLASH_THREAD && split && span_bound > 1 && span_bound <= 65535) {
    const size_t floats = partial_floats(p, span_bound);
    if (floats > 0) {
      plan->spans = span_bound;
      plan->partial_floats = floats;
    }
  }
  return true;
}

bool attn_cu_flash_plan_of(const attn_cuda_problem_t *p, const attn_cuda_t *cu,
                           attn_cu_flash_plan *plan) {
  return flash_plan_for(p, cu->flash, plan);
}

extern "C" const char *attn_cuda_flash_plan_name(const attn_cuda_problem_t *p,
                                                 const attn_cuda_flash_device_t *device) {
  attn_cu_flash_plan plan;
  if (!flash_plan_for(p, *device, &plan)) return "";
  for (const auto &row : flash_plan_rows)
    if (plan.variant == row.variant &&
        (plan.variant == ATTN_CU_FLASH_THREAD || plan.tile == row.tile) &&
        (plan.spans > 1) == row.split)
      return row.name;
  return "?"; /* a plan flash_plans.h does not list: the test that asks fails on it */
}

attn_cuda_status_t attn_cu_flash_forward(attn_cuda_t *cu, cudaStream_t stream,
                                         const attn_cu_score_in &si, int64_t dv, attn_cuda_cmat_t V,
                                         attn_cuda_mat_t C, float *lse, const int *bad,
                                         const attn_cu_flash_plan &plan, float *partials) {
  const int64_t rows = attn_cu_query_rows(si.l);
  if (rows == 0) return ATTN_CUDA_OK;
  flash_args a = {si,         dv,       V,     C,     lse,  tiles_of(si.l, plan.tile),
                  plan.spans, partials, false, false, false};
  a.vec = rows_vec(si.a.data, si.k, si.a.ld, si.a.stride, si.l.ao != NULL);
  a.vec_q = rows_vec(si.q.data, si.k, si.q.ld, si.q.stride, si.l.qo != NULL);
  a.vec_v = rows_vec(V.data, dv, V.ld, V.stride, si.l.ao != NULL);
  if (plan.variant == ATTN_CU_FLASH_THREAD)
    attn_cu_flash_thread(cu, a, stream, bad);
  else if (plan.variant == ATTN_CU_FLASH_STREAM)
    attn_cu_flash_stream(a, plan.smem, stream, bad);
  else if (plan.variant == ATTN_CU_FLASH_WARP)
    attn_cu_flash_warp(a, stream, bad);
  else if (plan.variant == ATTN_CU_FLASH_TILE || plan.variant == ATTN_CU_FLASH_TC)
    attn_cu_flash_tile(a, plan.variant, plan.tile, plan.smem, stream, bad);
  else
    attn_cu_flash_block(a, plan.tile, plan.smem, stream, bad);
  ATTN_CU_CHECK(cu, cudaGetLastError());
  if (plan.spans > 1) {
    attn_cu_flash_combine(a, stream, bad);
    ATTN_CU_CHECK(cu, cudaGetLastError());
  }
  return ATTN_CUDA_OK;
}
