/*
 * vm_mmap_place - where mmap puts things: page-aligned, non-overlapping; on pagoda
 * top-down below the stack and above the program break (QEMU's user mode places
 * bottom-up); a free hint is honoured, an occupied one is not and nothing is
 * clobbered; MAP_FIXED replaces exactly its range; MAP_FIXED_NOREPLACE refuses with
 * EEXIST (on pagoda: QEMU 7.2 treats it as a hint).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

#define HINT ((uint8_t *)0x1000000000UL) /* 64 GiB: free in a fresh process */

/* True when [a, a+alen) and [b, b+blen) intersect. */
static int overlap(uintptr_t a, size_t alen, uintptr_t b, size_t blen)
{
    return a < b + blen && b < a + alen;
}

static void write_byte(void *p)
{
    *(volatile uint8_t *)p = 1;
}

int main(void)
{
    int stack_marker;
    uintptr_t brk_now = (uintptr_t)syscall(SYS_brk, 0);

    /* Ten areas of different sizes: aligned, disjoint, each holding its own pattern. */
    static const size_t sizes[] = {1, 3, 16, 1, 256, 2, 7, 64, 1, 5};
    uint8_t *areas[10];
    for (int i = 0; i < 10; i++) {
        size_t len = sizes[i] * PAGE_SIZE;
        areas[i] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(areas[i] != MAP_FAILED);
        CHECK_EQ((uintptr_t)areas[i] % PAGE_SIZE, 0);
        CHECK((uintptr_t)areas[i] > brk_now);
        CHECK((uintptr_t)areas[i] + len <= 0x4000000000UL || !on_pagoda());
        memset(areas[i], i + 1, len);
        for (int j = 0; j < i; j++)
            CHECK(!overlap((uintptr_t)areas[i], len, (uintptr_t)areas[j], sizes[j] * PAGE_SIZE));
        if (on_pagoda()) {
            /* Top-down: each new area lies below the previous one and below the stack. */
            CHECK((uintptr_t)areas[i] + len <= (uintptr_t)&stack_marker);
            if (i > 0)
                CHECK((uintptr_t)areas[i] < (uintptr_t)areas[i - 1]);
        }
    }
    for (int i = 0; i < 10; i++)
        for (size_t off = 0; off < sizes[i] * PAGE_SIZE; off += 1024)
            CHECK_EQ(areas[i][off], i + 1);
    /* A freed range is reused by a later request of the same size. */
    CHECK_OK(munmap(areas[4], 256 * PAGE_SIZE));
    uint8_t *again = mmap(NULL, 256 * PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(again != MAP_FAILED);
    if (on_pagoda())
        CHECK(again == areas[4]);
    CHECK_EQ(again[0], 0);
    CHECK_OK(munmap(again, 256 * PAGE_SIZE));
    for (int i = 0; i < 10; i++)
        if (i != 4)
            CHECK_OK(munmap(areas[i], sizes[i] * PAGE_SIZE));

    /* A free hint is honoured exactly. */
    uint8_t *h = mmap(HINT, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK_EQ(h, HINT);
    memset(h, 0x77, 4 * PAGE_SIZE);
    /* An occupied hint is not, and the occupant is untouched. */
    uint8_t *h2 = mmap(HINT + PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(h2 != MAP_FAILED);
    CHECK(!overlap((uintptr_t)h2, PAGE_SIZE, (uintptr_t)HINT, 4 * PAGE_SIZE));
    CHECK_EQ(h[PAGE_SIZE], 0x77);
    CHECK_OK(munmap(h2, PAGE_SIZE));

    /* MAP_FIXED replaces exactly its pages: fresh zeros there, neighbours intact. */
    uint8_t *f = mmap(HINT + PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK_EQ(f, HINT + PAGE_SIZE);
    CHECK_EQ(h[0], 0x77);
    CHECK_EQ(h[PAGE_SIZE - 1], 0x77);
    CHECK_EQ(h[PAGE_SIZE], 0);
    CHECK_EQ(h[3 * PAGE_SIZE - 1], 0);
    CHECK_EQ(h[3 * PAGE_SIZE], 0x77);
    CHECK_EQ(h[4 * PAGE_SIZE - 1], 0x77);
    /* MAP_FIXED with a different protection: the replaced page is read-only now. */
    f = mmap(HINT, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK_EQ(f, HINT);
    CHECK_EQ(h[0], 0);
    CHECK_SIGNALED(run_faulting_child(write_byte, HINT), SIGSEGV);
    CHECK_EXITED(run_in_child(write_byte, HINT + PAGE_SIZE), 0);

    /* MAP_FIXED_NOREPLACE: fine where free, EEXIST over any mapped page. */
    uint8_t *n = mmap(HINT + 8 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK_EQ(n, HINT + 8 * PAGE_SIZE);
    CHECK_ERR_LINUX(mmap(HINT, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), EEXIST);
    CHECK_ERR_LINUX(mmap(HINT + 3 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), EEXIST);
    CHECK_ERR_LINUX(mmap(HINT + 7 * PAGE_SIZE, 3 * PAGE_SIZE, PROT_READ,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), EEXIST);
    CHECK_EQ(h[3 * PAGE_SIZE], 0x77);
    CHECK_OK(munmap(HINT, 16 * PAGE_SIZE));
    return 0;
}
