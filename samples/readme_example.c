#include <stdio.h>
#include "attn.h"

int main(void) {
  const float q[3] = {5, 1, 20}; /* one decoder state, d = 3 */
  const float a[4 * 3] = {3, 12, 45, 59, 2, 5, 1, 43, 5, 4, 3, 45.3f}; /* four annotations */
  float weights[4], context[3];

  attn_context_t *ctx;
  if (attn_context_create(NULL, &ctx) != ATTN_OK) { /* NULL: defaults, backend AUTO */
    fprintf(stderr, "attn: %s\n", attn_create_error());
    return 1;
  }
  attn_shape_t shape = {.batch = 1, .m = 1, .n = 4, .d = 3, .dv = 3};
  attn_inputs_t in = {.queries = attn_cmat(q, 3, 0), .annotations = attn_cmat(a, 3, 0)};
  attn_outputs_t out = {.context = attn_mat(context, 3, 0), .weights = attn_mat(weights, 4, 0)};
  attn_status_t st = attn_forward_host(ctx, &shape, NULL, &in, &out); /* NULL score: dot */
  if (st != ATTN_OK) {
    fprintf(stderr, "attn: %s: %s\n", attn_status_string(st), attn_context_last_error(ctx));
  } else {
    printf("backend %s (%s)\n", attn_backend_name(attn_context_backend(ctx)),
           attn_context_backend_reason(ctx));
    printf("weights %.4f %.4f %.4f %.4f\n", weights[0], weights[1], weights[2], weights[3]);
    printf("context %.4f %.4f %.4f\n", context[0], context[1], context[2]);
  }
  attn_context_destroy(ctx);
  return st == ATTN_OK ? 0 : 1;
}
