/*
 * npy.h - a strict reader and writer for numpy's .npy format (versions 1.0, 2.0 and 3.0).
 *
 * Only what the attn tool needs is accepted: little-endian float32/float64/int32/int64 ('<f4',
 * '<f8', '<i4', '<i8'), C order (fortran_order False), up to NPY_MAX_DIMS dimensions. Anything
 * else is rejected with a message saying what is wrong: bad magic, unsupported version, dtype or
 * order, a malformed header, a shape whose byte count overflows, data shorter or longer than the
 * shape says. Sizes are checked against the bytes actually present before anything is allocated,
 * so a header claiming 2^60 elements costs nothing.
 *
 * Writing goes to a temporary file in the destination's folder, renamed at the end, so a failed
 * or interrupted write never leaves a half-written file under the final name.
 */
#ifndef ATTN_TOOLS_NPY_H
#define ATTN_TOOLS_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS     32
#define NPY_MAX_HEADER   65536 /* header bytes accepted (numpy itself writes < 1 KiB) */
#define NPY_MESSAGE_SIZE 512

typedef enum npy_dtype { NPY_F4 = 0, NPY_F8 = 1, NPY_I4 = 2, NPY_I8 = 3 } npy_dtype_t;

typedef struct npy_array {
  npy_dtype_t dtype;
  int ndim;                    /* 0 .. NPY_MAX_DIMS; 0 is a scalar with one element */
  int64_t shape[NPY_MAX_DIMS]; /* shape[0 .. ndim-1] */
  int64_t count;               /* product of the shape */
  void *data;                  /* count * npy_dtype_size(dtype) bytes, C order; NULL if 0 */
} npy_array_t;

/* The header of a .npy image: where the data starts and what it holds. */
typedef struct npy_header {
  int major, minor;   /* format version */
  size_t data_offset; /* bytes before the data */
  npy_dtype_t dtype;
  int ndim;
  int64_t shape[NPY_MAX_DIMS];
  int64_t count;     /* elements */
  size_t data_bytes; /* count * item size, checked for overflow */
} npy_header_t;

/* Bytes per element, and the numpy name ("float32", ...). */
size_t npy_dtype_size(npy_dtype_t dtype);
const char *npy_dtype_name(npy_dtype_t dtype);

/* Parses the header at the start of buf[0 .. len-1] (it need not hold the data). Returns 0, or
 * -1 with a message in err[err_size]. */
int npy_parse_header(const unsigned char *buf, size_t len, npy_header_t *hdr, char *err,
                     size_t err_size);

/* Parses a complete .npy image held in memory: header, then exactly hdr.data_bytes of data.
 * On success *out owns a copy of the data (free with npy_free). Returns 0 or -1 with err. */
int npy_parse(const unsigned char *buf, size_t len, npy_array_t *out, char *err, size_t err_size);

/* Reads a .npy file. Messages start with the path ("q.npy: truncated data: ..."). */
int npy_read_file(const char *path, npy_array_t *out, char *err, size_t err_size);

/* Frees the data of an array (not the struct) and zeroes it; NULL-safe. */
void npy_free(npy_array_t *a);

/* Formats a version 1.0 header for dtype/shape into buf[buf_size] (padded so that the data starts
 * at a multiple of 64 bytes). Returns its length, or 0 when it does not fit or ndim is bad. */
size_t npy_format_header(npy_dtype_t dtype, int ndim, const int64_t *shape, unsigned char *buf,
                         size_t buf_size);

/* Writes a .npy file to a new temporary file next to `path` and stores that file's name in
 * tmp_path[tmp_size]; the caller renames it into place (outfile_commit) or removes it. Nothing is
 * left behind on failure. Returns 0 or -1 with err naming `path`. */
int npy_write_temp(const char *path, npy_dtype_t dtype, int ndim, const int64_t *shape,
                   const void *data, char *tmp_path, size_t tmp_size, char *err, size_t err_size);

/* Writes a .npy file: a temporary file, then rename. Returns 0 or -1 with err. */
int npy_write_file(const char *path, npy_dtype_t dtype, int ndim, const int64_t *shape,
                   const void *data, char *err, size_t err_size);

#endif
