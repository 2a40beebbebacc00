/*
 * vm_mremap - mremap grows and shrinks in place, moves with MREMAP_MAYMOVE (every page's
 * data kept, the old range gone), moves over an existing mapping with MREMAP_FIXED,
 * leaves an empty range behind with MREMAP_DONTUNMAP, keeps copy-on-write sharing with
 * a forked child and a private file mapping's offset, fails with Linux's errors, and
 * gives every frame back at the end.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define P PAGE_SIZE
#define MOVE_PAGES 256 /* 1 MiB */

/* The raw system call: no C-library checks in front of the kernel's. */
static long remap(void *old, size_t old_len, size_t new_len, long flags, void *new_addr)
{
    return syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

static uint8_t *map_rw(size_t len)
{
    uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    return p;
}

/* Page i of [p, p + pages) holds tag + i in its first and last bytes. */
static void fill(uint8_t *p, size_t pages, uint8_t tag)
{
    for (size_t i = 0; i < pages; i++) {
        p[i * P] = (uint8_t)(tag + i);
        p[i * P + P - 1] = (uint8_t)(tag + i);
    }
}

static void check_filled(const uint8_t *p, size_t pages, uint8_t tag)
{
    for (size_t i = 0; i < pages; i++) {
        CHECK_EQ(p[i * P], (uint8_t)(tag + i));
        CHECK_EQ(p[i * P + P - 1], (uint8_t)(tag + i));
    }
}

static void touch(void *arg)
{
    volatile uint8_t *p = arg;
    (void)*p;
}

/* The page at p is not mapped: a read kills a child with SIGSEGV, msync says ENOMEM. */
static void check_gone(uint8_t *p)
{
    CHECK_SIGNALED(run_faulting_child(touch, p), SIGSEGV);
    CHECK_ERR(msync(p, P, MS_ASYNC), ENOMEM);
    unsigned char v;
    CHECK_ERR(mincore(p, P, &v), ENOMEM);
}

int main(void)
{
    long free0 = meminfo_kb("MemFree");

    /* Grow in place into free pages, then shrink: the tail is unmapped. */
    uint8_t *g = map_rw(8 * P);
    CHECK_OK(munmap(g + 4 * P, 4 * P));
    fill(g, 4, 10);
    CHECK_EQ(remap(g, 4 * P, 8 * P, 0, NULL), (long)g);
    check_filled(g, 4, 10);
    g[7 * P] = 1;
    CHECK_EQ(g[6 * P], 0);
    CHECK_EQ(remap(g, 8 * P, 2 * P, 0, NULL), (long)g);
    check_filled(g, 2, 10);
    check_gone(g + 2 * P);
    check_gone(g + 7 * P);

    /* A growth blocked by the next mapping: ENOMEM without MAYMOVE, a move with it. */
    uint8_t *m = map_rw((MOVE_PAGES + 1) * P);
    CHECK_OK(mprotect(m + MOVE_PAGES * P, P, PROT_NONE));
    fill(m, MOVE_PAGES, 20);
    CHECK_ERR(remap(m, MOVE_PAGES * P, 2 * MOVE_PAGES * P, 0, NULL), ENOMEM);
    uint8_t *n = (uint8_t *)CHECK_OK(
        remap(m, MOVE_PAGES * P, 2 * MOVE_PAGES * P, MREMAP_MAYMOVE, NULL));
    CHECK(n != m);
    check_filled(n, MOVE_PAGES, 20);
    CHECK_EQ(n[2 * MOVE_PAGES * P - 1], 0);
    check_gone(m);
    check_gone(m + (MOVE_PAGES - 1) * P);
    CHECK_OK(munmap(m + MOVE_PAGES * P, P));

    /* MREMAP_FIXED over the middle of another mapping: it replaces those pages only. */
    uint8_t *a = map_rw(4 * P), *b = map_rw(8 * P);
    fill(a, 4, 40);
    fill(b, 8, 80);
    CHECK_EQ(remap(a, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, b + 2 * P), (long)(b + 2 * P));
    check_filled(b, 2, 80);
    check_filled(b + 2 * P, 4, 40);
    check_filled(b + 6 * P, 2, 86);
    check_gone(a);

    /* MREMAP_DONTUNMAP: the pages move, the old range stays mapped and reads zeros. */
    uint8_t *d = map_rw(4 * P);
    fill(d, 4, 100);
    uint8_t *dn = (uint8_t *)CHECK_OK(
        remap(d, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
    CHECK(dn != d);
    check_filled(dn, 4, 100);
    CHECK_EQ(d[0], 0);
    CHECK_EQ(d[3 * P + P - 1], 0);
    CHECK_OK(msync(d, 4 * P, MS_ASYNC));
    d[P] = 5;
    CHECK_EQ(dn[P], 101);

    /* Copy-on-write with a child survives the parent's move: each keeps its data. */
    uint8_t *c = map_rw(16 * P);
    fill(c, 16, 1);
    int go[2];
    CHECK_OK(pipe(go));
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char x;
        if (read(go[0], &x, 1) != 1)
            _exit(2);
        for (size_t i = 0; i < 16; i++)
            if (c[i * P] != (uint8_t)(1 + i))
                _exit(3);
        memset(c, 0x77, 16 * P);
        for (size_t i = 0; i < 16; i++)
            if (c[i * P + 5] != 0x77)
                _exit(4);
        _exit(0);
    }
    uint8_t *cm = (uint8_t *)CHECK_OK(
        remap(c, 16 * P, 16 * P, MREMAP_MAYMOVE | MREMAP_FIXED, b));
    CHECK_EQ((long)cm, (long)b);
    check_filled(cm, 16, 1);
    fill(cm, 8, 200);
    CHECK_EQ(write(go[1], "g", 1), 1);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    check_filled(cm, 8, 200);
    check_filled(cm + 8 * P, 8, 9);
    CHECK_OK(close(go[0]));
    CHECK_OK(close(go[1]));

    /* A private file mapping moved keeps its file offset. */
    int fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    uint8_t *f = mmap(NULL, 5 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(f != MAP_FAILED);
    CHECK_OK(close(fd));
    CHECK_EQ(f[P + 3], data_byte(P + 3));
    f[P + 4] = (uint8_t)~data_byte(P + 4);
    uint8_t *hole = map_rw(8 * P);
    CHECK_EQ(remap(f + P, 3 * P, 3 * P, MREMAP_MAYMOVE | MREMAP_FIXED, hole), (long)hole);
    CHECK_EQ(hole[3], data_byte(P + 3));
    CHECK_EQ(hole[4], (uint8_t)~data_byte(P + 4));
    CHECK_EQ(hole[2 * P + 7], data_byte(3 * P + 7));
    CHECK_EQ(f[4 * P + 1], data_byte(4 * P + 1));
    check_gone(f + 2 * P);

    /* Linux's errors. */
    uint8_t *e = map_rw(4 * P);
    CHECK_ERR(remap(e, P, P, 8, NULL), EINVAL);
    CHECK_ERR(remap(e, P, P, MREMAP_FIXED, hole + 4 * P), EINVAL);
    CHECK_ERR(remap(e, P, P, MREMAP_DONTUNMAP, NULL), EINVAL);
    CHECK_ERR(remap(e, P, 2 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL), EINVAL);
    CHECK_ERR(remap(e + 1, P, P, 0, NULL), EINVAL);
    CHECK_ERR_LINUX(remap(e, P, 0, MREMAP_MAYMOVE, NULL), EINVAL);
    CHECK_ERR_LINUX(remap(e, 0, P, MREMAP_MAYMOVE, NULL), EINVAL);
    /* Old size 0 of a shared mapping: a second mapping of the same pages (Linux's
     * duplicate of a shared area), the old one staying; without MAYMOVE, ENOMEM. */
    uint8_t *sh = mmap(NULL, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    sh[0] = 41;
    sh[P] = 42;
    CHECK_ERR(remap(sh, 0, 2 * P, 0, NULL), ENOMEM);
    if (on_pagoda()) {
        /* qemu-riscv64's user mode does not emulate the duplicate (ENOMEM); Linux
         * 6.1 does (mm/mremap.c: old_len 0 allowed for VM_SHARED). */
        long dup = remap(sh + P, 0, P, MREMAP_MAYMOVE, NULL);
        CHECK(dup > 0 && (uint8_t *)dup != sh + P);
        CHECK_EQ(((uint8_t *)dup)[0], 42);
        ((uint8_t *)dup)[0] = 43;
        CHECK_EQ(sh[P], 43);
        CHECK_EQ(sh[0], 41);
        CHECK_OK(munmap((void *)dup, P));
    }
    CHECK_OK(munmap(sh, 2 * P));
    uint8_t *x = map_rw(3 * P);
    CHECK_OK(munmap(x + P, P));
    CHECK_ERR(remap(x + P, P, 2 * P, MREMAP_MAYMOVE, NULL), EFAULT);
    CHECK_ERR(remap(x + P, P, P, 0, NULL), EFAULT);
    CHECK_ERR_LINUX(remap(x, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, hole), EFAULT);
    CHECK_ERR(remap(e, 6 * P, 8 * P, MREMAP_MAYMOVE, NULL), EFAULT);
    CHECK_ERR(remap(e, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, e + P), EINVAL);
    CHECK_ERR(remap(e, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, hole + 1), EINVAL);

    CHECK_OK(munmap(g, 2 * P));
    CHECK_OK(munmap(n, 2 * MOVE_PAGES * P));
    CHECK_OK(munmap(b, 16 * P));
    CHECK_OK(munmap(d, 4 * P));
    CHECK_OK(munmap(dn, 4 * P));
    CHECK_OK(munmap(f, 5 * P));
    CHECK_OK(munmap(hole, 8 * P));
    CHECK_OK(munmap(e, 4 * P));
    CHECK_OK(munmap(x, 3 * P));
    CHECK_MEMFREE_BACK(free0);
    return 0;
}
