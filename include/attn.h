/*
 * attn.h - the whole public C API of attn.
 *
 * attn computes classic encoder-decoder attention (Bahdanau 2014, Luong 2015) for many decoder
 * queries at once:
 *
 *     s_j = score(q, a_j)          for every valid annotation j of the query's set
 *     w   = softmax(s)             over the valid j (max-subtracted, never overflows)
 *     c   = sum_j w_j * v_j        v_j = a_j unless separate values are given
 *
 * It runs on an NVIDIA GPU (CUDA kernels and cuBLAS) and on the CPU. The REFERENCE backend
 * (plain loops, double accumulation) is the oracle every other backend is tested against.
 *
 * This header is C99 and names no CUDA type: devices are ints and streams travel as void *.
 *
 * Conventions used throughout:
 *   - Sizes: m queries, n annotations, d query/annotation width, dv value width, batch sets.
 *   - Matrices are row-major float32 with an explicit leading dimension `ld` (elements between
 *     rows, ld >= width). Uniform batches add a `stride` (elements between sets).
 *   - Every pointer given to a compute call (data, offsets, lengths, score parameters) lives
 *     where the context computes: device memory for a CUDA context, host memory for a CPU or
 *     REFERENCE context. The *_host calls take host memory on every backend.
 *   - Outputs must not overlap each other or any input (the one exception: attn_softmax in
 *     place). An output that starts where an input or another output starts (lse, the offsets
 *     and lengths arrays and the score function's parameters included) is refused with
 *     ATTN_ERR_INVALID_ARG; partial overlaps are not detected.
 *   - Every function that can fail returns attn_status_t. On failure nothing the caller passed
 *     as an output is touched, the context stays usable, and attn_context_last_error() holds a
 *     one-line message naming the argument and the reason.
 *
 * Threads: a context may be used by one thread at a time. Different contexts are independent
 * and may be used concurrently from different threads. Functions that take no context
 * (attn_status_string, attn_version, attn_default_options, ...) are safe from any thread.
 * One process-wide side effect: while a CPU call runs its GEMM path on OpenBLAS, OpenBLAS's own
 * thread count is held at 1 (openblas_set_num_threads, restored when the last such call ends),
 * so an OpenBLAS call the program makes meanwhile from another thread runs single-threaded.
 */
#ifndef ATTN_H
#define ATTN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported symbols; everything else in the library is hidden. */
#if defined(ATTN_BUILDING) && defined(__GNUC__)
#define ATTN_API __attribute__((visibility("default")))
#else
#define ATTN_API
#endif

/* ------------------------------------------------------------------------------------------ */
/* Version                                                                                    */
/* ------------------------------------------------------------------------------------------ */

#define ATTN_VERSION_MAJOR 0
#define ATTN_VERSION_MINOR 1
#define ATTN_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, comparable with attn_version(). */
#define ATTN_VERSION (ATTN_VERSION_MAJOR * 10000 + ATTN_VERSION_MINOR * 100 + ATTN_VERSION_PATCH)

/* The version of the library actually linked, in the ATTN_VERSION encoding. */
ATTN_API int attn_version(void);
/* The same as "MAJOR.MINOR.PATCH"; a static string. */
ATTN_API const char *attn_version_string(void);
/* 1 when the library was built with the CUDA backend, 0 otherwise. */
ATTN_API int attn_built_with_cuda(void);

/* ------------------------------------------------------------------------------------------ */
/* Status                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef enum attn_status {
  ATTN_OK = 0,
  ATTN_ERR_NULL_POINTER = 1,    /* a required pointer is NULL */
  ATTN_ERR_INVALID_ARG = 2,     /* bad enum value, option, or a pointer on the wrong side */
  ATTN_ERR_INVALID_SIZE = 3,    /* a size negative, or zero where zero is not allowed */
  ATTN_ERR_INVALID_LD = 4,      /* a leading dimension or batch stride too small */
  ATTN_ERR_INVALID_OFFSETS = 5, /* varlen offsets decrease, are negative or run past the sizes */
  ATTN_ERR_INVALID_LENGTH = 6,  /* a valid-annotation length negative or past its set's size */
  ATTN_ERR_OVERFLOW = 7,        /* a byte count does not fit in size_t */
  ATTN_ERR_MISALIGNED = 8,      /* a pointer not aligned to its element size */
  ATTN_ERR_ALLOC = 9,           /* host or device allocation failed; nothing leaked */
  ATTN_ERR_NO_DEVICE = 10,      /* CUDA asked for but unusable (no driver, no device, ...) */
  ATTN_ERR_CUDA = 11,           /* a CUDA runtime call failed; the message names it */
  ATTN_ERR_CUBLAS = 12,         /* a cuBLAS call failed; the message names it */
  ATTN_ERR_CUDA_STICKY = 13,    /* the device is in a sticky error state; make a new process */
  ATTN_ERR_INTERNAL = 14        /* a bug in attn; please report the message */
} attn_status_t;

/* A static, human-readable name for a status, e.g. "ATTN_ERR_INVALID_LD: leading dimension
 * smaller than the width". Unknown values give "unknown attn status". */
ATTN_API const char *attn_status_string(attn_status_t status);

/* ------------------------------------------------------------------------------------------ */
/* Context                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef enum attn_backend {
  ATTN_BACKEND_AUTO = 0,     /* CUDA when built with it and a device is usable, else CPU */
  ATTN_BACKEND_CUDA = 1,     /* NVIDIA GPU; ATTN_ERR_NO_DEVICE when none is usable */
  ATTN_BACKEND_CPU = 2,      /* the fast CPU backend */
  ATTN_BACKEND_REFERENCE = 3 /* plain loops with double accumulation: the oracle */
} attn_backend_t;

/* Which implementation a backend uses. AUTO picks by shape; the others force one path so that
 * tests and benchmarks can compare them. A backend without a forced path uses its only one
 * (the REFERENCE backend ignores this option).
 *
 * Determinism: every path gives bit-identical results run to run on the same device.
 * Batch invariance (a query's bits do not depend on the other queries and sets of the call, its
 * position, or the CPU thread count) holds for every forced path except GEMM on CUDA (cuBLAS
 * picks its kernel from the shape), and for AUTO on CUDA, which never picks cuBLAS. On the CPU,
 * AUTO picks GEMM or FUSED per set from that set's shape, its query count included, and from
 * whether scores or weights are requested: other sets never change a query's bits, but adding
 * queries to its own set can move the set to the other path (the results then agree within the
 * documented tolerance, not bit for bit). Force an algorithm where bits must not move. */
typedef enum attn_algo {
  ATTN_ALGO_AUTO = 0,   /* pick by shape (documented in each backend's dispatcher) */
  ATTN_ALGO_SIMPLE = 1, /* the simplest correct kernels: one thread/row, no tiling */
  ATTN_ALGO_GEMM = 2,   /* scores and context as (cu)BLAS GEMMs, softmax in between */
  ATTN_ALGO_FUSED = 3,  /* fused passes per query row (CPU: an online softmax), no score matrix
                           unless scores or weights are requested; CUDA: the one-pass
                           flash-decoding forward when neither is requested */
  ATTN_ALGO_ROWS = 4    /* CUDA: the unfused row kernels (a block per query row, scores
                           recomputed per pass, never split across blocks); CPU: as FUSED */
} attn_algo_t;

/* The most CPU threads a context may ask for: more than any machine attn runs on has cores, and
 * few enough that the OpenMP runtime can start the team (it ends the process when it cannot). */
#define ATTN_MAX_CPU_THREADS 1024

typedef struct attn_options {
  attn_backend_t backend; /* default ATTN_BACKEND_AUTO */
  int device;             /* CUDA device index, default 0 */
  void *stream;           /* a cudaStream_t; NULL = the default stream. Ignored on the CPU. */
  int cpu_threads;        /* CPU worker threads; 0 = all cores (default); at most
                             ATTN_MAX_CPU_THREADS */
  attn_algo_t algo;       /* default ATTN_ALGO_AUTO; the environment variable ATTN_ALGO
                             (auto|simple|gemm|fused|rows) overrides AUTO at context creation */
} attn_options_t;

/* The defaults above. */
ATTN_API attn_options_t attn_default_options(void);

typedef struct attn_context attn_context_t;

/* Creates a context.
 *   opts: options, or NULL for attn_default_options().
 *   ctx:  receives the new context; must not be NULL. Set only on success.
 * Errors: ATTN_ERR_NULL_POINTER (ctx), ATTN_ERR_INVALID_ARG (an option out of range),
 * ATTN_ERR_NO_DEVICE (CUDA asked for explicitly and unusable), ATTN_ERR_ALLOC, ATTN_ERR_CUDA.
 * The reason of a failure is in attn_create_error() on the calling thread. */
ATTN_API attn_status_t attn_context_create(const attn_options_t *opts, attn_context_t **ctx);

/* The message of the last failing call without a context on this thread: attn_context_create(),
 * attn_backend_from_name() or attn_algo_from_name() ("" if none). Each of them clears it first. */
ATTN_API const char *attn_create_error(void);

/* Destroys a context and everything it owns (workspace, handles). Buffers allocated from the
 * context must be freed first. NULL is a no-op. The caller's stream is not destroyed. */
ATTN_API void attn_context_destroy(attn_context_t *ctx);

/* The backend the context computes on (never AUTO). */
ATTN_API attn_backend_t attn_context_backend(const attn_context_t *ctx);
/* Why that backend was picked: the backend's name, then the reason, e.g. "cuda: CUDA device 0
 * (NVIDIA H100 80GB HBM3, sm_90) usable", "cpu: no CUDA driver" or "cpu: requested". A string
 * owned by the context. */
ATTN_API const char *attn_context_backend_reason(const attn_context_t *ctx);
/* The algorithm the context runs: opts->algo, or the one ATTN_ALGO named for an AUTO context. */
ATTN_API attn_algo_t attn_context_algo(const attn_context_t *ctx);

/* The static name of a backend: "auto", "cuda", "cpu", "reference" ("unknown" for other values). */
ATTN_API const char *attn_backend_name(attn_backend_t backend);
/* The static name of an algorithm: "auto", "simple", "gemm", "fused", "rows" (the names ATTN_ALGO
 * takes; "unknown" for other values). */
ATTN_API const char *attn_algo_name(attn_algo_t algo);
/* The backend or algorithm of a name as attn_backend_name() or attn_algo_name() give it (exact,
 * case-sensitive), for command-line flags and configuration files. *out is set only on success.
 * Errors: ATTN_ERR_NULL_POINTER (name or out), ATTN_ERR_INVALID_ARG (no such name); the message
 * is in attn_create_error(). */
ATTN_API attn_status_t attn_backend_from_name(const char *name, attn_backend_t *out);
ATTN_API attn_status_t attn_algo_from_name(const char *name, attn_algo_t *out);

/* The message of the context's last failure ("" if none). Owned by the context; valid until
 * the next call on it. */
ATTN_API const char *attn_context_last_error(const attn_context_t *ctx);

/* Sets the stream (a cudaStream_t, NULL = default stream) later calls are ordered on. On a CPU
 * context the stream is stored and otherwise ignored. Work already queued on the previous stream
 * is not waited for by later calls (attn_context_synchronize waits on the current stream only):
 * call attn_context_synchronize before switching when that work's device-side argument errors
 * must be reported. */
ATTN_API attn_status_t attn_context_set_stream(attn_context_t *ctx, void *stream);
/* Gets the stream into *stream. */
ATTN_API attn_status_t attn_context_get_stream(const attn_context_t *ctx, void **stream);

/* Waits until everything the context queued has finished. On the CUDA backend compute calls
 * are asynchronous; this also reports invalid offsets or lengths that could only be checked on
 * the device (ATTN_ERR_INVALID_OFFSETS / ATTN_ERR_INVALID_LENGTH; outputs of that call were
 * left untouched). On the CPU it returns ATTN_OK at once. */
ATTN_API attn_status_t attn_context_synchronize(attn_context_t *ctx);

/* ------------------------------------------------------------------------------------------ */
/* Buffers: memory on the context's backend (device memory for CUDA, host memory otherwise)    */
/* ------------------------------------------------------------------------------------------ */

typedef struct attn_buffer attn_buffer_t;

/* Allocates `bytes` (> 0) on the context's backend, aligned to at least 256 bytes.
 * Errors: ATTN_ERR_NULL_POINTER, ATTN_ERR_INVALID_SIZE (bytes == 0), ATTN_ERR_ALLOC. */
ATTN_API attn_status_t attn_buffer_alloc(attn_context_t *ctx, size_t bytes, attn_buffer_t **buf);
/* Frees a buffer of this context. NULL buf is a no-op. */
ATTN_API attn_status_t attn_buffer_free(attn_context_t *ctx, attn_buffer_t *buf);
/* Copies `bytes` from host memory `src` into the buffer at byte `offset`. Returns when done.
 * Errors: ATTN_ERR_NULL_POINTER, ATTN_ERR_INVALID_SIZE (offset + bytes past the end). */
ATTN_API attn_status_t attn_buffer_upload(attn_context_t *ctx, attn_buffer_t *buf, size_t offset,
                                          const void *src, size_t bytes);
/* Copies `bytes` from the buffer at byte `offset` into host memory `dst`. Returns when done,
 * after the work queued on the context's stream. Errors as for upload. */
ATTN_API attn_status_t attn_buffer_download(attn_context_t *ctx, const attn_buffer_t *buf,
                                            size_t offset, void *dst, size_t bytes);
/* The raw pointer (a device pointer on CUDA) to pass to compute calls; NULL for NULL buf. */
ATTN_API void *attn_buffer_data(const attn_buffer_t *buf);
/* The size in bytes; 0 for NULL buf. */
ATTN_API size_t attn_buffer_size(const attn_buffer_t *buf);

/* ------------------------------------------------------------------------------------------ */
/* Problem description                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Sizes and batch layout, shared by every compute call.
 *
 * Uniform batches (query_offsets == annotation_offsets == NULL): `batch` sets, each with m
 * queries and n annotations; set b's matrices start `stride` elements after set b-1's.
 *
 * Variable-length batches (both offset arrays given, like FlashAttention's cu_seqlens): the
 * rows of all sets are concatenated. Set b has queries query_offsets[b] .. query_offsets[b+1]-1
 * and annotations annotation_offsets[b] .. annotation_offsets[b+1]-1. Then m and n are the
 * total row counts of the query and annotation matrices (offsets must stay within them), and
 * matrix strides are ignored. Scores and weights of query row r of set b are row r of S / W,
 * columns 0 .. n_b-1; their ld must cover the longest set.
 *
 * lengths (optional, [batch]): set b uses only its first lengths[b] annotations (0 <= lengths[b]
 * <= n_b). Annotations, values, scores and weights past that are never read; scores there are
 * written as -inf and weights as 0. A query with no valid annotation gets zero weights, a zero
 * context and lse = -inf.
 *
 * Offsets and lengths live where the context computes (device memory for CUDA). On the CPU they
 * are checked before any output is touched. On CUDA they are checked on the device: an invalid
 * set leaves every output of the call untouched and attn_context_synchronize() reports it. */
typedef struct attn_shape {
  int64_t batch;                     /* number of annotation sets, >= 1 */
  int64_t m;                         /* queries per set (uniform) or total query rows (varlen) */
  int64_t n;                         /* annotations per set (uniform) or total rows (varlen) */
  int64_t d;                         /* width of queries and annotations, >= 1 */
  int64_t dv;                        /* width of values and context, >= 1; == d without values */
  const int32_t *query_offsets;      /* NULL, or [batch + 1] non-decreasing, within [0, m] */
  const int32_t *annotation_offsets; /* NULL, or [batch + 1] non-decreasing, within [0, n] */
  const int32_t *lengths;            /* NULL (all valid), or [batch] valid annotations per set */
} attn_shape_t;

/* A read-only matrix: `data` is the first element of set 0. */
typedef struct attn_const_matrix {
  const float *data;
  int64_t ld;     /* elements between consecutive rows, >= the matrix's width */
  int64_t stride; /* elements between consecutive sets of a uniform batch; 0 shares one matrix
                     across all sets. Ignored for batch == 1 and for varlen batches. */
} attn_const_matrix_t;

/* A writable matrix; data == NULL means "not requested" where the output is optional. Sets of a
 * uniform batch must not overlap: stride >= (rows - 1) * ld + width when batch > 1. */
typedef struct attn_matrix {
  float *data;
  int64_t ld;
  int64_t stride;
} attn_matrix_t;

/* Builds a matrix descriptor (compound-literal friendly helpers). */
static inline attn_const_matrix_t attn_cmat(const float *data, int64_t ld, int64_t stride) {
  attn_const_matrix_t x;
  x.data = data;
  x.ld = ld;
  x.stride = stride;
  return x;
}
static inline attn_matrix_t attn_mat(float *data, int64_t ld, int64_t stride) {
  attn_matrix_t x;
  x.data = data;
  x.ld = ld;
  x.stride = stride;
  return x;
}

typedef enum attn_score_kind {
  ATTN_SCORE_DOT = 0,        /* s = q . a                          (Luong "dot") */
  ATTN_SCORE_SCALED_DOT = 1, /* s = scale * (q . a)                (Vaswani scaling) */
  ATTN_SCORE_GENERAL = 2,    /* s = q^T W a, W [d x d]             (Luong "general") */
  ATTN_SCORE_ADDITIVE = 3    /* s = v^T tanh(W_q q + W_a a)        (Bahdanau "concat") */
} attn_score_kind_t;

/* The score function. Pass NULL where a call takes `const attn_score_t *` for plain dot.
 * Parameter matrices are shared by all sets and live where the context computes. */
typedef struct attn_score {
  attn_score_kind_t kind;
  float scale;     /* SCALED_DOT: the factor; 0 means 1/sqrt(d). Must be finite. */
  const float *w;  /* GENERAL: W [d x d], row-major, leading dimension ldw >= d */
  int64_t ldw;     /*   s = sum_k sum_l q_k W[k][l] a_l */
  int64_t h;       /* ADDITIVE: hidden width, >= 1 */
  const float *wq; /* ADDITIVE: W_q [h x d], leading dimension ldwq >= d */
  int64_t ldwq;
  const float *wa; /* ADDITIVE: W_a [h x d], leading dimension ldwa >= d */
  int64_t ldwa;
  const float *v; /* ADDITIVE: v [h] */
} attn_score_t;

/* Convenience initialisers for attn_score_t. */
ATTN_API attn_score_t attn_score_dot(void);
ATTN_API attn_score_t attn_score_scaled_dot(float scale);
ATTN_API attn_score_t attn_score_general(const float *w, int64_t ldw);
ATTN_API attn_score_t attn_score_additive(int64_t h, const float *wq, int64_t ldwq, const float *wa,
                                          int64_t ldwa, const float *v);

/* ------------------------------------------------------------------------------------------ */
/* Compute calls: pointers live where the context computes. Asynchronous on CUDA (ordered on   */
/* the context's stream, no host synchronisation, no allocation once the workspace is sized,   */
/* safe to capture in a CUDA Graph).                                                           */
/* ------------------------------------------------------------------------------------------ */

/* Step 1, scoring: S = score(Q, A).
 *   shape:       sizes and batch layout (dv unused).
 *   score:       the score function; NULL = dot.
 *   queries:     Q [m x d] per set, required.
 *   annotations: A [n x d] per set, required.
 *   scores:      S [m x n] per set, required. Entries past a set's length get -inf. */
ATTN_API attn_status_t attn_scores(attn_context_t *ctx, const attn_shape_t *shape,
                                   const attn_score_t *score, attn_const_matrix_t queries,
                                   attn_const_matrix_t annotations, attn_matrix_t scores);

/* Step 2, softmax over each row's valid entries (max-subtracted, so scores in the thousands are
 * fine). Uses shape's batch, m, n, offsets and lengths; d and dv are unused (may be 0).
 * Infinities: a row whose valid scores are all -inf is treated as a row without valid entries
 * (zero weights, lse -inf), and a +inf or NaN score makes its row NaN. The fp32 backends compute
 * scores in fp32, so a score beyond the float range (|s| > 3.4e38, from finite but huge
 * inputs) is already +-inf there, while the REFERENCE backend, in double, still orders them.
 *   scores:  S [m x n] per set, required. Entries past a set's length are never read.
 *   weights: W [m x n] per set, required. May be exactly S (same data, ld, stride): in place.
 *   lse:     optional (NULL), log(sum(exp(s))) per query row: packed, one float per query,
 *            [batch * m] for uniform batches (set b, query i at b * m + i) or [m] for varlen.
 *            -inf for rows with no valid entry. */
ATTN_API attn_status_t attn_softmax(attn_context_t *ctx, const attn_shape_t *shape,
                                    attn_const_matrix_t scores, attn_matrix_t weights, float *lse);

/* Step 3, weighted sum: C = W V. Uses shape's batch, m, n, dv, offsets and lengths.
 *   weights: W [m x n] per set, required. Entries past a set's length are never read.
 *   values:  V [n x dv] per set, required (pass the annotations, with dv == d, for the
 *            walkthrough's c = sum_j w_j a_j).
 *   context: C [m x dv] per set, required. */
ATTN_API attn_status_t attn_weighted_sum(attn_context_t *ctx, const attn_shape_t *shape,
                                         attn_const_matrix_t weights, attn_const_matrix_t values,
                                         attn_matrix_t context);

/* Inputs of attn_forward. */
typedef struct attn_inputs {
  attn_const_matrix_t queries;     /* Q [m x d] per set, required */
  attn_const_matrix_t annotations; /* A [n x d] per set, required */
  attn_const_matrix_t values;      /* V [n x dv] per set; data NULL = the annotations (dv == d) */
} attn_inputs_t;

/* Outputs of attn_forward. */
typedef struct attn_outputs {
  attn_matrix_t context; /* C [m x dv] per set, required */
  attn_matrix_t scores;  /* S [m x n] per set, optional (data NULL) */
  attn_matrix_t weights; /* W [m x n] per set, optional (data NULL) */
  float *lse;            /* optional, packed as in attn_softmax */
} attn_outputs_t;

/* All three steps, fused where that is faster. Asking for scores or weights forces them to be
 * materialised; without them the backend may never form the score matrix. */
ATTN_API attn_status_t attn_forward(attn_context_t *ctx, const attn_shape_t *shape,
                                    const attn_score_t *score, const attn_inputs_t *in,
                                    const attn_outputs_t *out);

/* Grows the context's workspace so that attn_forward (and the step calls) on this shape and
 * score function need no allocation afterwards: call it before capturing a CUDA Graph. On the
 * CPU it also starts the context's OpenMP team, so that calls from the thread that reserved
 * allocate nothing either (the OpenMP runtime keeps its threads per calling thread). The
 * shape's offsets and lengths and the score's parameter matrices are never read, so they may
 * live in host or device memory (presence, alignment and leading dimensions are still checked).
 * A no-op on backends that need no workspace. */
ATTN_API attn_status_t attn_context_reserve(attn_context_t *ctx, const attn_shape_t *shape,
                                            const attn_score_t *score);

/* ------------------------------------------------------------------------------------------ */
/* Host-array convenience layer: every pointer (data, offsets, lengths, score parameters) is   */
/* host memory, on any backend. On CUDA the arrays are staged through device memory and the    */
/* call returns when the outputs are back on the host. Arguments and errors as above.          */
/* ------------------------------------------------------------------------------------------ */

ATTN_API attn_status_t attn_scores_host(attn_context_t *ctx, const attn_shape_t *shape,
                                        const attn_score_t *score, attn_const_matrix_t queries,
                                        attn_const_matrix_t annotations, attn_matrix_t scores);
ATTN_API attn_status_t attn_softmax_host(attn_context_t *ctx, const attn_shape_t *shape,
                                         attn_const_matrix_t scores, attn_matrix_t weights,
                                         float *lse);
ATTN_API attn_status_t attn_weighted_sum_host(attn_context_t *ctx, const attn_shape_t *shape,
                                              attn_const_matrix_t weights,
                                              attn_const_matrix_t values, attn_matrix_t context);
ATTN_API attn_status_t attn_forward_host(attn_context_t *ctx, const attn_shape_t *shape,
                                         const attn_score_t *score, const attn_inputs_t *in,
                                         const attn_outputs_t *out);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_H */
