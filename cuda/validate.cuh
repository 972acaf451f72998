/*
 * validate.cuh - the device-side check of offsets, lengths and varlen leading dimensions.
 */
#ifndef ATTN_CUDA_VALIDATE_CUH
#define ATTN_CUDA_VALIDATE_CUH

#include "layout.cuh"
#include "state.cuh"

/* Queues the check of p's offsets and lengths (and, for varlen calls, of the ld of every score
 * or weight matrix p uses) when p has any; *bad receives the device word the call's compute
 * kernels must test first (NULL when there is nothing to check). */
attn_cuda_status_t attn_cu_validate(attn_cuda_t *cu, cudaStream_t stream,
                                    const attn_cuda_problem_t *p, const int **bad);

/* First statement of every compute kernel: an invalid call writes nothing. */
__device__ inline bool attn_cu_call_is_bad(const int *bad) {
  return bad && *bad != 0;
}

#endif
