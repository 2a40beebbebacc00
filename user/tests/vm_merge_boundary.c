/*
 * vm_merge_boundary - areas mapped next to each other behave as one range (mprotect,
 * munmap and madvise across the seam), the first and last page of every piece work
 * and the pages just outside fault; many split/merge rounds of the same range keep
 * contents and leak nothing (MemFree checked on pagoda).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#define BASE ((uint8_t *)0x1100000000UL) /* a free range in a fresh process */
#define RW (PROT_READ | PROT_WRITE)
#define FIXED (MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)

static void read_byte(void *p)
{
    (void)*(volatile uint8_t *)p;
}

static void write_byte(void *p)
{
    *(volatile uint8_t *)p = 1;
}

/* Map `pages` pages at BASE + first page, read-write, each filled with its page index. */
static void map_piece(size_t first, size_t pages)
{
    uint8_t *want = BASE + first * PAGE_SIZE;
    CHECK_EQ(mmap(want, pages * PAGE_SIZE, RW, FIXED, -1, 0), want);
    for (size_t i = first; i < first + pages; i++)
        memset(BASE + i * PAGE_SIZE, (int)i, PAGE_SIZE);
}

int main(void)
{
    long free0 = meminfo_kb("MemFree");

    /* Three pieces mapped separately, back to back: [0,4) [4,8) [8,16). */
    map_piece(4, 4);
    map_piece(0, 4);
    map_piece(8, 8);
    /* The pages just outside the whole range are holes. */
    CHECK_ERR(mprotect(BASE - PAGE_SIZE, PAGE_SIZE, PROT_READ), ENOMEM);
    CHECK_ERR(mprotect(BASE + 16 * PAGE_SIZE, PAGE_SIZE, PROT_READ), ENOMEM);
    CHECK_SIGNALED(run_faulting_child(read_byte, BASE - 1), SIGSEGV);
    CHECK_SIGNALED(run_faulting_child(read_byte, BASE + 16 * PAGE_SIZE), SIGSEGV);
    /* First and last byte of every piece. */
    size_t edges[] = {0, 4, 8, 16};
    for (int e = 0; e < 3; e++) {
        CHECK_EQ(BASE[edges[e] * PAGE_SIZE], edges[e]);
        CHECK_EQ(BASE[edges[e + 1] * PAGE_SIZE - 1], edges[e + 1] - 1);
    }

    /* One mprotect across both seams. */
    CHECK_OK(mprotect(BASE, 16 * PAGE_SIZE, PROT_READ));
    CHECK_SIGNALED(run_faulting_child(write_byte, BASE + 4 * PAGE_SIZE - 1), SIGSEGV);
    CHECK_SIGNALED(run_faulting_child(write_byte, BASE + 4 * PAGE_SIZE), SIGSEGV);
    CHECK_OK(mprotect(BASE + 2 * PAGE_SIZE, 12 * PAGE_SIZE, RW));
    CHECK_EXITED(run_in_child(write_byte, BASE + 8 * PAGE_SIZE - 1), 0);
    CHECK_SIGNALED(run_faulting_child(write_byte, BASE + PAGE_SIZE), SIGSEGV);
    CHECK_SIGNALED(run_faulting_child(write_byte, BASE + 15 * PAGE_SIZE), SIGSEGV);
    CHECK_OK(mprotect(BASE, 16 * PAGE_SIZE, RW));

    /* One madvise across a seam. */
    CHECK_OK(madvise(BASE + 3 * PAGE_SIZE, 2 * PAGE_SIZE, MADV_DONTNEED));
    CHECK_EQ(BASE[3 * PAGE_SIZE], 0);
    CHECK_EQ(BASE[5 * PAGE_SIZE - 1], 0);
    CHECK_EQ(BASE[3 * PAGE_SIZE - 1], 2);
    CHECK_EQ(BASE[5 * PAGE_SIZE], 5);

    /* One munmap across a seam: the pages on both sides of it go, the rest stay. */
    CHECK_OK(munmap(BASE + 6 * PAGE_SIZE, 4 * PAGE_SIZE));
    CHECK_SIGNALED(run_faulting_child(read_byte, BASE + 6 * PAGE_SIZE), SIGSEGV);
    CHECK_SIGNALED(run_faulting_child(read_byte, BASE + 10 * PAGE_SIZE - 1), SIGSEGV);
    CHECK_EQ(BASE[6 * PAGE_SIZE - 1], 5);
    CHECK_EQ(BASE[10 * PAGE_SIZE], 10);
    CHECK_ERR(mprotect(BASE, 16 * PAGE_SIZE, RW), ENOMEM);
    /* Filling the gap makes the range whole again. */
    map_piece(6, 4);
    CHECK_OK(mprotect(BASE, 16 * PAGE_SIZE, RW));

    /* Split and merge the same range many times: every other page read-only, then all
     * back, with the contents checked each round. */
    for (int round = 0; round < 200; round++) {
        for (size_t i = round & 1; i < 16; i += 2)
            CHECK_OK(mprotect(BASE + i * PAGE_SIZE, PAGE_SIZE, PROT_READ));
        CHECK_OK(mprotect(BASE, 16 * PAGE_SIZE, RW));
        size_t i = (size_t)round % 16;
        BASE[i * PAGE_SIZE + 1] = (uint8_t)round;
        CHECK_EQ(BASE[i * PAGE_SIZE + 1], (uint8_t)round);
    }
    /* Map and unmap single pages at both ends and in the middle, many times. */
    for (int round = 0; round < 200; round++) {
        CHECK_EQ(mmap(BASE + 16 * PAGE_SIZE, PAGE_SIZE, RW, FIXED, -1, 0), BASE + 16 * PAGE_SIZE);
        CHECK_EQ(mmap(BASE - PAGE_SIZE, PAGE_SIZE, RW, FIXED, -1, 0), BASE - PAGE_SIZE);
        BASE[16 * PAGE_SIZE] = 1;
        BASE[-1] = 1;
        CHECK_OK(mprotect(BASE - PAGE_SIZE, 18 * PAGE_SIZE, RW));
        CHECK_OK(munmap(BASE + 16 * PAGE_SIZE, PAGE_SIZE));
        CHECK_OK(munmap(BASE - PAGE_SIZE, PAGE_SIZE));
        CHECK_OK(munmap(BASE + 7 * PAGE_SIZE, PAGE_SIZE));
        CHECK_EQ(mmap(BASE + 7 * PAGE_SIZE, PAGE_SIZE, RW, FIXED, -1, 0), BASE + 7 * PAGE_SIZE);
    }
    CHECK_OK(mprotect(BASE, 16 * PAGE_SIZE, RW));
    CHECK_ERR(mprotect(BASE - PAGE_SIZE, PAGE_SIZE, RW), ENOMEM);
    CHECK_ERR(mprotect(BASE + 16 * PAGE_SIZE, PAGE_SIZE, RW), ENOMEM);
    CHECK_OK(munmap(BASE, 16 * PAGE_SIZE));
    CHECK_ERR(mprotect(BASE, PAGE_SIZE, RW), ENOMEM);
    CHECK_MEMFREE_BACK(free0);
    return 0;
}
