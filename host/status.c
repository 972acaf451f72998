/*
 * status.c - the functions that need no context: version, status strings, backend names and the
 * attn_score_t initialisers.
 */
#include "attn.h"

#include <math.h>
#include <stdio.h>

#define ATTN_STR2(x) #x
#define ATTN_STR(x)  ATTN_STR2(x)

int attn_version(void) {
  return ATTN_VERSION;
}

const char *attn_version_string(void) {
  return ATTN_STR(ATTN_VERSION_MAJOR) "." ATTN_STR(ATTN_VERSION_MINOR) "." ATTN_STR(
      ATTN_VERSION_PATCH);
}

int attn_built_with_cuda(void) {
#ifdef ATTN_WITH_CUDA
  return 1;
#else
  return 0;
#endif
}

const char *attn_status_string(attn_status_t status) {
  switch (status) {
  case ATTN_OK:
    return "ATTN_OK: success";
  case ATTN_ERR_NULL_POINTER:
    return "ATTN_ERR_NULL_POINTER: a required pointer is NULL";
  case ATTN_ERR_INVALID_ARG:
    return "ATTN_ERR_INVALID_ARG: invalid argument";
  case ATTN_ERR_INVALID_SIZE:
    return "ATTN_ERR_INVALID_SIZE: size negative or zero where zero is not allowed";
  case ATTN_ERR_INVALID_LD:
    return "ATTN_ERR_INVALID_LD: leading dimension or batch stride too small";
  case ATTN_ERR_INVALID_OFFSETS:
    return "ATTN_ERR_INVALID_OFFSETS: offsets decrease or run past the sizes";
  case ATTN_ERR_INVALID_LENGTH:
    return "ATTN_ERR_INVALID_LENGTH: valid length negative or past the set's size";
  case ATTN_ERR_OVERFLOW:
    return "ATTN_ERR_OVERFLOW: byte count overflows size_t";
  case ATTN_ERR_MISALIGNED:
    return "ATTN_ERR_MISALIGNED: pointer not aligned to its element size";
  case ATTN_ERR_ALLOC:
    return "ATTN_ERR_ALLOC: memory allocation failed";
  case ATTN_ERR_NO_DEVICE:
    return "ATTN_ERR_NO_DEVICE: no usable CUDA device";
  case ATTN_ERR_CUDA:
    return "ATTN_ERR_CUDA: CUDA runtime error";
  case ATTN_ERR_CUBLAS:
    return "ATTN_ERR_CUBLAS: cuBLAS error";
  case ATTN_ERR_CUDA_STICKY:
    return "ATTN_ERR_CUDA_STICKY: sticky CUDA error; the device is unusable in this process";
  case ATTN_ERR_INTERNAL:
    return "ATTN_ERR_INTERNAL: internal error in attn";
  }
  return "unknown attn status";
}

const char *attn_backend_name(attn_backend_t backend) {
  switch (backend) {
  case ATTN_BACKEND_AUTO:
    return "auto";
  case ATTN_BACKEND_CUDA:
    return "cuda";
  case ATTN_BACKEND_CPU:
    return "cpu";
  case ATTN_BACKEND_REFERENCE:
    return "reference";
  }
  return "unknown";
}

const char *attn_algo_name(attn_algo_t algo) {
  switch (algo) {
  case ATTN_ALGO_AUTO:
    return "auto";
  case ATTN_ALGO_SIMPLE:
    return "simple";
  case ATTN_ALGO_GEMM:
    return "gemm";
  case ATTN_ALGO_FUSED:
    return "fused";
  case ATTN_ALGO_ROWS:
    return "rows";
  }
  return "unknown";
}

attn_score_t attn_score_dot(void) {
  attn_score_t s = {0};
  s.kind = ATTN_SCORE_DOT;
  return s;
}

attn_score_t attn_score_scaled_dot(float scale) {
  attn_score_t s = {0};
  s.kind = ATTN_SCORE_SCALED_DOT;
  s.scale = scale;
  return s;
}

attn_score_t attn_score_general(const float *w, int64_t ldw) {
  attn_score_t s = {0};
  s.kind = ATTN_SCORE_GENERAL;
  s.w = w;
  s.ldw = ldw;
  return s;
}

attn_score_t attn_score_additive(int64_t h, const float *wq, int64_t ldwq, const float *wa,
                                 int64_t ldwa, const float *v) {
  attn_score_t s = {0};
  s.kind = ATTN_SCORE_ADDITIVE;
  s.h = h;
  s.wq = wq;
  s.ldwq = ldwq;
  s.wa = wa;
  s.ldwa = ldwa;
  s.v = v;
  return s;
}
