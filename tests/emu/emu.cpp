/*
 * emu.cpp - a CPU emulation of the CUDA runtime, of the cuBLAS calls attn makes and of the SIMT
 * execution of attn's kernels, so that the GPU suites can run where there is no GPU (see
 * README.md here). It is a test tool, not a backend: slow, x86-64 Linux only, and blind to
 * timing, to the memory model beyond what is below, and to anything a real compiler does.
 *
 * Every CUDA thread of a block is a fiber (its own stack, switched by emu_switch). Threads run
 * one at a time between barriers, in order or (EMU_REVERSE) in reverse. __syncthreads and
 * full-warp shuffles are barriers that fail loudly when reached at different counts or with
 * exited threads (divergence), or when every live thread waits (deadlock). Device memory is
 * mmap'd against a PROT_NONE guard page (after the end; EMU_FRONT: before the start) and filled
 * with NaN bytes; dynamic and static shared memory are NaN at every block start; a cp.async
 * destination reads NaN until its thread waits. EMU_SMS sets the multiprocessor count (default 4),
 * and EMU_OPTIN the opt-in shared memory a block may have (default 227 KiB); EMU_OCCUPANCY the
 * resident blocks a multiprocessor the occupancy query reports (default 1).
 */
#include "shim/cuda_runtime.h"
#include "shim/cublas_v2.h"
#include <map>
#include <vector>
#include <mutex>
static std::recursive_mutex emu_mu;
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>
#include <math.h>

void emu_die(const char *what);
void emu_die(const char *what) {
  fprintf(stderr, "EMU ERROR: %s (block %u thread %u)\n", what, blockIdx.x,
          emu_cur_tid ? emu_cur_tid->x : 0u);
  fflush(stderr);
  abort();
}

extern "C" void emu_switch(void **from_sp, void *to_sp);
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
)");

#define MAXT  1024
#define STACK (128 * 1024)
struct fiber {
  void *sp;
  emu_uint3 tid;
  int done;
  unsigned long syncs, shuffles;
};
static fiber fibers[MAXT];
static char *stacks;
static void *sched_sp;
static int cur = -1, nthreads;
emu_uint3 *emu_cur_tid;
emu_uint3 blockIdx, blockDim, gridDim;
static const std::function<void()> *cur_body;

struct barrier {
  int arrived;
  unsigned long gen;
  unsigned long count; /* the arrivals' sync/shuffle count */
  int waiters[MAXT];
};
static int runq[MAXT * 2], rq_head, rq_tail; /* ring */
static void rq_push(int t) {
  runq[rq_tail++ % (MAXT * 2)] = t;
}
static void release(barrier &b) {
  static int rev = getenv("EMU_REVERSE") != NULL;
  for (int i = 0; i < b.arrived - 1; i++)
    rq_push(b.waiters[rev ? b.arrived - 2 - i : i]);
  b.arrived = 0;
  b.gen++;
}
static barrier block_bar, warp_bar[MAXT / 32];
static uint64_t warp_vals[MAXT];
static int block_done, warp_done[MAXT / 32];

static void yield_to_sched() {
  emu_switch(&fibers[cur].sp, sched_sp);
}

/* cp.async: the destination reads NaN until the issuing thread waits for the copy's group;
 * then the copy lands. __pipeline_commit closes a group; __pipeline_wait_prior(N) lands every
 * copy of the groups older than the newest N committed. */
struct emu_copy {
  void *dst;
  const void *src;
  size_t n;
  size_t group; /* the thread's commit count when it was issued */
};
static std::vector<emu_copy> pending[MAXT];
static size_t committed[MAXT];
extern "C" void emu_async_copy(void *dst, const void *src, size_t n) {
  if (((size_t)dst | (size_t)src) % n) emu_die("misaligned cp.async");
  const float nan = NAN;
  for (size_t i = 0; i + 4 <= n; i += 4)
    memcpy((char *)dst + i, &nan, 4);
  pending[cur].push_back(emu_copy{dst, src, n, committed[cur]});
}
extern "C" void emu_async_commit(void) {
  committed[cur]++;
}
extern "C" void emu_async_wait(size_t prior) {
  std::vector<emu_copy> keep;
  for (const emu_copy &c : pending[cur]) {
    if (c.group + prior < committed[cur])
      memcpy(c.dst, c.src, c.n);
    else
      keep.push_back(c);
  }
  pending[cur].swap(keep);
}
static void fiber_entry() {
  (*cur_body)();
  if (!pending[cur].empty()) emu_die("a thread exited with cp.async copies never waited for");
  committed[cur] = 0;
  fiber &f = fibers[cur];
  f.done = 1;
  block_done++;
  warp_done[cur / 32]++;
  if (block_bar.arrived > 0) emu_die("a thread exited while others wait at __syncthreads");
  if (warp_bar[cur / 32].arrived > 0) emu_die("a lane exited while its warp waits in a shuffle");
  yield_to_sched();
  emu_die("finished fiber resumed");
}

/* Arrives at b, which releases once `size` fibers arrived, all with the same barrier count
 * (`divergent` otherwise), and waits for the release. */
static void arrive(barrier &b, int size, unsigned long count, const char *divergent) {
  if (b.arrived == 0)
    b.count = count;
  else if (b.count != count)
    emu_die(divergent);
  if (b.arrived + 1 == size) {
    b.arrived++;
    release(b);
    return;
  }
  b.waiters[b.arrived++] = cur;
  const unsigned long gen = b.gen;
  while (b.gen == gen)
    yield_to_sched();
}

void __syncthreads(void) {
  fiber &f = fibers[cur];
  f.syncs++;
  if (block_done) emu_die("__syncthreads after some threads of the block exited");
  arrive(block_bar, nthreads, f.syncs,
         "__syncthreads reached at different points (divergent barrier)");
}

static void warp_barrier(int warp) {
  if (warp * 32 + 32 > nthreads) emu_die("shuffle in a partial warp");
  if (warp_done[warp]) emu_die("full-mask shuffle while lanes of the warp exited");
  arrive(warp_bar[warp], 32, fibers[cur].shuffles,
         "lanes of a warp reached shuffles at different counts (divergent shuffle)");
}

void emu_warp_exchange(uint64_t mine, int src_lane, uint64_t *got, unsigned mask) {
  if (mask != 0xffffffffu) emu_die("shuffle with a partial mask");
  fiber &f = fibers[cur];
  const int warp = cur / 32;
  f.shuffles++;
  warp_vals[cur] = mine;
  warp_barrier(warp);
  *got = warp_vals[warp * 32 + src_lane];
  f.shuffles++;
  warp_barrier(warp);
}

void emu_syncwarp(void) {
  fiber &f = fibers[cur];
  f.shuffles++;
  warp_barrier(cur / 32);
}

int emu_warp_any(int pred, unsigned mask) {
  if (mask != 0xffffffffu) emu_die("vote with a partial mask");
  fiber &f = fibers[cur];
  const int warp = cur / 32;
  f.shuffles++;
  warp_vals[cur] = pred != 0;
  warp_barrier(warp);
  int any = 0;
  for (int i = 0; i < 32; i++)
    any |= (int)warp_vals[warp * 32 + i];
  f.shuffles++;
  warp_barrier(warp);
  return any;
}
static size_t optin_smem = 48 * 1024;
static thread_local unsigned cfg_grid, cfg_grid_y;
static thread_local size_t cfg_smem;
static float *dyn_smem;
void *emu_dynamic_smem(void) {
  return dyn_smem;
}
/* The static __shared__ variables the kernels have declared so far (prep.py). The first thread
 * to reach a declaration registers it before any thread can have written it, so it starts as
 * garbage; emu_run makes every one garbage again at each block start. */
static std::map<void *, size_t> static_smem;
void emu_static_smem(void *p, size_t bytes) {
  if (static_smem.emplace(p, bytes).second) memset(p, 0xff, bytes);
}
static thread_local int cfg_block, cfg_ok;
static thread_local cudaError_t last_error = cudaSuccess;
static long long launches;

void emu_config(dim3 g3, int block, size_t smem, void *stream) {
  (void)stream;
  unsigned grid = g3.x;
  cfg_ok = grid >= 1 && grid <= 2147483647u && g3.y >= 1 && g3.y <= 65535 && g3.z == 1 &&
           block >= 1 && block <= 1024 && smem <= optin_smem;
  if (!cfg_ok) {
    fprintf(stderr, "EMU: bad launch configuration grid %u x %u block %d smem %zu\n", grid, g3.y,
            block, smem);
    last_error = cudaErrorInvalidValue;
  }
  cfg_grid = grid;
  cfg_grid_y = g3.y;
  cfg_smem = smem;
  cfg_block = block;
}

void emu_run(const std::function<void()> &body) {
  std::lock_guard<std::recursive_mutex> g(emu_mu);
  if (!cfg_ok) return;
  launches++;
  if (getenv("EMU_TRACE"))
    fprintf(stderr, "launch %lld grid %u block %d\n", launches, cfg_grid, cfg_block);
  if (!stacks) stacks = (char *)malloc((size_t)MAXT * STACK);
  cur_body = &body;
  gridDim = emu_uint3{cfg_grid, cfg_grid_y, 1};
  blockDim = emu_uint3{(unsigned)cfg_block, 1, 1};
  nthreads = cfg_block;
  free(dyn_smem);
  dyn_smem = (float *)malloc(cfg_smem + 16);
  for (unsigned by = 0; by < cfg_grid_y; by++)
    for (unsigned b = 0; b < cfg_grid; b++) {
      blockIdx = emu_uint3{b, by, 0};
      for (size_t i = 0; i < cfg_smem / 4; i++)
        dyn_smem[i] = NAN; /* garbage, as on a GPU */
      for (const auto &v : static_smem)
        memset(v.first, 0xff, v.second); /* NaN for floats */
      block_bar.arrived = 0;
      block_done = 0;
      memset(warp_done, 0, sizeof warp_done);
      for (int w = 0; w < MAXT / 32; w++)
        warp_bar[w].arrived = 0;
      for (int t = 0; t < nthreads; t++) {
        fiber &f = fibers[t];
        f = fiber{};
        f.tid = emu_uint3{(unsigned)t, 0, 0};
        uintptr_t top = ((uintptr_t)(stacks + (size_t)(t + 1) * STACK)) & ~(uintptr_t)15;
        void **sp = (void **)top;
        *--sp = 0;                   /* fake return address of fiber_entry */
        *--sp = (void *)fiber_entry; /* ret target */
        for (int r = 0; r < 6; r++)
          *--sp = 0;
        f.sp = sp;
      }
      int left = nthreads;
      rq_head = rq_tail = 0;
      static int rev0 = getenv("EMU_REVERSE") != NULL;
      for (int t = 0; t < nthreads; t++)
        rq_push(rev0 ? nthreads - 1 - t : t);
      while (left > 0) {
        if (rq_head == rq_tail) emu_die("deadlock: every live thread waits at a barrier");
        int t = runq[rq_head++ % (MAXT * 2)];
        fiber &f = fibers[t];
        cur = t;
        emu_cur_tid = &f.tid;
        emu_switch(&sched_sp, f.sp);
        if (f.done) left--;
      }
      cur = -1;
      emu_cur_tid = NULL;
    }
}

/* ---- memory ---- */
struct alloc {
  char *base;
  size_t map_bytes, bytes;
};
static std::map<uintptr_t, alloc> allocs;

extern "C" cudaError_t cudaMalloc(void **p, size_t bytes) {
  std::lock_guard<std::recursive_mutex> g(emu_mu);
  if (bytes > ((size_t)64 << 30)) return last_error = cudaErrorMemoryAllocation;
  size_t ps = (size_t)sysconf(_SC_PAGESIZE);
  size_t rounded = (bytes + 15) / 16 * 16;
  size_t data_pages = (rounded + ps - 1) / ps;
  if (data_pages == 0) data_pages = 1;
  size_t map_bytes = (data_pages + 2) * ps;
  char *base =
      (char *)mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return last_error = cudaErrorMemoryAllocation;
  mprotect(base, ps, PROT_NONE);
  mprotect(base + (data_pages + 1) * ps, ps, PROT_NONE);
  char *user = getenv("EMU_FRONT") ? base + ps : base + (data_pages + 1) * ps - rounded;
  if (bytes < ((size_t)1 << 28)) memset(base + ps, 0xff, data_pages * ps); /* NaN garbage */
  allocs[(uintptr_t)user] = alloc{base, map_bytes, bytes};
  *p = user;
  return cudaSuccess;
}
extern "C" cudaError_t cudaFree(void *p) {
  std::lock_guard<std::recursive_mutex> g(emu_mu);
  if (!p) return cudaSuccess;
  auto it = allocs.find((uintptr_t)p);
  if (it == allocs.end()) return last_error = cudaErrorInvalidValue;
  munmap(it->second.base, it->second.map_bytes);
  allocs.erase(it);
  return cudaSuccess;
}
static const alloc *find_alloc(const void *p) {
  std::lock_guard<std::recursive_mutex> g(emu_mu);
  auto it = allocs.upper_bound((uintptr_t)p);
  if (it == allocs.begin()) return NULL;
  --it;
  if ((uintptr_t)p < it->first + (it->second.bytes ? it->second.bytes : 1)) return &it->second;
  return NULL;
}
extern "C" cudaError_t cudaMemset(void *p, int v, size_t bytes) {
  memset(p, v, bytes);
  return cudaSuccess;
}
extern "C" cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t) {
  memset(p, v, bytes);
  return cudaSuccess;
}
extern "C" cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes,
                                       enum cudaMemcpyKind, cudaStream_t) {
  memmove(dst, src, bytes);
  return cudaSuccess;
}
extern "C" cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return cudaSuccess;
}
extern "C" cudaError_t cudaStreamCreate(cudaStream_t *s) {
  static char streams;
  *s = (cudaStream_t)&streams; /* one in-order queue: kernels run at launch */
  return cudaSuccess;
}
extern "C" cudaError_t cudaStreamDestroy(cudaStream_t) {
  return cudaSuccess;
}
/* Events: work runs at launch, so an event's time is the host clock when it is recorded. */
struct CUevent_st {
  double ms;
};
extern "C" cudaError_t cudaEventCreate(cudaEvent_t *e) {
  *e = new CUevent_st{0.0};
  return cudaSuccess;
}
extern "C" cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
extern "C" cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  e->ms = (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
  return cudaSuccess;
}
extern "C" cudaError_t cudaEventSynchronize(cudaEvent_t) {
  return cudaSuccess;
}
extern "C" cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  *ms = (float)(end->ms - start->ms);
  return cudaSuccess;
}
extern "C" cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
  *free_bytes = (size_t)1 << 28;
  *total_bytes = (size_t)1 << 30;
  return cudaSuccess;
}
extern "C" cudaError_t cudaDeviceSynchronize(void) {
  return cudaSuccess;
}
extern "C" cudaError_t cudaGetLastError(void) {
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}
extern "C" cudaError_t cudaPeekAtLastError(void) {
  return last_error;
}
extern "C" const char *cudaGetErrorName(cudaError_t e) {
  return e ? "cudaErrorEmu" : "cudaSuccess";
}
extern "C" const char *cudaGetErrorString(cudaError_t e) {
  return e ? "emulated error" : "no error";
}
extern "C" cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p) {
  memset(a, 0, sizeof *a);
  if (find_alloc(p)) {
    a->type = cudaMemoryTypeDevice;
    a->device = 0;
  }
  return cudaSuccess;
}
static int current_device;
extern "C" cudaError_t cudaGetDevice(int *d) {
  *d = current_device;
  return cudaSuccess;
}
extern "C" cudaError_t cudaSetDevice(int d) {
  if (d != 0) return last_error = cudaErrorInvalidValue;
  current_device = d;
  return cudaSuccess;
}
extern "C" cudaError_t cudaDriverGetVersion(int *v) {
  *v = 13000;
  return cudaSuccess;
}
extern "C" cudaError_t cudaRuntimeGetVersion(int *v) {
  *v = 13000;
  return cudaSuccess;
}
extern "C" cudaError_t cudaGetDeviceCount(int *c) {
  *c = 1;
  return cudaSuccess;
}
extern "C" cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int) {
  if (a == cudaDevAttrMaxSharedMemoryPerBlockOptin) {
    const char *e = getenv("EMU_OPTIN");
    *v = e ? atoi(e) : 232448;
    return cudaSuccess;
  }
  if (a == cudaDevAttrMaxSharedMemoryPerMultiprocessor) { /* an H100's */
    *v = 233472;
    return cudaSuccess;
  }
  if (a == cudaDevAttrReservedSharedMemoryPerBlock) {
    *v = 1024;
    return cudaSuccess;
  }
  if (a == cudaDevAttrL2CacheSize) {
    *v = 1 << 20;
    return cudaSuccess;
  }
  if (a == cudaDevAttrMemoryClockRate || a == cudaDevAttrGlobalMemoryBusWidth) {
    *v = 1000;
    return cudaSuccess;
  }
  const char *e = getenv("EMU_SMS");
  *v = e ? atoi(e) : 4;
  return cudaSuccess;
}
/* cudaOccupancyMaxActiveBlocksPerMultiprocessor's answer for every kernel: EMU_OCCUPANCY, default
 * 1, so that a kernel whose grid is at most one wave of resident blocks (the short-set THREAD
 * kernel: attn_cuda_short_grid) loops over several turns on the suites' shapes. */
extern "C" int emu_occupancy(void) {
  const char *e = getenv("EMU_OCCUPANCY");
  return e ? atoi(e) : 1;
}
extern "C" cudaError_t emu_func_set_attribute(enum cudaFuncAttribute a, int v) {
  if (a != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  if (v > 232448) return last_error = cudaErrorInvalidValue;
  if ((size_t)v > optin_smem) optin_smem = (size_t)v;
  return cudaSuccess;
}
extern "C" cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int) {
  memset(p, 0, sizeof *p);
  strcpy(p->name, "EMU");
  p->major = 9;
  (void)cudaDeviceGetAttribute(&p->multiProcessorCount, cudaDevAttrMultiProcessorCount, 0);
  p->totalGlobalMem = (size_t)1 << 30;
  return cudaSuccess;
}

/* ---- cuBLAS ---- */
struct cublasContext {
  cudaStream_t stream;
  void *ws;
  size_t ws_bytes;
  int math;
};
extern "C" cublasStatus_t cublasCreate(cublasHandle_t *h) {
  *h = new cublasContext{};
  return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
  h->math = m;
  return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSetPointerMode(cublasHandle_t, cublasPointerMode_t) {
  return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  h->stream = s;
  h->ws = NULL;
  h->ws_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *w, size_t b) {
  h->ws = w;
  h->ws_bytes = b;
  return CUBLAS_STATUS_SUCCESS;
}
extern "C" const char *cublasGetStatusName(cublasStatus_t s) {
  return s ? "CUBLAS_STATUS_EMU" : "CUBLAS_STATUS_SUCCESS";
}
extern "C" const char *cublasGetStatusString(cublasStatus_t s) {
  return s ? "emulated cublas error" : "success";
}
extern "C" cublasStatus_t cublasGetVersion(cublasHandle_t, int *v) {
  *v = 130000;
  return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSasum(cublasHandle_t, int n, const float *x, int incx,
                                      float *result) {
  float sum = 0.0f; /* cuBLAS: 0 for n <= 0 or incx <= 0 */
  if (n <= 0 || incx <= 0) n = 0;
  for (long long i = 0; i < n; i++)
    sum += fabsf(x[i * incx]);
  *result = sum;
  return CUBLAS_STATUS_SUCCESS;
}
long long emu_gemm_calls;
extern "C" cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                                    cublasOperation_t tb, int m, int n, int k,
                                                    const float *alpha, const float *A, int lda,
                                                    long long sa, const float *B, int ldb,
                                                    long long sb, const float *beta, float *C,
                                                    int ldc, long long sc, int batch) {
  if (h->math != CUBLAS_DEFAULT_MATH) emu_die("cuBLAS math mode not plain fp32");
  /* attn sets its workspace after every cublasSetStream (graph capture needs it); a program of
   * its own, such as bench/gpu_bench.c, may leave cuBLAS its default (EMU_CUBLAS_ANY_WS=1). */
  if (!h->ws && !getenv("EMU_CUBLAS_ANY_WS"))
    emu_die("cuBLAS workspace not set after cublasSetStream");
  if (m < 0 || n < 0 || k < 0 || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  int arows = ta == CUBLAS_OP_N ? m : k, brows = tb == CUBLAS_OP_N ? k : n;
  if (lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) || ldc < (m > 1 ? m : 1)) {
    fprintf(stderr, "EMU cuBLAS: bad ld: m %d n %d k %d lda %d ldb %d ldc %d ta %d tb %d\n", m, n,
            k, lda, ldb, ldc, ta, tb);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  emu_gemm_calls++;
  for (int bt = 0; bt < batch; bt++) {
    const float *a = A + bt * sa, *b = B + bt * sb;
    float *c = C + bt * sc;
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) {
        float acc = 0.0f;
        for (int l = 0; l < k; l++) {
          float x = ta == CUBLAS_OP_N ? a[i + (long long)l * lda] : a[l + (long long)i * lda];
          float y = tb == CUBLAS_OP_N ? b[l + (long long)j * ldb] : b[j + (long long)l * ldb];
          acc += x * y;
        }
        c[i + (long long)j * ldc] =
            *beta == 0.0f ? *alpha * acc : *alpha * acc + *beta * c[i + (long long)j * ldc];
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                      int m, int n, int k, const float *alpha, const float *A,
                                      int lda, const float *B, int ldb, const float *beta, float *C,
                                      int ldc) {
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0,
                                   1);
}
