/*
 * test_plain_c.c - the public header is plain C: this program is compiled as C99 with -pedantic
 * -Wall -Wextra -Werror, with include/ as its only include directory (no Check, no CUDA header),
 * and runs the walkthrough through attn_forward_host on the default backend.
 */
#include <math.h>
#include <stdio.h>

#include "attn.h"

static int near(double x, double want, double rtol) {
  return fabs(x - want) <= rtol * fabs(want);
}

int main(void) {
  /* Decoder state q and four annotations (rows of a); values are the annotations. */
  const float q[3] = {5.0f, 1.0f, 20.0f};
  const float a[12] = {3, 12, 45, 59, 2, 5, 1, 43, 5, 4, 3, 45.3f};
  const double want[3] = {3.8807971, 4.0728263, 45.264239};
  float c[3] = {0, 0, 0}, s[4], w[4], lse = 0;
  attn_context_t *ctx = NULL;
  attn_shape_t shape = {1, 1, 4, 3, 3, NULL, NULL, NULL};
  attn_inputs_t in;
  attn_outputs_t out;
  attn_status_t st;
  int k, failures = 0;

  in.queries = attn_cmat(q, 3, 0);
  in.annotations = attn_cmat(a, 3, 0);
  in.values = attn_cmat(NULL, 0, 0);
  out.context = attn_mat(c, 3, 0);
  out.scores = attn_mat(s, 4, 0);
  out.weights = attn_mat(w, 4, 0);
  out.lse = &lse;

  if (attn_version() != ATTN_VERSION) {
    fprintf(stderr, "header version %d, library %d\n", ATTN_VERSION, attn_version());
    return 1;
  }
  st = attn_context_create(NULL, &ctx);
  if (st != ATTN_OK) {
    fprintf(stderr, "create: %s: %s\n", attn_status_string(st), attn_create_error());
    return 1;
  }
  st = attn_forward_host(ctx, &shape, NULL, &in, &out);
  if (st != ATTN_OK) {
    fprintf(stderr, "forward: %s: %s\n", attn_status_string(st), attn_context_last_error(ctx));
    attn_context_destroy(ctx);
    return 1;
  }
  printf("backend %s: context %.7f %.7f %.7f\n", attn_backend_name(attn_context_backend(ctx)),
         (double)c[0], (double)c[1], (double)c[2]);
  for (k = 0; k < 3; k++) {
    if (!near(c[k], want[k], 1e-5)) {
      fprintf(stderr, "context[%d] = %.9g, expected %.9g\n", k, (double)c[k], want[k]);
      failures++;
    }
  }
  if (s[0] != 927.0f || !near(w[3], 0.8807971, 1e-5) || !near(lse, 929.126928, 1e-6)) {
    fprintf(stderr, "scores/weights/lse: %g %g %g\n", (double)s[0], (double)w[3], (double)lse);
    failures++;
  }
  attn_context_destroy(ctx);
  return failures ? 1 : 0;
}
