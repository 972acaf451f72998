/*
 * softmax.cuh - the softmax step over each query row's valid entries, with optional lse.
 */
#ifndef ATTN_CUDA_SOFTMAX_CUH
#define ATTN_CUDA_SOFTMAX_CUH

#include "layout.cuh"
#include "state.cuh"

/* W = softmax(S) row by row (W may be S: in place), lse optional. SIMPLE: a thread per row;
 * ROWS: a warp per short row, a block per long row. */
enum attn_cu_softmax_impl { ATTN_CU_SOFTMAX_SIMPLE, ATTN_CU_SOFTMAX_ROWS };
attn_cuda_status_t attn_cu_softmax(attn_cuda_t *cu, cudaStream_t stream, const attn_cu_layout &l,
                                   attn_cuda_cmat_t S, attn_cuda_mat_t W, float *lse,
                                   const int *bad, attn_cu_softmax_impl impl);

#endif
