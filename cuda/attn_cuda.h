/*
 * attn_cuda.h - the one internal C interface between host/ and cuda/.
 *
 * Plain C: host/ includes it without any CUDA header. cuda/ never includes anything from host/;
 * everything a CUDA function needs arrives through these declarations. host/backend_cuda.c turns
 * an attn_problem_t into an attn_cuda_problem_t and the statuses below into attn_status_t.
 */
#ifndef ATTN_CUDA_H
#define ATTN_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Outcome of probing for a usable CUDA device. */
typedef enum attn_cuda_probe_result {
  ATTN_CUDA_USABLE = 0,
  ATTN_CUDA_NO_DRIVER = 1,      /* libcuda missing or not loadable */
  ATTN_CUDA_DRIVER_TOO_OLD = 2, /* the driver is older than the runtime attn was built with */
  ATTN_CUDA_NO_DEVICE = 3,      /* a driver but no device (or none visible) */
  ATTN_CUDA_BAD_INDEX = 4,      /* the requested device index does not exist */
  ATTN_CUDA_ARCH_TOO_OLD = 5,   /* compute capability below 8.0 */
  ATTN_CUDA_ERROR = 6           /* any other runtime failure while probing */
} attn_cuda_probe_result_t;

/* Decides whether `device` is usable and writes a one-line reason into reason[reason_size]
 * ("CUDA device 0 (NVIDIA H100 80GB HBM3, sm_90) usable", "no CUDA driver", ...). Never aborts,
 * never leaves a sticky error behind. */
attn_cuda_probe_result_t attn_cuda_probe(int device, char *reason, size_t reason_size);

/* 1 when ptr is device memory the host cannot read (managed memory gives 0). Cheap when no
 * device exists: the runtime is asked once per process whether any device is present. */
int attn_cuda_is_device_pointer(const void *ptr);

/* Outcome of every other call below. The message of a failure is in attn_cuda_message(). */
typedef enum attn_cuda_status {
  ATTN_CUDA_OK = 0,
  ATTN_CUDA_ERR_RUNTIME = 1,  /* a CUDA runtime call failed */
  ATTN_CUDA_ERR_CUBLAS = 2,   /* a cuBLAS call failed */
  ATTN_CUDA_ERR_STICKY = 3,   /* the device is in a sticky error state */
  ATTN_CUDA_ERR_ALLOC = 4,    /* device memory allocation failed (nothing leaked) */
  ATTN_CUDA_ERR_OVERFLOW = 5, /* a workspace size does not fit in size_t */
  ATTN_CUDA_ERR_POINTER = 6,  /* check_pointer: host memory or another device's memory */
  ATTN_CUDA_ERR_OFFSETS = 7,  /* synchronize: offsets found invalid on the device */
  ATTN_CUDA_ERR_LENGTH = 8,   /* synchronize: lengths found invalid on the device */
  ATTN_CUDA_ERR_LD = 9        /* synchronize: scores/weights ld shorter than a varlen set */
} attn_cuda_status_t;

/* Per-context CUDA state: device, cuBLAS handle, workspace, device-side error flag. */
typedef struct attn_cuda attn_cuda_t;

/* Creates the state on `device` (already probed usable). On failure *cu is untouched and the
 * message goes into msg[msg_size]. */
attn_cuda_status_t attn_cuda_create(int device, attn_cuda_t **cu, char *msg, size_t msg_size);
/* Frees everything the state owns (after the work queued on it). NULL is a no-op. */
void attn_cuda_destroy(attn_cuda_t *cu);
/* The message of the state's last failure. */
const char *attn_cuda_message(const attn_cuda_t *cu);

/* Device memory, aligned to 256 bytes. */
attn_cuda_status_t attn_cuda_alloc(attn_cuda_t *cu, size_t bytes, void **ptr);
void attn_cuda_free(attn_cuda_t *cu, void *ptr);
/* Copies bytes between any two pointers (cudaMemcpyDefault), ordered on `stream` (a
 * cudaStream_t, NULL = default) and complete when it returns. */
attn_cuda_status_t attn_cuda_copy(attn_cuda_t *cu, void *stream, void *dst, const void *src,
                                  size_t bytes);
/* ATTN_CUDA_OK when ptr can be read by kernels on the state's device (device memory of that
 * device, managed memory, registered host memory); ATTN_CUDA_ERR_POINTER otherwise. */
attn_cuda_status_t attn_cuda_check_pointer(attn_cuda_t *cu, const void *ptr);
/* Waits for `stream`, then reports (and clears) the first device-side argument error recorded
 * since the last call: ATTN_CUDA_ERR_OFFSETS / _LENGTH / _LD with a message naming the
 * argument and the set. */
attn_cuda_status_t attn_cuda_synchronize(attn_cuda_t *cu, void *stream);

/* --- Compute ------------------------------------------------------------------------------ */

typedef enum attn_cuda_op {
  ATTN_CUDA_OP_SCORES = 0,
  ATTN_CUDA_OP_SOFTMAX = 1,
  ATTN_CUDA_OP_WEIGHTED_SUM = 2,
  ATTN_CUDA_OP_FORWARD = 3
} attn_cuda_op_t;

/* The implementation to run (attn_algo_t's meaning; see dispatch.cu for what AUTO picks). */
typedef enum attn_cuda_algo {
  ATTN_CUDA_ALGO_AUTO = 0,
  ATTN_CUDA_ALGO_SIMPLE = 1, /* one thread per query row: the checked baseline */
  ATTN_CUDA_ALGO_GEMM = 2,   /* cuBLAS for uniform unmasked batches, row kernels otherwise */
  ATTN_CUDA_ALGO_ROWS = 3,   /* a block (or warp) per query row; scores never materialised */
  ATTN_CUDA_ALGO_FLASH = 4   /* forward without scores or weights: the one-pass flash kernels
                                (flash.cu: the plan; flash_*.cu: the kernels); ROWS for
                                everything else */
} attn_cuda_algo_t;

typedef enum attn_cuda_score_kind {
  ATTN_CUDA_SCORE_DOT = 0,
  ATTN_CUDA_SCORE_SCALED_DOT = 1,
  ATTN_CUDA_SCORE_GENERAL = 2,
  ATTN_CUDA_SCORE_ADDITIVE = 3
} attn_cuda_score_kind_t;

/* Row-major float matrices, as attn_const_matrix_t / attn_matrix_t. */
typedef struct attn_cuda_cmat {
  const float *data;
  int64_t ld, stride;
} attn_cuda_cmat_t;
typedef struct attn_cuda_mat {
  float *data;
  int64_t ld, stride;
} attn_cuda_mat_t;

/* One validated call; every pointer is device-readable. Fields mean what attn_problem_t's do. */
typedef struct attn_cuda_problem {
  attn_cuda_op_t op;
  attn_cuda_algo_t algo;
  int64_t batch, m, n, d, dv;
  const int32_t *query_offsets, *annotation_offsets, *lengths;
  attn_cuda_score_kind_t kind;
  float scale; /* SCALED_DOT (already resolved); 1 otherwise */
  const float *w;
  int64_t ldw;
  int64_t h;
  const float *wq;
  int64_t ldwq;
  const float *wa;
  int64_t ldwa;
  const float *v;
  attn_cuda_cmat_t queries, annotations, values, scores_in, weights_in;
  attn_cuda_mat_t scores, weights, context;
  float *lse;
} attn_cuda_problem_t;

/* What the flash forward's plan reads of a device: the CUDA state's own, or a test's
 * (attn_cuda_flash_plan_name). */
typedef struct attn_cuda_flash_device {
  int sm_count;         /* multiprocessors */
  int tile;             /* 1: the TILE variant's shared memory fits a block */
  size_t stream_smem;   /* shared memory a STREAM block may take (0: STREAM cannot run) */
  size_t smem_per_sm;   /* shared memory of a multiprocessor (0: unknown) ... */
  size_t smem_reserved; /* ... and the runtime's reservation a block */
  int tc; /* 1: the TC variant (forced only) can run: TILE's shared memory, opted in */
} attn_cuda_flash_device_t;

/* Tests: the flash plan AUTO picks for p on such a device (ATTN_CU_FLASH's forcing included),
 * by its name in cuda/flash_plans.h ("thread", "splittile16", "splitstream", ...; a split plan
 * whose sets hold one span is named unsplit), or "" where no flash kernel takes p. A function of
 * p's sizes, score form and pointer alignment only: it reads no memory through p's pointers and
 * needs no device. */
const char *attn_cuda_flash_plan_name(const attn_cuda_problem_t *p,
                                      const attn_cuda_flash_device_t *device);

/* Tests: the grid of THREAD's short-set kernel (cuda/flash_thread.cu) for `rows` query rows on
 * sm_count multiprocessors that hold `resident` of its blocks each (0: unknown, a block for each
 * 4 groups of 128 rows). Needs no device. */
unsigned attn_cuda_short_grid(int64_t rows, int sm_count, int resident);

/* Queues p on `stream`: no host synchronisation, no allocation once the workspace is big enough
 * (it grows here on first use otherwise). */
attn_cuda_status_t attn_cuda_run(attn_cuda_t *cu, void *stream, const attn_cuda_problem_t *p);
/* Grows the workspace for any call like p (offsets, lengths and outputs unread). */
attn_cuda_status_t attn_cuda_reserve(attn_cuda_t *cu, const attn_cuda_problem_t *p);

#ifdef __cplusplus
}
#endif

#endif
