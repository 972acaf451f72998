/*
 * flash_kernels.cuh - what the flash forward's kernel files (flash_thread.cu, flash_warp.cu,
 * flash_block.cu, flash_tile.cu, flash_combine.cu: flash.cu's top comment says which variant each
 * holds) share with each other and with flash.cu's plan: the kernels' arguments (flash_args), the
 * fixed arithmetic of flash.cu's top comment (a score's chain, a chunk's weights, the folds), the
 * register budgets of their launch bounds, and each file's launchers and sizes.
 */
#ifndef ATTN_CUDA_FLASH_KERNELS_CUH
#define ATTN_CUDA_FLASH_KERNELS_CUH

#include "flash.cuh"
#include "validate.cuh"

#include <stdint.h>

#define FLASH_THREADS 128
#define FLASH_CHUNK   ATTN_CU_FLASH_CHUNK
#define FLASH_SPAN    ATTN_CU_FLASH_SPAN
#define FLASH_SMALL   16 /* THREAD: largest k and dv */
#define FLASH_WARPS   (FLASH_THREADS / 32)
#define FLASH_WARP_DV 256 /* WARP: largest dv (8 columns a lane) */
/* STREAM<G>: a block's warps (shared memory, not warps, keeps the copies flying): 2 for dv up to
 * 128 (STREAM<1>, 4 columns a lane), 1 for dv up to 256 (STREAM<2>, 8 columns a lane), whose
 * stages of 32 rows of 256 floats take 67.6 KB a warp, so that three blocks fit a
 * multiprocessor rather than one of two warps */
static __host__ __device__ constexpr int stream_warps(int g) {
  return g == 1 ? 2 : 1;
}
/* Blocks per multiprocessor the register allocation must allow: THREAD (and combine) 4, so at
 * most 128 registers a thread, and 5 for THREAD<4> (at most 102: it takes 89 to 96, and
 * unbounded the dot-like one takes 121, a block fewer a multiprocessor than it ran with on the
 * H200); the short-set kernel 4 (the additive ones take up to 120 registers on sm_90, and the
 * 4-wide dot-like one on sets of up to 8, which took 96 before it loaded q' a turn ahead and
 * spills at 96 since), 5 for the 3-wide dot-like one on sets of up to 8 (96), and 6 for the
 * dot-like ones on sets of up to 4 (80 registers on sm_80 and sm_90; the H100's profile of the
 * walkthrough at 5 blocks: 31% theoretical occupancy, 1.4 eligible warps a scheduler, about half
 * the SM's issue rate; at 8 blocks it spills); WARP 4 (on sm_90 WARP<1> 118
 * with batches of 8 loads, 106 with 4; capped at 64 or 80 it spills); BLOCK and TILE 2 (BLOCK<1>
 * takes about 155 registers, so 3 fit; BLOCK<8> about 210, TILE<64> 229, TILE<32> 231, TILE<16>
 * 207, TC 248 on sm_90 (254 on sm_80: at the edge)); 8 for the short-set kernel's packed instance
 * (flash_thread.cu: 80 registers unbounded, 64 at 8 without a spill). */
#define FLASH_THREAD_MIN_BLOCKS   4
#define FLASH_THREAD4_MIN_BLOCKS  5
#define FLASH_SHORT4_MIN_BLOCKS   6
#define FLASH_SHORT_PK_MIN_BLOCKS 8
#define FLASH_WARP_MIN_BLOCKS     4
#define FLASH_BLOCK_MIN_BLOCKS    2

/* What every flash kernel is given (by value), the plan's choices included. */
struct flash_args {
  attn_cu_score_in si;
  int64_t dv;
  attn_cuda_cmat_t V;
  attn_cuda_mat_t C;
  float *lse;
  int64_t tiles;  /* BLOCK, TILE: tiles of queries */
  int64_t spans;  /* BLOCK, TILE, WARP: grid spans (1: walk them) */
  float *partial; /* [query rows x spans x (dv + 2)] when spans > 1 */
  bool vec;       /* a' rows can be read as float4 */
  bool vec_q;     /* TILE, WARP: q' rows can be read as float4 */
  bool vec_v;     /* TILE, WARP: value rows can be read as float4 */
};

/* ---------------------------------------------------------------------------------------- */
/* The arithmetic every variant shares                                                       */
/* ---------------------------------------------------------------------------------------- */

/* Fold factors of merging a part with max mp into a state with max M. The exps are taken either
 * way (for x = -inf they are NaN, then discarded) so that the choice is a select: a branch
 * around them would keep the exps of consecutive folds from overlapping. */
static __device__ __forceinline__ void flash_coeffs(float M, float mp, float *mn, float *alpha,
                                                    float *beta) {
  const float x = attn_cu_nanmax(M, mp);
  const float ea = expf(M - x), eb = expf(mp - x);
  *mn = x;
  *alpha = x == -INFINITY ? 1.0f : ea;
  *beta = x == -INFINITY ? 1.0f : eb;
}

/* x a + y b with each product rounded on its own: never contracted into an fma, so it gives the
 * same bits wherever it is compiled. */
static __device__ __forceinline__ float flash_mix(float x, float a, float y, float b) {
  return __fadd_rn(__fmul_rn(x, a), __fmul_rn(y, b));
}

/* One step of a score's chain over t. */
static __device__ __forceinline__ float flash_term(bool additive, float q, float a, float v,
                                                   float acc) {
  return additive ? __fmaf_rn(v, tanhf(__fadd_rn(q, a)), acc) : __fmaf_rn(q, a, acc);
}
static __device__ __forceinline__ float flash_score(bool additive, float scale, float acc) {
  return additive ? acc : __fmul_rn(scale, acc);
}
/* A chunk weight before normalisation. The exp is taken either way (exp(s + inf) is inf or NaN,
 * then discarded) so that the choice is a select, not a branch around the exp. */
static __device__ __forceinline__ float flash_p(float s, float mc) {
  const float e = expf(s - mc);
  return mc == -INFINITY ? 0.0f : e;
}
static __device__ __forceinline__ float flash_out(float x, float M, float S) {
  const float c = attn_cu_weight(x, S);
  return M == -INFINITY ? 0.0f : c;
}
static __device__ __forceinline__ float flash_lse(float M, float S) {
  return M == -INFINITY ? -INFINITY : __fadd_rn(M, logf(S));
}
static __device__ __forceinline__ int64_t flash_spans_of(int64_t valid) {
  return (valid + FLASH_SPAN - 1) / FLASH_SPAN;
}

/* The spans [*lo, *hi) of a set of nspans spans that this block runs, false when none. In a
 * split call (a.spans > 1) block y runs span y alone (*split: its state goes to the partials),
 * and a set of at most one span is finished by block 0; otherwise the block walks them all. */
static __device__ __forceinline__ bool flash_span_range(const flash_args &a, int64_t nspans,
                                                        int64_t *lo, int64_t *hi, bool *split) {
  *lo = 0;
  *hi = nspans;
  *split = a.spans > 1 && nspans > 1;
  if (*split) {
    if ((int64_t)blockIdx.y >= nspans) return false;
    *lo = blockIdx.y;
    *hi = *lo + 1;
    return true;
  }
  return a.spans <= 1 || blockIdx.y == 0;
}

/* A float4's four floats into out[0 .. 3]. */
static __device__ __forceinline__ void flash_unpack4(float4 x, float *out) {
  out[0] = x.x;
  out[1] = x.y;
  out[2] = x.z;
  out[3] = x.w;
}

/* Four consecutive floats of a row, of which the first n (0 .. 4) exist; vec: 16-byte aligned
 * and n is 0 or 4. */
static __device__ __forceinline__ void flash_load4(const float *p, int n, bool vec, float *out) {
  if (vec) {
    float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (n > 0) x = *(const float4 *)p;
    flash_unpack4(x, out);
    return;
  }
#pragma unroll
  for (int e = 0; e < 4; e++)
    out[e] = e < n ? p[e] : 0.0f;
}
static __device__ __forceinline__ int flash_count4(int64_t left) {
  return left <= 0 ? 0 : left >= 4 ? 4 : (int)left;
}

/* (M, S, X) folded with (m, l, x), all in registers. */
template <int K>
static __device__ __forceinline__ void flash_fold_regs(float &M, float &S, float (&X)[K], float m,
                                                       float l, const float (&x)[K]) {
  float mn, al, be;
  flash_coeffs(M, m, &mn, &al, &be);
  M = mn;
  S = flash_mix(S, al, l, be);
#pragma unroll
  for (int t = 0; t < K; t++)
    X[t] = flash_mix(X[t], al, x[t], be);
}

/* flash_fold_regs from the empty state (-inf, 0, 0), with its factors worked out instead of
 * computed: M' = m, and a = exp(-inf - m), b = exp(m - m) are 0 and 1 for finite m, 1 and 1 for
 * m = -inf, and b is NaN for m = +inf or NaN. So S' = 0 a + l b = 0 + l b and X' = 0 + x b with
 * b = 1 or NaN: the same bits as the fold (0 a only matters when it is NaN, where b is NaN too),
 * for two adds and a multiply a column instead of two exps. (b is NaN only where l is NaN
 * already, a part's max being +inf or NaN only when one of its weights is NaN; it is kept so
 * that the equality with the fold holds without that argument.) The first chunk of every span and
 * the first span of every total start this way. */
template <int K>
static __device__ __forceinline__ void flash_first(float &M, float &S, float (&X)[K], float m,
                                                   float l, const float (&x)[K]) {
  const float b = m == -INFINITY ? 1.0f : __fadd_rn(__fsub_rn(m, m), 1.0f);
  M = m;
  S = __fadd_rn(0.0f, __fmul_rn(l, b));
#pragma unroll
  for (int t = 0; t < K; t++)
    X[t] = __fadd_rn(0.0f, __fmul_rn(x[t], b));
}

/* The fold of a part into a state, by flash_first where the state is still the empty one. */
template <int K>
static __device__ __forceinline__ void flash_fold_into(bool first, float &M, float &S,
                                                       float (&X)[K], float m, float l,
                                                       const float (&x)[K]) {
  if (first)
    flash_first<K>(M, S, X, m, l, x);
  else
    flash_fold_regs<K>(M, S, X, m, l, x);
}

/* ---------------------------------------------------------------------------------------- */
/* Host helpers of the plan and the launchers                                                */
/* ---------------------------------------------------------------------------------------- */

/* Whether a 16-byte aligned float4 can read every 4-group of rows of width w that are ld apart
 * (and stride apart between sets, unless the sets are addressed by offsets). */
static inline bool rows_vec(const float *data, int64_t w, int64_t ld, int64_t stride,
                            bool offsets) {
  return w % 4 == 0 && ld % 4 == 0 && (offsets || stride % 4 == 0) && (uintptr_t)data % 16 == 0;
}

/* Lets `kernel` launch with up to `bytes` of dynamic shared memory and asks for the largest
 * shared-memory carveout; false where the device or driver refuses. */
template <class Kernel> inline bool flash_opt_in(Kernel *kernel, size_t bytes) {
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes) !=
      cudaSuccess)
    return false;
  (void)cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                             cudaSharedmemCarveoutMaxShared);
  return true;
}

/* ---------------------------------------------------------------------------------------- */
/* The kernel files' functions                                                               */
/* ---------------------------------------------------------------------------------------- */

/* Each launcher queues its kernel for the call in a (a.tiles and a.spans as the plan set them)
 * behind the device word bad; the caller checks the launch. flash.cu's init and plan call the
 * init and sizing functions. */

/* flash_thread.cu: the resident blocks of each short-set kernel instance (cu->short_blocks) */
void attn_cu_flash_thread_init(attn_cuda_t *cu);
/* flash_thread.cu: THREAD; its short-set kernel where k, dv <= 4 and n <= 8 */
void attn_cu_flash_thread(const attn_cuda_t *cu, const flash_args &a, cudaStream_t stream,
                          const int *bad);

/* flash_warp.cu: STREAM's opt-in, as much shared memory as its widest call takes or the device's
 * limit optin; the bytes it may use (0: it cannot run) */
size_t attn_cu_flash_stream_init(int optin);
/* flash_warp.cu: the shared memory STREAM needs for p (0: it cannot run p: additive or general
 * scores, d or dv too wide or not a multiple of 4, rows not 16-byte aligned) */
size_t attn_cu_flash_stream_smem(const attn_cuda_problem_t *p);
/* flash_warp.cu: STREAM, with smem bytes of shared memory (attn_cu_flash_stream_smem) */
void attn_cu_flash_stream(const flash_args &a, size_t smem, cudaStream_t stream, const int *bad);
/* flash_warp.cu: WARP (dv at most FLASH_WARP_DV) */
void attn_cu_flash_warp(const flash_args &a, cudaStream_t stream, const int *bad);

/* flash_block.cu: BLOCK, tiles of `tile` (1 or 8) queries; smem: tile x dv floats */
void attn_cu_flash_block(const flash_args &a, int tile, size_t smem, cudaStream_t stream,
                         const int *bad);

/* flash_tile.cu: the TILE kernels' opt-in to their shared memory (cu->flash.tile) and TC's
 * (cu->flash.tc), where the device's limit optin allows */
void attn_cu_flash_tile_init(attn_cuda_t *cu, int optin);
/* flash_tile.cu: the dynamic shared memory of a TILE block of `tile` queries (64, 32 or 16), or
 * of a TC block */
size_t attn_cu_flash_tile_bytes(attn_cu_flash_variant variant, int tile);
/* flash_tile.cu: TILE (variant TILE, tile 64, 32 or 16) or TC (variant TC) */
void attn_cu_flash_tile(const flash_args &a, attn_cu_flash_variant variant, int tile, size_t smem,
                        cudaStream_t stream, const int *bad);

/* flash_combine.cu: the fold of a split call's span partials (a.spans > 1) into C and lse */
void attn_cu_flash_combine(const flash_args &a, cudaStream_t stream, const int *bad);

#endif
