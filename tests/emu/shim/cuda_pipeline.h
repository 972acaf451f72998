#ifndef EMU_CUDA_PIPELINE_H
#define EMU_CUDA_PIPELINE_H
#include <stddef.h>
extern "C" void emu_async_copy(void *dst, const void *src, size_t n);
extern "C" void emu_async_commit(void);
extern "C" void emu_async_wait(size_t prior);
static inline void __pipeline_memcpy_async(void *dst, const void *src, size_t n) {
  emu_async_copy(dst, src, n);
}
static inline void __pipeline_commit(void) {
  emu_async_commit();
}
static inline void __pipeline_wait_prior(size_t prior) {
  emu_async_wait(prior);
}
#endif
