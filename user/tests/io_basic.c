/*
 * io_basic - read, pread64, write, writev, openat, close and lseek on initramfs files and the
 * console, with the error cases Linux defines.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
    char buf[64];
    size_t hello_len = strlen(DATA_HELLO_TEXT);

    /* openat with AT_FDCWD and an absolute path; read the whole file, then EOF. */
    int fd = CHECK_OK(openat(AT_FDCWD, DATA_HELLO_PATH, O_RDONLY));
    CHECK(fd >= 3);
    CHECK_EQ(read(fd, buf, sizeof buf), hello_len);
    CHECK(memcmp(buf, DATA_HELLO_TEXT, hello_len) == 0);
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    CHECK_EQ(read(fd, buf, 0), 0);

    /* lseek: SEEK_SET, SEEK_CUR, SEEK_END, past the end, and the invalid cases. */
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), hello_len);
    CHECK_EQ(lseek(fd, 7, SEEK_SET), 7);
    CHECK_EQ(read(fd, buf, 6), 6);
    CHECK(memcmp(buf, "pagoda", 6) == 0);
    CHECK_EQ(lseek(fd, -2, SEEK_CUR), 11);
    CHECK_EQ(lseek(fd, -1, SEEK_END), hello_len - 1);
    CHECK_EQ(read(fd, buf, sizeof buf), 1);
    CHECK_EQ(buf[0], '\n');
    CHECK_EQ(lseek(fd, 100, SEEK_SET), 100);
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    CHECK_ERR(lseek(fd, -1, SEEK_SET), EINVAL);
    CHECK_ERR(lseek(fd, -100, SEEK_END), EINVAL);
    CHECK_ERR(lseek(fd, 0, 42), EINVAL);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 100);

    /* Reads of a large file in pieces see consecutive bytes. */
    int big = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    CHECK(big != fd);
    size_t off = 0;
    for (;;) {
        ssize_t n = read(big, buf, 37);
        CHECK(n >= 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            CHECK_EQ((uint8_t)buf[i], data_byte(off + (size_t)i));
        off += (size_t)n;
    }
    CHECK_EQ(off, DATA_BIG_SIZE);

    /* pread64: bytes at an offset, across the kernel's 4 KiB copy chunks, the file
     * offset untouched; 0 at and past the end; a short count at the end; EINVAL for a
     * negative offset; EFAULT for a bad buffer. */
    static uint8_t two_pages[2 * PAGE_SIZE];
    CHECK_OK(lseek(big, 5, SEEK_SET));
    CHECK_EQ(pread(big, two_pages, sizeof two_pages, 100), sizeof two_pages);
    for (size_t i = 0; i < sizeof two_pages; i++)
        CHECK_EQ(two_pages[i], data_byte(100 + i));
    CHECK_EQ(lseek(big, 0, SEEK_CUR), 5);
    CHECK_EQ(pread(big, buf, sizeof buf, DATA_BIG_SIZE - 10), 10);
    CHECK_EQ((uint8_t)buf[9], data_byte(DATA_BIG_SIZE - 1));
    CHECK_EQ(pread(big, buf, sizeof buf, DATA_BIG_SIZE), 0);
    CHECK_EQ(pread(big, buf, sizeof buf, DATA_BIG_SIZE + 4096), 0);
    CHECK_ERR(pread(big, buf, sizeof buf, -1), EINVAL);
    CHECK_ERR(syscall(SYS_pread64, big, (void *)8, 16, 0), EFAULT);
    CHECK_OK(close(big));

    /* Writing to a file opened read-only fails with EBADF. */
    CHECK_ERR(write(fd, "x", 1), EBADF);

    /* close, then every use of the closed descriptor is EBADF. */
    CHECK_OK(close(fd));
    CHECK_ERR(close(fd), EBADF);
    CHECK_ERR(read(fd, buf, 1), EBADF);
    CHECK_ERR(lseek(fd, 0, SEEK_SET), EBADF);
    CHECK_ERR(close(-1), EBADF);
    CHECK_ERR(close(12345), EBADF);
    CHECK_ERR(write(-1, "x", 1), EBADF);
    CHECK_ERR(read(999, buf, 1), EBADF);

    /* The lowest free descriptor is reused. */
    int again = CHECK_OK(open(DATA_HELLO_PATH, O_RDONLY));
    CHECK_EQ(again, fd);
    CHECK_OK(close(again));

    /* openat errors: missing file, missing directory, bad dirfd for a relative path. */
    CHECK_ERR(openat(AT_FDCWD, "/data/no-such-file", O_RDONLY), ENOENT);
    CHECK_ERR(openat(AT_FDCWD, "/no-such-dir/x", O_RDONLY), ENOENT);
    CHECK_ERR(openat(AT_FDCWD, "", O_RDONLY), ENOENT);
    CHECK_ERR(openat(-1, "relative", O_RDONLY), EBADF);
    CHECK_ERR(openat(4321, "relative", O_RDONLY), EBADF);
    CHECK_ERR(openat(AT_FDCWD, "/data/hello.txt/x", O_RDONLY), ENOTDIR);
    CHECK_ERR(openat(AT_FDCWD, DATA_HELLO_PATH, O_RDONLY | O_DIRECTORY), ENOTDIR);
    /* An absolute path ignores dirfd, even an invalid one. */
    fd = CHECK_OK(openat(-1, DATA_HELLO_PATH, O_RDONLY));
    CHECK_OK(close(fd));
    /* A relative path is looked up in the directory dirfd names. */
    int dir = CHECK_OK(open("/data", O_RDONLY | O_DIRECTORY));
    fd = CHECK_OK(openat(dir, "hello.txt", O_RDONLY));
    CHECK_EQ(read(fd, buf, sizeof buf), hello_len);
    CHECK_OK(close(fd));
    /* read() of a directory is EISDIR. */
    CHECK_ERR(read(dir, buf, sizeof buf), EISDIR);
    CHECK_OK(close(dir));

    /* write and writev to the console (stdout): the full length is reported. */
    CHECK_EQ(write(1, "", 0), 0);
    struct iovec iov[3] = {
        {.iov_base = "io_basic: ", .iov_len = 10},
        {.iov_base = "", .iov_len = 0},
        {.iov_base = "writev ok\n", .iov_len = 10},
    };
    CHECK_EQ(writev(1, iov, 3), 20);
    CHECK_EQ(writev(1, iov, 0), 0);
    CHECK_ERR(writev(-1, iov, 3), EBADF);
    CHECK_ERR(syscall(SYS_writev, 1, iov, -1), EINVAL);
    /* The raw syscall numbers are the generic ones (riscv64 has no legacy open). */
    CHECK_EQ(syscall(SYS_write, 1, "io_basic: write ok\n", 19), 19);
    return 0;
}
