/*
 * outfile.h - all-or-nothing output files: write under a temporary name in the destination's
 * folder, then rename into place (atomic on POSIX file systems), so that a failed or interrupted
 * run never leaves a half-written file under the final name.
 */
#ifndef ATTN_TOOLS_OUTFILE_H
#define ATTN_TOOLS_OUTFILE_H

#include <stddef.h>

/* Creates an empty temporary file next to `path` (".NAME.tmp-XXXXXX" in the same folder) with the
 * usual permissions of a new file, and stores its name in tmp_path[tmp_size]. Returns an open
 * descriptor, or -1 with a message naming `path` in err[err_size]. */
int outfile_temp(const char *path, char *tmp_path, size_t tmp_size, char *err, size_t err_size);

/* Renames the finished temporary file onto `path`; on failure removes it. Returns 0 or -1. */
int outfile_commit(const char *tmp_path, const char *path, char *err, size_t err_size);

#endif
