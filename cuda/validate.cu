/*
 * validate.cu - checks offsets, lengths and varlen leading dimensions on the device, where they
 * live, without a host synchronisation.
 *
 * One block of 256 threads runs the host's checks (host/check.c) in the same order: query
 * offsets (negative start, a decrease, running past m), annotation offsets (the same against
 * n), lengths within [0, n_b], then for varlen calls every score/weight ld >= n_b. Each check
 * finds its first failing index with a block-wide min, so the report is deterministic. The
 * verdict goes to flag->bad for this call's kernels; the first failure's details stay in the
 * flag until attn_cuda_synchronize() reports and clears them.
 */
#include "validate.cuh"

#include <stdint.h>

#define VALIDATE_THREADS 256

struct validate_args {
  attn_cu_layout l;
  int nld;          /* how many score/weight lds to check against every n_b (varlen) */
  int64_t ld0, ld1; /* those lds ... */
  int arg0, arg1;   /* ... and their attn_cu_arg codes */
};

/* One failure: what, where, and the values for the message. */
struct failure {
  int code, arg;
  long long index, value, limit;
};

/* The smallest i in [first, last] with bad(i), or INT64_MAX; the same on every thread. */
template <class Pred>
static __device__ __forceinline__ int64_t first_index(int64_t first, int64_t last, Pred bad) {
  __shared__ int64_t partial[VALIDATE_THREADS / 32];
  int64_t best = INT64_MAX;
  for (int64_t i = first + threadIdx.x; i <= last; i += blockDim.x) {
    if (bad(i)) {
      best = i; /* a thread visits its indices in increasing order */
      break;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    int64_t other = __shfl_xor_sync(0xffffffffu, best, o);
    best = other < best ? other : best;
  }
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = best;
  __syncthreads();
  best = INT64_MAX;
  for (int w = 0; w < VALIDATE_THREADS / 32; w++)
    best = partial[w] < best ? partial[w] : best;
  __syncthreads(); /* partial is reused by the next call */
  return best;
}

static __device__ __forceinline__ failure fail(int code, int arg, long long index, long long value,
                                               long long limit) {
  failure f = {code, arg, index, value, limit};
  return f;
}

/* The first failure of one offsets array, code ATTN_CU_BAD_NONE when there is none. */
static __device__ __forceinline__ failure check_offsets(const int32_t *off, int64_t batch,
                                                        int64_t total, int arg) {
  if (off[0] < 0) return fail(ATTN_CU_BAD_NEGATIVE, arg, 0, off[0], 0);
  int64_t b = first_index(1, batch, [=](int64_t i) { return off[i] < off[i - 1]; });
  if (b != INT64_MAX) return fail(ATTN_CU_BAD_DECREASE, arg, b, off[b], off[b - 1]);
  if (off[batch] > total) return fail(ATTN_CU_BAD_PAST, arg, batch, off[batch], total);
  return fail(ATTN_CU_BAD_NONE, 0, 0, 0, 0);
}

/* The first set whose n_b exceeds ld. */
static __device__ __forceinline__ failure check_ld(const int32_t *ao, int64_t batch, int64_t ld,
                                                   int arg) {
  int64_t b = first_index(0, batch - 1, [=](int64_t i) { return (int64_t)ao[i + 1] - ao[i] > ld; });
  if (b != INT64_MAX) return fail(ATTN_CU_BAD_LD, arg, b, ld, (long long)ao[b + 1] - ao[b]);
  return fail(ATTN_CU_BAD_NONE, 0, 0, 0, 0);
}

static __device__ __forceinline__ failure check_all(const validate_args &a) {
  const attn_cu_layout &l = a.l;
  const int32_t *ao = l.ao;
  const int64_t n = l.n;
  failure f = fail(ATTN_CU_BAD_NONE, 0, 0, 0, 0);
  if (l.qo) {
    f = check_offsets(l.qo, l.batch, l.m, ATTN_CU_ARG_QUERY_OFFSETS);
    if (f.code == ATTN_CU_BAD_NONE)
      f = check_offsets(ao, l.batch, l.n, ATTN_CU_ARG_ANNOTATION_OFFSETS);
    if (f.code != ATTN_CU_BAD_NONE) return f;
  }
  if (l.lengths) {
    const int32_t *len = l.lengths;
    int64_t b = first_index(0, l.batch - 1, [=](int64_t i) {
      int64_t nb = ao ? (int64_t)ao[i + 1] - ao[i] : n;
      return len[i] < 0 || len[i] > nb;
    });
    if (b != INT64_MAX)
      return fail(ATTN_CU_BAD_LENGTH, ATTN_CU_ARG_LENGTHS, b, len[b],
                  ao ? (long long)ao[b + 1] - ao[b] : (long long)n);
  }
  if (ao && a.nld > 0) f = check_ld(ao, l.batch, a.ld0, a.arg0);
  if (ao && a.nld > 1 && f.code == ATTN_CU_BAD_NONE) f = check_ld(ao, l.batch, a.ld1, a.arg1);
  return f;
}

static __global__ void __launch_bounds__(VALIDATE_THREADS)
    validate_kernel(validate_args a, attn_cu_flag *flag) {
  const failure f = check_all(a);
  if (threadIdx.x != 0) return;
  flag->bad = f.code;
  if (f.code != ATTN_CU_BAD_NONE && flag->code == ATTN_CU_BAD_NONE) {
    flag->code = f.code;
    flag->arg = f.arg;
    flag->index = f.index;
    flag->value = f.value;
    flag->limit = f.limit;
  }
}

attn_cuda_status_t attn_cu_validate(attn_cuda_t *cu, cudaStream_t stream,
                                    const attn_cuda_problem_t *p, const int **bad) {
  *bad = NULL;
  if (!p->query_offsets && !p->lengths) return ATTN_CUDA_OK;
  validate_args a = {};
  a.l = attn_cu_layout_of(p);
  const struct {
    int64_t ld;
    int arg;
    bool used;
  } lds[] = {{p->scores_in.ld, ATTN_CU_ARG_SCORES_LD, p->scores_in.data != NULL},
             {p->scores.ld, ATTN_CU_ARG_SCORES_LD, p->scores.data != NULL},
             {p->weights_in.ld, ATTN_CU_ARG_WEIGHTS_LD, p->weights_in.data != NULL},
             {p->weights.ld, ATTN_CU_ARG_WEIGHTS_LD, p->weights.data != NULL}};
  for (const auto &x : lds) {
    if (!x.used) continue;
    if (a.nld++ == 0) {
      a.ld0 = x.ld;
      a.arg0 = x.arg;
    } else {
      a.ld1 = x.ld;
      a.arg1 = x.arg;
    }
  }
  validate_kernel<<<1, VALIDATE_THREADS, 0, stream>>>(a, cu->flag);
  ATTN_CU_CHECK(cu, cudaGetLastError());
  *bad = &cu->flag->bad;
  return ATTN_CUDA_OK;
}
