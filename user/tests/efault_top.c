/*
 * efault_top - a buffer that starts in the top page of the user half and runs past its
 * end is EFAULT as a whole, before any byte moves (Linux's access_ok): read, pread64,
 * readv, write, getrandom. Regression: pagoda checked 4 KiB chunk by chunk and copied
 * the first chunk before failing.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"

/* The end of the Sv39 user half (exclusive) and its top page. */
#define USER_END 0x4000000000UL
#define TOP_PAGE (USER_END - PAGE_SIZE)

int main(void)
{
    /*
     * The top page: the stack's on pagoda (already mapped: main's own frames may live in
     * it, so its bytes are compared only when the test mapped it), else map it.
     */
    void *p = mmap((void *)TOP_PAGE, PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED) {
        if (errno != EEXIST) {
            /* QEMU's user mode cannot place a mapping there: nothing to check. */
            CHECK(!on_pagoda());
            return 0;
        }
    } else {
        CHECK(p == (void *)TOP_PAGE);
    }
    int ours = p != MAP_FAILED;
    /* The last 2 KiB of the user half, and the 2 KiB past it. */
    uint8_t *buf = (uint8_t *)(USER_END - 2048);
    uint8_t before[2048];
    memcpy(before, buf, sizeof before);

    int fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    CHECK_ERR(syscall(SYS_read, fd, buf, 4096), EFAULT);
    CHECK(!ours || memcmp(before, buf, sizeof before) == 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    CHECK_ERR(syscall(SYS_pread64, fd, buf, 4096, 0), EFAULT);
    CHECK(!ours || memcmp(before, buf, sizeof before) == 0);
    struct iovec iov = {.iov_base = buf, .iov_len = 4096};
    CHECK_ERR(readv(fd, &iov, 1), EFAULT);
    CHECK(!ours || memcmp(before, buf, sizeof before) == 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    CHECK_ERR(syscall(SYS_getrandom, buf, 4096, 0), EFAULT);
    CHECK(!ours || memcmp(before, buf, sizeof before) == 0);
    /* Writing from it: nothing reaches the file (the console). */
    CHECK_ERR(syscall(SYS_write, 1, buf, 4096), EFAULT);

    /* Inside the half, the same calls work. */
    if (ours) {
        CHECK_EQ(syscall(SYS_pread64, fd, buf, 2048, 0), 2048);
        for (size_t i = 0; i < 2048; i++)
            CHECK_EQ(buf[i], data_byte(i));
    }
    CHECK_OK(close(fd));
    return 0;
}
