/*
 * fs_getdents - the raw getdents64 system call: record layout, iteration with small
 * buffers, end of directory, and the error cases.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

/* The layout getdents64 fills in (linux_dirent64). */
struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    uint16_t d_reclen;
    uint8_t d_type;
    char d_name[];
};

static long raw_getdents64(int fd, void *buf, size_t len)
{
    return syscall(SYS_getdents64, fd, buf, len);
}

/* Bit for each name seen in /data/dir: 1 ".", 2 "..", 4 "a", 8 "b", 16 "c". */
static unsigned name_bit(const char *name)
{
    static const char *const names[] = {".", "..", "a", "b", "c"};
    for (unsigned i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0)
            return 1u << i;
    check_fail(__FILE__, __LINE__, "unexpected entry '%s' in %s", name, DATA_DIR_PATH);
}

/* Read /data/dir with a buffer of `bufsize` bytes; returns the set of names seen. */
static unsigned read_dir(size_t bufsize)
{
    char buf[4096] __attribute__((aligned(8)));
    int fd = CHECK_OK(open(DATA_DIR_PATH, O_RDONLY | O_DIRECTORY));
    unsigned seen = 0;
    int calls = 0;
    for (;;) {
        long n = CHECK_OK(raw_getdents64(fd, buf, bufsize));
        if (n == 0)
            break;
        CHECK(n <= (long)bufsize);
        calls++;
        for (long off = 0; off < n;) {
            struct dirent64_raw *e = (struct dirent64_raw *)(buf + off);
            CHECK(e->d_reclen >= offsetof(struct dirent64_raw, d_name) + 2);
            CHECK_EQ(e->d_reclen % 8, 0);
            CHECK(off + e->d_reclen <= n);
            size_t room = e->d_reclen - offsetof(struct dirent64_raw, d_name);
            CHECK(strnlen(e->d_name, room) < room);
            unsigned bit = name_bit(e->d_name);
            CHECK((seen & bit) == 0);
            seen |= bit;
            CHECK(e->d_ino != 0);
            if (bit >= 4)
                CHECK_EQ(e->d_type, DT_REG);
            else
                CHECK_EQ(e->d_type, DT_DIR);
            off += e->d_reclen;
        }
    }
    CHECK(calls >= 1);
    /* Past the end it keeps returning 0. */
    CHECK_EQ(raw_getdents64(fd, buf, bufsize), 0);
    CHECK_OK(close(fd));
    return seen;
}

int main(void)
{
    char buf[256] __attribute__((aligned(8)));

    /* All five entries with a big buffer, and with a buffer for one record at a time. */
    CHECK_EQ(read_dir(4096), 31);
    CHECK_EQ(read_dir(offsetof(struct dirent64_raw, d_name) + 8), 31);

    /* The root lists the initramfs directories. */
    int root = CHECK_OK(open("/", O_RDONLY | O_DIRECTORY));
    char big[4096] __attribute__((aligned(8)));
    unsigned found = 0;
    long n;
    while ((n = CHECK_OK(raw_getdents64(root, big, sizeof big))) > 0) {
        for (long off = 0; off < n;) {
            struct dirent64_raw *e = (struct dirent64_raw *)(big + off);
            if (strcmp(e->d_name, "tests") == 0 && e->d_type == DT_DIR)
                found |= 1;
            if (strcmp(e->d_name, "init") == 0 && e->d_type == DT_REG)
                found |= 2;
            if (strcmp(e->d_name, "data") == 0 && e->d_type == DT_DIR)
                found |= 4;
            off += e->d_reclen;
        }
    }
    CHECK_EQ(found, 7);
    CHECK_OK(close(root));

    /* A buffer too small for even one record: EINVAL. */
    int fd = CHECK_OK(open(DATA_DIR_PATH, O_RDONLY | O_DIRECTORY));
    CHECK_ERR(raw_getdents64(fd, buf, 8), EINVAL);
    /* QEMU says ENOMEM for a zero-length buffer. */
    CHECK_ERR_LINUX(raw_getdents64(fd, buf, 0), EINVAL);
    CHECK_OK(close(fd));

    /* Not a directory, and bad descriptors. */
    fd = CHECK_OK(open(DATA_HELLO_PATH, O_RDONLY));
    CHECK_ERR(raw_getdents64(fd, buf, sizeof buf), ENOTDIR);
    CHECK_OK(close(fd));
    CHECK_ERR(raw_getdents64(fd, buf, sizeof buf), EBADF);
    CHECK_ERR(raw_getdents64(-1, buf, sizeof buf), EBADF);

    /* Directories cannot be opened for writing. */
    CHECK_ERR(open(DATA_DIR_PATH, O_WRONLY), EISDIR);

    /* glibc's readdir (built on getdents64) sees the same entries. */
    DIR *d = opendir(DATA_DIR_PATH);
    CHECK(d != NULL);
    unsigned seen = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        seen |= name_bit(e->d_name);
    CHECK_EQ(seen, 31);
    CHECK_OK(closedir(d));
    return 0;
}
