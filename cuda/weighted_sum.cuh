/*
 * weighted_sum.cuh - the weighted-sum step C = W V over each query row's valid entries.
 */
#ifndef ATTN_CUDA_WEIGHTED_SUM_CUH
#define ATTN_CUDA_WEIGHTED_SUM_CUH

#include "layout.cuh"
#include "state.cuh"

/* SIMPLE: a thread per query row; ROWS: a block per query row, a thread per context column;
 * GEMM: cublasSgemmStridedBatched (uniform batches without lengths only). */
enum attn_cu_wsum_impl { ATTN_CU_WSUM_SIMPLE, ATTN_CU_WSUM_ROWS, ATTN_CU_WSUM_GEMM };
attn_cuda_status_t attn_cu_weighted_sum(attn_cuda_t *cu, cudaStream_t stream,
                                        const attn_cu_layout &l, int64_t dv, attn_cuda_cmat_t W,
                                        attn_cuda_cmat_t V, attn_cuda_mat_t C, const int *bad,
                                        attn_cu_wsum_impl impl);

/* After a GEMM weighted sum inside attn_forward: zeroes the context of every row whose weights
 * are all zero (no score above -inf), as the reference does whatever the values hold. */
attn_cuda_status_t attn_cu_zero_empty_rows(attn_cuda_t *cu, cudaStream_t stream,
                                           const attn_cu_layout &l, int64_t dv, attn_cuda_cmat_t W,
                                           attn_cuda_mat_t C);

#endif
