/*
 * backend_cpu.c - the CPU backend. For now it runs the reference loops; the fast CPU backend
 * (threads, SIMD, BLAS, fused online softmax) replaces these entries.
 */
#include "context.h"

const attn_backend_ops_t attn_cpu_backend_ops = {
    .kind = ATTN_BACKEND_CPU,
    .host_readable = 1,
    .init = NULL,
    .fini = NULL,
    .mem_alloc = attn_host_mem_alloc,
    .mem_free = attn_host_mem_free,
    .copy_to_backend = attn_host_copy,
    .copy_to_host = attn_host_copy,
    .check_pointer = attn_host_check_pointer,
    .scores = attn_reference_scores,
    .softmax = attn_reference_softmax,
    .weighted_sum = attn_reference_weighted_sum,
    .forward = attn_reference_forward,
    .reserve = NULL,
    .synchronize = NULL,
};
