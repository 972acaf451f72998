#ifndef EMU_CUDA_RUNTIME_API_H
#define EMU_CUDA_RUNTIME_API_H
#include "cuda_runtime.h" /* the emulator's runtime API, for C code that includes this header */
#endif
