/*
 * forward.cuh - the forward pass without a materialised score matrix.
 */
#ifndef ATTN_CUDA_FORWARD_CUH
#define ATTN_CUDA_FORWARD_CUH

#include "scores.cuh"

/* Scores, softmax and context per query row, recomputing scores instead of storing them; S, W
 * (data NULL = not requested) and lse are written when given. SIMPLE: a thread per query row;
 * ROWS: a block per query row. Needs no workspace beyond the projections in si. */
enum attn_cu_forward_impl { ATTN_CU_FORWARD_SIMPLE, ATTN_CU_FORWARD_ROWS };
attn_cuda_status_t attn_cu_forward_rows(attn_cuda_t *cu, cudaStream_t stream,
                                        const attn_cu_score_in &si, int64_t dv, attn_cuda_cmat_t V,
                                        attn_cuda_mat_t S, attn_cuda_mat_t W, attn_cuda_mat_t C,
                                        float *lse, const int *bad, attn_cu_forward_impl impl);

#endif
