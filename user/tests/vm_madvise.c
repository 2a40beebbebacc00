/*
 * vm_madvise - MADV_DONTNEED drops private anonymous pages (they read back as zeros
 * and their frames are freed), keeps shared anonymous contents, and makes private
 * file pages show the file again; the harmless advice values succeed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define PAGES 1024 /* 4 MiB */

int main(void)
{
    long free0 = settled_memfree_kb();
    uint8_t *p = map_anon(PAGES * PAGE_SIZE);
    memset(p, 0xa5, PAGES * PAGE_SIZE);
    long free1 = settled_memfree_kb();
    if (on_pagoda())
        CHECK(free0 - free1 >= PAGES * 4);

    /* Drop the middle half: zeros there, the rest unchanged. */
    CHECK_OK(madvise(p + PAGES / 4 * PAGE_SIZE, PAGES / 2 * PAGE_SIZE, MADV_DONTNEED));
    for (size_t i = 0; i < PAGES; i++) {
        uint8_t want = (i >= PAGES / 4 && i < 3 * PAGES / 4) ? 0 : 0xa5;
        CHECK_EQ(p[i * PAGE_SIZE], want);
        CHECK_EQ(p[i * PAGE_SIZE + PAGE_SIZE - 1], want);
    }
    /* The dropped frames are free again (reading zeros does not take them back). */
    long free2 = settled_memfree_kb();
    if (on_pagoda())
        CHECK(free2 - free1 >= PAGES / 2 * 4 - MEMFREE_SLACK_KB);
    /* Still mapped and writable. */
    p[PAGES / 2 * PAGE_SIZE] = 7;
    CHECK_EQ(p[PAGES / 2 * PAGE_SIZE], 7);

    /* In a forked child, DONTNEED drops the child's view only. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (madvise(p, PAGES * PAGE_SIZE, MADV_DONTNEED) != 0 || p[0] != 0)
            _exit(2);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    CHECK_EQ(p[0], 0xa5);
    CHECK_OK(munmap(p, PAGES * PAGE_SIZE));

    /* Shared anonymous memory keeps its contents through DONTNEED. */
    uint8_t *s = mmap(NULL, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED);
    memset(s, 0x3c, 4 * PAGE_SIZE);
    CHECK_OK(madvise(s, 4 * PAGE_SIZE, MADV_DONTNEED));
    CHECK_EQ(s[0], 0x3c);
    CHECK_EQ(s[4 * PAGE_SIZE - 1], 0x3c);
    CHECK_OK(munmap(s, 4 * PAGE_SIZE));

    /* A private file mapping written to: DONTNEED discards the private copy and the
     * file's bytes show again. */
    int fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    uint8_t *f = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(f != MAP_FAILED);
    CHECK_OK(close(fd));
    f[10] = (uint8_t)~data_byte(10);
    f[PAGE_SIZE + 10] = (uint8_t)~data_byte(PAGE_SIZE + 10);
    CHECK_OK(madvise(f, PAGE_SIZE, MADV_DONTNEED));
    CHECK_EQ(f[10], data_byte(10));
    CHECK_EQ(f[PAGE_SIZE + 10], (uint8_t)~data_byte(PAGE_SIZE + 10));
    CHECK_OK(munmap(f, 2 * PAGE_SIZE));

    /* Advice that only hints succeeds on mapped memory. */
    uint8_t *h = map_anon(8 * PAGE_SIZE);
    CHECK_OK(madvise(h, 8 * PAGE_SIZE, MADV_NORMAL));
    CHECK_OK(madvise(h, 8 * PAGE_SIZE, MADV_RANDOM));
    CHECK_OK(madvise(h, 8 * PAGE_SIZE, MADV_SEQUENTIAL));
    CHECK_OK(madvise(h, 8 * PAGE_SIZE, MADV_WILLNEED));
    CHECK_OK(madvise(h, 0, MADV_DONTNEED));
    h[0] = 1;
    CHECK_OK(madvise(h, 100, MADV_DONTNEED)); /* length rounded up to the page */
    CHECK_EQ(h[0], 0);
    CHECK_OK(munmap(h, 8 * PAGE_SIZE));
    CHECK_MEMFREE_BACK(free0);
    return 0;
}
