/*
 * flash_plans.h - the flash plans that ATTN_CU_FLASH can force (a test hook: see
 * attn_cu_flash_plan_of in flash.cuh), one X(name, variant, tile, split) each, in the order the
 * tests and bench/gpu_bench list them: variant is THREAD, BLOCK, TILE, WARP or STREAM (an
 * attn_cu_flash_variant without its prefix), tile the queries a block (BLOCK and TILE; 1
 * elsewhere), split 1 where each of a set's spans gets blocks of its own and the combine kernel
 * folds them. Plain macros, so that cuda/flash.cu, the C test suites and gpu_bench share the one
 * list.
 *
 * Every plan of ATTN_FLASH_PLANS gives the same bits. ATTN_FLASH_TC_PLANS lists the plans of an
 * arithmetic of their own (variant TC: TILE's structure with the two products on the tensor
 * cores, 3xTF32), which only ATTN_CU_FLASH runs, to be measured: within the reference's
 * tolerance, deterministic and batch-invariant among themselves, but not the bits of the others.
 */
#ifndef ATTN_FLASH_PLANS_H
#define ATTN_FLASH_PLANS_H

/* clang-format off */
#define ATTN_FLASH_PLANS(X)            \
  X(thread,      THREAD, 1,  0)        \
  X(block1,      BLOCK,  1,  0)        \
  X(block8,      BLOCK,  8,  0)        \
  X(split1,      BLOCK,  1,  1)        \
  X(split8,      BLOCK,  8,  1)        \
  X(tile,        TILE,   64, 0)        \
  X(splittile,   TILE,   64, 1)        \
  X(tile32,      TILE,   32, 0)        \
  X(splittile32, TILE,   32, 1)        \
  X(tile16,      TILE,   16, 0)        \
  X(splittile16, TILE,   16, 1)        \
  X(warp,        WARP,   1,  0)        \
  X(splitwarp,   WARP,   1,  1)        \
  X(stream,      STREAM, 1,  0)        \
  X(splitstream, STREAM, 1,  1)
#define ATTN_FLASH_TC_PLANS(X)         \
  X(tc,          TC,     64, 0)        \
  X(splittc,     TC,     64, 1)
/* clang-format on */

#endif
