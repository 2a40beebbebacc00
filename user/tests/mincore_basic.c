/*
 * mincore_basic - mincore reports residency one byte per page, with Linux's errors:
 * EINVAL for a misaligned address, ENOMEM for a range leaving the user half or reaching
 * a hole (after the bytes before it were written), EFAULT for a bad vector; length 0
 * succeeds anywhere. Untouched anonymous memory is not resident, written or read (the
 * zero page) memory is, MADV_DONTNEED makes it not resident again; a shared page
 * another process touched is resident through the object; a file's pages that were read
 * are resident. Swapped-out pages are tested by mlock_swap (the swap suite).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* A kernel-half address (Sv39): never a valid vector. */
#define KERNEL_ADDR ((void *)0xffffffc000000000UL)

static void errors(void)
{
    unsigned char vec[8];
    char *p = map_anon(4 * PAGE_SIZE);
    CHECK_ERR(mincore(p + 1, PAGE_SIZE, vec), EINVAL);
    CHECK_ERR(mincore(p, SIZE_MAX, vec), ENOMEM);
    CHECK_ERR(mincore(KERNEL_ADDR, PAGE_SIZE, vec), ENOMEM);
    CHECK_ERR(mincore(p, PAGE_SIZE, NULL), EFAULT);
    CHECK_ERR(mincore(p, PAGE_SIZE, KERNEL_ADDR), EFAULT);
    CHECK_OK(mincore((void *)PAGE_SIZE, 0, vec)); /* length 0: nothing checked */
    /* A hole: ENOMEM, the pages before it reported (QEMU's user mode refuses the
     * whole range before asking Linux: the bytes are checked on pagoda). */
    CHECK_OK(munmap(p + 2 * PAGE_SIZE, PAGE_SIZE));
    p[PAGE_SIZE] = 1;
    memset(vec, 7, sizeof vec);
    CHECK_ERR(mincore(p, 4 * PAGE_SIZE, vec), ENOMEM);
    if (on_pagoda()) {
        CHECK_EQ(vec[0], 0);
        CHECK_EQ(vec[1], 1);
        CHECK_EQ(vec[2], 7);
    }
    CHECK_ERR(mincore(p + 2 * PAGE_SIZE, PAGE_SIZE, vec), ENOMEM);
    /* A read-only vector: EFAULT. */
    unsigned char *ro = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ro != MAP_FAILED);
    CHECK_ERR(mincore(p, PAGE_SIZE, ro), EFAULT);
    CHECK_OK(munmap(ro, PAGE_SIZE));
    CHECK_OK(munmap(p, 4 * PAGE_SIZE));
}

static void anonymous(void)
{
    enum { N = 8 };
    unsigned char vec[N + 1];
    char *p = map_anon(N * PAGE_SIZE);
    CHECK_OK(mincore(p, N * PAGE_SIZE, vec));
    for (int i = 0; i < N; i++)
        CHECK_EQ(vec[i], 0);
    p[1 * PAGE_SIZE] = 1;
    volatile char sink = p[2 * PAGE_SIZE]; /* a read: the zero page */
    (void)sink;
    p[5 * PAGE_SIZE] = 1;
    /* A length that is not a page multiple covers the last partial page. */
    vec[N - 2] = 9;
    CHECK_OK(mincore(p, 5 * PAGE_SIZE + 1, vec));
    CHECK_EQ(vec[N - 2], 9); /* six bytes written, not more */
    unsigned char want[] = {0, 1, 1, 0, 0, 1};
    for (int i = 0; i < 6; i++)
        CHECK_EQ(vec[i] & 1, want[i]);
    CHECK_OK(madvise(p, N * PAGE_SIZE, MADV_DONTNEED));
    CHECK_OK(mincore(p, N * PAGE_SIZE, vec));
    for (int i = 0; i < N; i++)
        CHECK_EQ(vec[i], 0);
    /* Still resident after mprotect(PROT_NONE): residency is not access (QEMU's user
     * mode refuses an unreadable range with ENOMEM before asking Linux). */
    p[0] = 1;
    CHECK_OK(mprotect(p, PAGE_SIZE, PROT_NONE));
    if (on_pagoda()) {
        CHECK_OK(mincore(p, PAGE_SIZE, vec));
        CHECK_EQ(vec[0], 1);
    }
    CHECK_OK(munmap(p, N * PAGE_SIZE));
}

/* A shared page a child touched is resident for the parent, whose own PTE is absent. */
static void shared(void)
{
    unsigned char vec[4];
    char *s = mmap(NULL, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    CHECK(s != MAP_FAILED);
    CHECK_OK(mincore(s, 4 * PAGE_SIZE, vec));
    for (int i = 0; i < 4; i++)
        CHECK_EQ(vec[i], 0);
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        s[2 * PAGE_SIZE] = 1;
        _exit(0);
    }
    int status;
    CHECK_OK(waitpid(pid, &status, 0));
    CHECK_EXITED(status, 0);
    CHECK_OK(mincore(s, 4 * PAGE_SIZE, vec));
    CHECK_EQ(vec[0], 0);
    CHECK_EQ(vec[2], 1);
    CHECK_OK(munmap(s, 4 * PAGE_SIZE));
}

/* A file whose bytes were read is resident, untouched mapping or not. */
static void file(void)
{
    char buf[DATA_BIG_SIZE];
    int fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    CHECK_EQ(read(fd, buf, sizeof buf), (long)sizeof buf);
    size_t pages = (DATA_BIG_SIZE + PAGE_SIZE - 1) / PAGE_SIZE;
    char *m = mmap(NULL, pages * PAGE_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED);
    unsigned char vec[16];
    CHECK_OK(mincore(m, pages * PAGE_SIZE, vec));
    for (size_t i = 0; i < pages; i++)
        CHECK_EQ(vec[i] & 1, 1);
    CHECK_OK(munmap(m, pages * PAGE_SIZE));
    CHECK_OK(close(fd));
}

int main(void)
{
    errors();
    anonymous();
    shared();
    file();
    return 0;
}
