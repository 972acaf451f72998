/*
 * outfile.c - temporary files renamed into place (see outfile.h).
 */
#include "outfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int outfile_temp(const char *path, char *tmp_path, size_t tmp_size, char *err, size_t err_size) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  /* The folder part: "." without a slash, "" (the root) for "/name". */
  int dir_len = slash ? (int)(slash - path) : 1;
  const char *dir = slash ? path : ".";
  if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
    snprintf(err, err_size, "%s: not a file name", path);
    return -1;
  }
  int n = snprintf(tmp_path, tmp_size, "%.*s/.%s.tmp-XXXXXX", dir_len, dir, base);
  if (n < 0 || (size_t)n >= tmp_size) {
    snprintf(err, err_size, "%s: path too long", path);
    return -1;
  }
  int fd = mkstemp(tmp_path);
  if (fd < 0) {
    snprintf(err, err_size, "%s: cannot create a file in '%.*s': %s", path, dir_len ? dir_len : 1,
             dir_len ? dir : "/", strerror(errno));
    return -1;
  }
  /* mkstemp makes the file 0600; give it the permissions open(O_CREAT, 0666) would. */
  mode_t mask = umask(0);
  umask(mask);
  if (fchmod(fd, 0666 & ~mask) != 0) {
    snprintf(err, err_size, "%s: cannot set permissions: %s", path, strerror(errno));
    close(fd);
    unlink(tmp_path);
    return -1;
  }
  return fd;
}

int outfile_commit(const char *tmp_path, const char *path, char *err, size_t err_size) {
  if (rename(tmp_path, path) == 0) return 0;
  snprintf(err, err_size, "%s: cannot rename the finished file into place: %s", path,
           strerror(errno));
  unlink(tmp_path);
  return -1;
}
