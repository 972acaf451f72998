/*
 * problem.h - where one annotation set of a validated problem lives: the same arithmetic for
 * every host backend and for the staging layer, so uniform and varlen batches are walked one way.
 */
#ifndef ATTN_HOST_PROBLEM_H
#define ATTN_HOST_PROBLEM_H

#include "backend.h"

/* Set b of a problem: row counts and the first element of each matrix (NULL when unused). */
typedef struct attn_set {
  int64_t m;     /* queries in the set */
  int64_t n;     /* annotations in the set */
  int64_t valid; /* annotations used: lengths[b] or n */
  const float *queries, *annotations, *values, *scores_in, *weights_in;
  float *scores, *weights, *context;
  float *lse; /* first query's lse, or NULL */
} attn_set_t;

/* Fills *set for set b (0 <= b < p->batch). Offsets and lengths must be host-readable. */
void attn_problem_set(const attn_problem_t *p, int64_t b, attn_set_t *set);

/* The largest per-set annotation count (host-readable offsets), n for uniform batches. */
int64_t attn_problem_max_set_n(const attn_problem_t *p);

#endif
