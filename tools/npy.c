/*
 * npy.c - the strict .npy reader and writer declared in npy.h.
 *
 * The header is a Python dict literal, e.g.
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ended by '\n'. It is parsed by a small recursive-descent parser that
 * accepts exactly the three keys, each once, in any order; it never calls a Python-like eval.
 */
#include "npy.h"
#include "outfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads and writes little-endian data in place: a little-endian host is required"
#endif

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
npy_fail(char *err, size_t err_size, const char *fmt, ...) {
  if (err && err_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
  }
  return -1;
}

size_t npy_dtype_size(npy_dtype_t dtype) {
  return (dtype == NPY_F4 || dtype == NPY_I4) ? 4 : 8;
}

const char *npy_dtype_name(npy_dtype_t dtype) {
  switch (dtype) {
  case NPY_F4:
    return "float32";
  case NPY_F8:
    return "float64";
  case NPY_I4:
    return "int32";
  case NPY_I8:
    return "int64";
  }
  return "unknown";
}

static const char *npy_dtype_descr(npy_dtype_t dtype) {
  switch (dtype) {
  case NPY_F4:
    return "<f4";
  case NPY_F8:
    return "<f8";
  case NPY_I4:
    return "<i4";
  case NPY_I8:
    return "<i8";
  }
  return "";
}

/* ---------------------------------------------------------------------------------------------
 * Header dict parser
 * ------------------------------------------------------------------------------------------- */

typedef struct cursor {
  const char *p, *end;
} cursor_t;

static void skip_space(cursor_t *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int accept_char(cursor_t *c, char ch) {
  skip_space(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* A quoted string without escapes, at most out_size - 1 characters. */
static int parse_string(cursor_t *c, char *out, size_t out_size, char *err, size_t err_size) {
  skip_space(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return npy_fail(err, err_size, "malformed header: expected a quoted string");
  char quote = *c->p++;
  size_t len = 0;
  while (c->p < c->end && *c->p != quote) {
    if (*c->p == '\\' || *c->p == '\n')
      return npy_fail(err, err_size, "malformed header: escape or newline inside a string");
    if (len + 1 >= out_size) return npy_fail(err, err_size, "malformed header: string too long");
    out[len++] = *c->p++;
  }
  if (c->p >= c->end) return npy_fail(err, err_size, "malformed header: unterminated string");
  c->p++;
  out[len] = '\0';
  return 0;
}

/* A non-negative decimal integer that fits int64_t (no sign, no leading zeros). */
static int parse_dim(cursor_t *c, int64_t *out, char *err, size_t err_size) {
  skip_space(c);
  if (c->p >= c->end || *c->p < '0' || *c->p > '9')
    return npy_fail(err, err_size, "malformed header: shape entries must be non-negative integers");
  if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9')
    return npy_fail(err, err_size, "malformed header: shape entry with a leading zero");
  int64_t v = 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    int digit = *c->p++ - '0';
    if (v > (INT64_MAX - digit) / 10)
      return npy_fail(err, err_size, "shape entry does not fit in 64 bits");
    v = v * 10 + digit;
  }
  *out = v;
  return 0;
}

/* A tuple of dims: "()", "(3,)", "(3, 4)", "(3, 4,)". A one-entry tuple needs its comma. */
static int parse_shape(cursor_t *c, npy_header_t *h, char *err, size_t err_size) {
  if (!accept_char(c, '('))
    return npy_fail(err, err_size, "malformed header: 'shape' must be a tuple");
  h->ndim = 0;
  if (accept_char(c, ')')) return 0;
  for (;;) {
    if (h->ndim == NPY_MAX_DIMS)
      return npy_fail(err, err_size, "shape has more than %d dimensions", NPY_MAX_DIMS);
    if (parse_dim(c, &h->shape[h->ndim], err, err_size)) return -1;
    h->ndim++;
    if (accept_char(c, ',')) {
      if (accept_char(c, ')')) return 0;
      continue;
    }
    if (accept_char(c, ')')) {
      if (h->ndim == 1)
        return npy_fail(err, err_size, "malformed header: a one-entry shape needs a comma: (n,)");
      return 0;
    }
    return npy_fail(err, err_size, "malformed header: expected ',' or ')' in 'shape'");
  }
}

static int parse_descr(cursor_t *c, npy_header_t *h, char *err, size_t err_size) {
  static const struct {
    const char *descr;
    npy_dtype_t dtype;
  } known[] = {{"<f4", NPY_F4}, {"<f8", NPY_F8}, {"<i4", NPY_I4}, {"<i8", NPY_I8}};
  char s[64];
  skip_space(c);
  if (c->p < c->end && *c->p == '[')
    return npy_fail(err, err_size, "unsupported dtype: structured arrays are not supported");
  if (parse_string(c, s, sizeof s, err, err_size)) return -1;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    if (strcmp(s, known[i].descr) == 0) {
      h->dtype = known[i].dtype;
      return 0;
    }
  }
  return npy_fail(err, err_size,
                  "unsupported dtype '%s' (supported: '<f4' float32, '<f8' float64, '<i4' int32, "
                  "'<i8' int64)",
                  s);
}

static int parse_fortran_order(cursor_t *c, int *fortran, char *err, size_t err_size) {
  skip_space(c);
  size_t left = (size_t)(c->end - c->p);
  if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
    c->p += 5;
    *fortran = 0;
    return 0;
  }
  if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
    c->p += 4;
    *fortran = 1;
    return 0;
  }
  return npy_fail(err, err_size, "malformed header: 'fortran_order' must be True or False");
}

static int parse_dict(const char *text, size_t len, npy_header_t *h, char *err, size_t err_size) {
  cursor_t c = {text, text + len};
  int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0;
  if (!accept_char(&c, '{')) return npy_fail(err, err_size, "malformed header: expected '{'");
  while (!accept_char(&c, '}')) {
    char key[32];
    if (parse_string(&c, key, sizeof key, err, err_size)) return -1;
    if (!accept_char(&c, ':'))
      return npy_fail(err, err_size, "malformed header: expected ':' after '%s'", key);
    int *seen;
    int rc;
    if (strcmp(key, "descr") == 0) {
      seen = &have_descr;
      rc = parse_descr(&c, h, err, err_size);
    } else if (strcmp(key, "fortran_order") == 0) {
      seen = &have_fortran;
      rc = parse_fortran_order(&c, &fortran, err, err_size);
    } else if (strcmp(key, "shape") == 0) {
      seen = &have_shape;
      rc = parse_shape(&c, h, err, err_size);
    } else {
      return npy_fail(err, err_size, "malformed header: unknown key '%s'", key);
    }
    if (rc) return -1;
    if (*seen) return npy_fail(err, err_size, "malformed header: key '%s' given twice", key);
    *seen = 1;
    if (accept_char(&c, ',')) continue;
    if (accept_char(&c, '}')) break;
    return npy_fail(err, err_size, "malformed header: expected ',' or '}'");
  }
  skip_space(&c);
  if (c.p != c.end) return npy_fail(err, err_size, "malformed header: text after the dict");
  if (!have_descr || !have_fortran || !have_shape)
    return npy_fail(err, err_size, "malformed header: missing key '%s'",
                    !have_descr     ? "descr"
                    : !have_fortran ? "fortran_order"
                                    : "shape");
  if (fortran)
    return npy_fail(err, err_size,
                    "fortran_order True is not supported: save a C-ordered array "
                    "(numpy.ascontiguousarray)");
  return 0;
}

/* Writes "(a, b, c)" into buf; used in messages. */
static const char *shape_text(int ndim, const int64_t *shape, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  used += (size_t)snprintf(buf, size, "(");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (used < size) snprintf(buf + used, size - used, ndim == 1 ? ",)" : ")");
  return buf;
}

/* count and data_bytes from the shape, with checked overflow. */
static int header_sizes(npy_header_t *h, char *err, size_t err_size) {
  int64_t count = 1;
  int zero = 0;
  for (int i = 0; i < h->ndim; i++)
    zero |= h->shape[i] == 0;
  if (zero) {
    count = 0;
  } else {
    for (int i = 0; i < h->ndim; i++) {
      if (count > INT64_MAX / h->shape[i]) {
        char s[256];
        return npy_fail(err, err_size, "shape %s: element count overflows 64 bits",
                        shape_text(h->ndim, h->shape, s, sizeof s));
      }
      count *= h->shape[i];
    }
  }
  size_t item = npy_dtype_size(h->dtype);
  if ((uint64_t)count > (uint64_t)(INT64_MAX / (int64_t)item) ||
      (uint64_t)count > SIZE_MAX / item) {
    char s[256];
    return npy_fail(err, err_size, "shape %s: %lld elements of %zu bytes overflow the byte count",
                    shape_text(h->ndim, h->shape, s, sizeof s), (long long)count, item);
  }
  h->count = count;
  h->data_bytes = (size_t)count * item;
  return 0;
}

int npy_parse_header(const unsigned char *buf, size_t len, npy_header_t *hdr, char *err,
                     size_t err_size) {
  npy_header_t h;
  memset(&h, 0, sizeof h);
  if (len < 8 || memcmp(buf, npy_magic, sizeof npy_magic) != 0)
    return npy_fail(err, err_size, "bad magic: not a .npy file");
  h.major = buf[6];
  h.minor = buf[7];
  if (h.minor != 0 || h.major < 1 || h.major > 3)
    return npy_fail(err, err_size, "unsupported .npy version %d.%d (1.0, 2.0 and 3.0 are read)",
                    h.major, h.minor);
  size_t prefix = h.major == 1 ? 10 : 12;
  if (len < prefix) return npy_fail(err, err_size, "truncated header");
  size_t header_len = (size_t)buf[8] | (size_t)buf[9] << 8;
  if (h.major > 1) header_len |= (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
  if (header_len > NPY_MAX_HEADER)
    return npy_fail(err, err_size, "header of %zu bytes is too long (at most %d)", header_len,
                    NPY_MAX_HEADER);
  if (len - prefix < header_len)
    return npy_fail(err, err_size, "truncated header: %zu bytes announced, %zu present", header_len,
                    len - prefix);
  const char *text = (const char *)buf + prefix;
  if (header_len == 0 || text[header_len - 1] != '\n')
    return npy_fail(err, err_size, "malformed header: it must end with a newline");
  for (size_t i = 0; i < header_len; i++) {
    if (text[i] == '\0') return npy_fail(err, err_size, "malformed header: NUL byte");
  }
  if (parse_dict(text, header_len, &h, err, err_size)) return -1;
  if (header_sizes(&h, err, err_size)) return -1;
  h.data_offset = prefix + header_len;
  *hdr = h;
  return 0;
}

/* The data length must be exactly what the shape says. */
static int check_data_length(const npy_header_t *h, uint64_t present, char *err, size_t err_size) {
  if (present == h->data_bytes) return 0;
  char s[256];
  shape_text(h->ndim, h->shape, s, sizeof s);
  if (present < h->data_bytes)
    return npy_fail(err, err_size,
                    "truncated data: shape %s of %s needs %zu bytes, only %llu present", s,
                    npy_dtype_name(h->dtype), h->data_bytes, (unsigned long long)present);
  return npy_fail(err, err_size,
                  "shape %s of %s needs %zu bytes but %llu follow the header: the shape does not "
                  "match the data length",
                  s, npy_dtype_name(h->dtype), h->data_bytes, (unsigned long long)present);
}

static void array_from_header(const npy_header_t *h, void *data, npy_array_t *out) {
  memset(out, 0, sizeof *out);
  out->dtype = h->dtype;
  out->ndim = h->ndim;
  memcpy(out->shape, h->shape, sizeof h->shape);
  out->count = h->count;
  out->data = data;
}

int npy_parse(const unsigned char *buf, size_t len, npy_array_t *out, char *err, size_t err_size) {
  npy_header_t h;
  if (npy_parse_header(buf, len, &h, err, err_size)) return -1;
  if (check_data_length(&h, len - h.data_offset, err, err_size)) return -1;
  void *data = NULL;
  if (h.data_bytes) {
    data = malloc(h.data_bytes);
    if (!data) return npy_fail(err, err_size, "out of memory for %zu bytes", h.data_bytes);
    memcpy(data, buf + h.data_offset, h.data_bytes);
  }
  array_from_header(&h, data, out);
  return 0;
}

int npy_read_file(const char *path, npy_array_t *out, char *err, size_t err_size) {
  char why[NPY_MESSAGE_SIZE];
  FILE *f = fopen(path, "rb");
  if (!f) return npy_fail(err, err_size, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return npy_fail(err, err_size, "%s: not a regular file", path);
  }
  /* The header fits in the first 12 + NPY_MAX_HEADER bytes. */
  size_t head_size = 12 + NPY_MAX_HEADER;
  if ((uint64_t)st.st_size < head_size) head_size = (size_t)st.st_size;
  unsigned char *head = malloc(head_size ? head_size : 1);
  if (!head) {
    fclose(f);
    return npy_fail(err, err_size, "%s: out of memory", path);
  }
  size_t got = fread(head, 1, head_size, f);
  npy_header_t h;
  int bad = npy_parse_header(head, got, &h, why, sizeof why);
  free(head);
  if (!bad && (uint64_t)st.st_size < h.data_offset) bad = npy_fail(why, sizeof why, "file changed");
  if (bad || check_data_length(&h, (uint64_t)st.st_size - h.data_offset, why, sizeof why)) {
    fclose(f);
    return npy_fail(err, err_size, "%s: %s", path, why);
  }
  void *data = NULL;
  if (h.data_bytes) {
    data = malloc(h.data_bytes);
    if (!data) {
      fclose(f);
      return npy_fail(err, err_size, "%s: out of memory for %zu bytes", path, h.data_bytes);
    }
    if (fseek(f, (long)h.data_offset, SEEK_SET) != 0 ||
        fread(data, 1, h.data_bytes, f) != h.data_bytes) {
      free(data);
      fclose(f);
      return npy_fail(err, err_size, "%s: truncated data while reading", path);
    }
  }
  fclose(f);
  array_from_header(&h, data, out);
  return 0;
}

void npy_free(npy_array_t *a) {
  if (!a) return;
  free(a->data);
  memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------------------------- */

size_t npy_format_header(npy_dtype_t dtype, int ndim, const int64_t *shape, unsigned char *buf,
                         size_t buf_size) {
  if (ndim < 0 || ndim > NPY_MAX_DIMS || buf_size < 64) return 0;
  char dict[1024], s[800];
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     npy_dtype_descr(dtype), shape_text(ndim, shape, s, sizeof s));
  if (len < 0 || (size_t)len >= sizeof dict) return 0;
  size_t total = 10 + (size_t)len + 1;
  total = (total + 63) / 64 * 64;
  if (total > buf_size || total - 10 > 65535) return 0;
  size_t header_len = total - 10;
  memcpy(buf, npy_magic, sizeof npy_magic);
  buf[6] = 1;
  buf[7] = 0;
  buf[8] = (unsigned char)(header_len & 0xff);
  buf[9] = (unsigned char)(header_len >> 8);
  memcpy(buf + 10, dict, (size_t)len);
  memset(buf + 10 + len, ' ', header_len - (size_t)len - 1);
  buf[total - 1] = '\n';
  return total;
}

int npy_write_temp(const char *path, npy_dtype_t dtype, int ndim, const int64_t *shape,
                   const void *data, char *tmp_path, size_t tmp_size, char *err, size_t err_size) {
  unsigned char header[2048];
  size_t header_len = npy_format_header(dtype, ndim, shape, header, sizeof header);
  if (!header_len)
    return npy_fail(err, err_size, "%s: cannot format a header for this shape", path);
  npy_header_t h;
  char why[NPY_MESSAGE_SIZE];
  if (npy_parse_header(header, header_len, &h, why, sizeof why))
    return npy_fail(err, err_size, "%s: %s", path, why);
  int fd = outfile_temp(path, tmp_path, tmp_size, err, err_size);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    int e = errno;
    close(fd);
    unlink(tmp_path);
    return npy_fail(err, err_size, "%s: %s", path, strerror(e));
  }
  int ok = fwrite(header, 1, header_len, f) == header_len;
  if (ok && h.data_bytes) ok = fwrite(data, 1, h.data_bytes, f) == h.data_bytes;
  if (ok) ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
  int e = errno;
  if (fclose(f) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  if (!ok) {
    unlink(tmp_path);
    return npy_fail(err, err_size, "%s: write failed: %s", path, strerror(e));
  }
  return 0;
}

int npy_write_file(const char *path, npy_dtype_t dtype, int ndim, const int64_t *shape,
                   const void *data, char *err, size_t err_size) {
  char tmp[4096];
  if (npy_write_temp(path, dtype, ndim, shape, data, tmp, sizeof tmp, err, err_size)) return -1;
  return outfile_commit(tmp, path, err, err_size);
}
