/* /bin/ls - list directories, sorted, with the raw getdents64 system call ("/" by default). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The layout getdents64 fills in (linux_dirent64). */
struct dirent64_raw {
    unsigned long long d_ino;
    long long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

#define MAX_ENTRIES 1024

static int compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list(const char *path, int header)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        fprintf(stderr, "ls: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (header)
        printf("%s:\n", path);
    char buf[4096] __attribute__((aligned(8)));
    static char *names[MAX_ENTRIES];
    size_t count = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n < 0) {
            fprintf(stderr, "ls: %s: %s\n", path, strerror(errno));
            close(fd);
            return 1;
        }
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64_raw *e = (struct dirent64_raw *)(buf + off);
            if (e->d_name[0] != '.' && count < MAX_ENTRIES) {
                names[count] = malloc(strlen(e->d_name) + 2);
                if (!names[count])
                    break;
                sprintf(names[count++], "%s%s", e->d_name, e->d_type == DT_DIR ? "/" : "");
            }
            off += e->d_reclen;
        }
    }
    close(fd);
    qsort(names, count, sizeof names[0], compare);
    for (size_t i = 0; i < count; i++) {
        printf("%s\n", names[i]);
        free(names[i]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return list("/", 0);
    int failed = 0;
    for (int i = 1; i < argc; i++)
        failed |= list(argv[i], argc > 2);
    return failed;
}
