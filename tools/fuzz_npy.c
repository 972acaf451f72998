/*
 * fuzz_npy.c - libFuzzer target for the strict .npy reader (npy.c).
 *
 * Every input must either be rejected with a message or parse into an array whose sizes agree
 * with the input; a parsed header, formatted again by the writer, must parse to the same array.
 * Build (tests/cli/CMakeLists.txt does this when clang has libFuzzer):
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -Itools tools/fuzz_npy.c tools/npy.c \
 *           tools/outfile.c -o fuzz_npy
 * Run: ./fuzz_npy -max_total_time=600 CORPUS_DIR tests/cli/fuzz_corpus (README.md, "The attn
 * command-line tool").
 */
#include "npy.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check(int condition) {
  if (!condition) abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char err[NPY_MESSAGE_SIZE];
  npy_array_t a;
  if (npy_parse(data, size, &a, err, sizeof err) != 0) {
    check(err[0] != '\0');
    return 0;
  }
  /* The element count: 0 when any dimension is 0 (the others may then be huge), else the
   * product, which the reader has checked fits. */
  int64_t count = 1;
  for (int i = 0; i < a.ndim; i++)
    if (a.shape[i] == 0) count = 0;
  for (int i = 0; i < a.ndim && count; i++)
    check(!__builtin_mul_overflow(count, a.shape[i], &count));
  check(count == a.count);
  check((a.count == 0) == (a.data == NULL));
  unsigned char header[2048];
  size_t len = npy_format_header(a.dtype, a.ndim, a.shape, header, sizeof header);
  check(len > 0 && len % 64 == 0);
  npy_header_t h;
  check(npy_parse_header(header, len, &h, err, sizeof err) == 0);
  check(h.dtype == a.dtype && h.ndim == a.ndim && h.count == a.count && h.data_offset == len);
  check(memcmp(h.shape, a.shape, (size_t)a.ndim * sizeof a.shape[0]) == 0);
  if (a.count) check(memcmp(a.data, data + size - h.data_bytes, h.data_bytes) == 0);
  npy_free(&a);
  return 0;
}
