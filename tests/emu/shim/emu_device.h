/* Host emulation of the CUDA device features attn's kernels use. */
#ifndef EMU_DEVICE_H
#define EMU_DEVICE_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stddef.h>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __align__(n)    alignas(n)
#define __launch_bounds__(...)
#define __shared__ static
struct emu_uint3 {
  unsigned x, y, z;
};
extern emu_uint3 *emu_cur_tid;
extern emu_uint3 blockIdx, blockDim, gridDim;
#define threadIdx (*emu_cur_tid)
void __syncthreads(void);
void emu_warp_exchange(uint64_t mine, int src_lane, uint64_t *got, unsigned mask);
template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int o) {
  uint64_t m = 0, g = 0;
  memcpy(&m, &v, sizeof v);
  int lane = (int)(threadIdx.x % 32);
  emu_warp_exchange(m, lane ^ o, &g, mask);
  T r;
  memcpy(&r, &g, sizeof r);
  return r;
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src) {
  uint64_t m = 0, g = 0;
  memcpy(&m, &v, sizeof v);
  emu_warp_exchange(m, src & 31, &g, mask);
  T r;
  memcpy(&r, &g, sizeof r);
  return r;
}
template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta) {
  const unsigned lane = threadIdx.x % 32;
  return __shfl_sync(mask, v, (int)(lane >= delta ? lane - delta : lane));
}
int emu_warp_any(int pred, unsigned mask);
void emu_syncwarp(void);
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
  (void)mask;
  emu_syncwarp();
}
static inline int __any_sync(unsigned mask, int pred) {
  return emu_warp_any(pred, mask);
}
static inline float __fdividef(float a, float b) {
  if (fabsf(b) > 8.507059e37f && fabsf(b) <= 3.402823466e38f) return 0.0f; /* 2^126 < |b| */
  return a / b;
}
#include <functional>
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
/* CUDA's alignments: with -fsanitize=alignment (tests/emu/run.sh), a vector access at an address
 * a GPU would fault on stops the run. */
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
static inline float4 make_float4(float a, float b, float c, float d) {
  return float4{a, b, c, d};
}
static inline unsigned __float_as_uint(float x) {
  unsigned u;
  memcpy(&u, &x, sizeof u);
  return u;
}
static inline float __uint_as_float(unsigned u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}
static inline float __fmaf_rn(float a, float b, float c) {
  return fmaf(a, b, c);
}
static inline float __fadd_rn(float a, float b) {
  volatile float r = a + b;
  return r;
}
static inline float __fsub_rn(float a, float b) {
  volatile float r = a - b;
  return r;
}
static inline float __fmul_rn(float a, float b) {
  volatile float r = a * b;
  return r;
}
void *emu_dynamic_smem(void);
/* A static __shared__ variable (prep.py): NaN bytes when first seen and at every block start. */
void emu_static_smem(void *p, size_t bytes);
void emu_config(dim3 grid, int block, size_t smem, void *stream);
void emu_run(const std::function<void()> &body);
#endif
