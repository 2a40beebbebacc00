/*
 * mlock_swap - locked pages are never swapped out. A child locks 16 MiB with mlock and
 * 8 MiB with mlock2(MLOCK_ONFAULT) (half of it touched), fills them with a pattern, then
 * writes twice the machine's RAM of unlocked memory. Afterwards mincore reports every
 * locked page resident (the untouched half of the on-fault lock: not resident, never
 * faulted in), reading them back takes no major fault and moves no page in from swap
 * (/proc/vmstat), while unlocked pages did go out (pswpout; mincore reports some of them
 * not resident, and resident again once touched: mapped from the swap cache). After
 * munlock the same pressure swaps the formerly locked pages out too: the lock, not
 * luck, kept them. Then every slot and frame comes back.
 *
 * Under Linux user-mode emulation (no swap) and on pagoda without a swap disk, the same
 * code runs on small sizes and checks only residency and the data.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

#define LOCKED (16 * MIB)
#define ONFAULT (8 * MIB)

/* Pages of [p, p + len) mincore reports resident. */
static size_t resident(const char *p, size_t len)
{
    static unsigned char vec[LOCKED / PAGE_SIZE];
    size_t pages = len / PAGE_SIZE;
    CHECK(pages <= sizeof vec);
    CHECK_OK(mincore((void *)p, len, vec));
    size_t n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

/* Writes `len` bytes of unlocked memory a page at a time (the pressure), then unmaps it;
 * returns how many of its pages mincore found not resident just before the unmap. */
static size_t pressure(size_t len)
{
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    size_t pages = len / PAGE_SIZE;
    for (size_t pg = 0; pg < pages; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, 7);
    size_t out = 0;
    for (size_t at = 0; at < len; at += LOCKED) {
        size_t n = len - at < LOCKED ? len - at : LOCKED;
        out += n / PAGE_SIZE - resident(m + at, n);
    }
    /* The first page went out long ago (on pagoda with swap); touching it brings it back
     * into the swap cache and maps it: resident again. */
    swap_verify(m, 0, 7);
    CHECK_EQ(resident(m, PAGE_SIZE), 1);
    CHECK_OK(munmap(m, len));
    return out;
}

static void workload(void *arg)
{
    (void)arg;
    int swapping = swap_enabled();
    size_t ram = (size_t)meminfo_kb("MemTotal") * 1024;
    size_t load = swapping ? 2 * ram : 32 * MIB;
    char *l = mmap(NULL, LOCKED, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *o = mmap(NULL, ONFAULT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(l != MAP_FAILED && o != MAP_FAILED);
    CHECK_OK(mlock(l, LOCKED));
    int onfault = syscall(SYS_mlock2, o, ONFAULT, 1 /* MLOCK_ONFAULT */) == 0;
    CHECK(onfault || !on_pagoda()); /* QEMU 7.2's user mode has no mlock2 */
    CHECK_EQ(resident(l, LOCKED), LOCKED / PAGE_SIZE);
    for (size_t pg = 0; pg < LOCKED / PAGE_SIZE; pg++)
        swap_fill(l + pg * PAGE_SIZE, pg, 1);
    for (size_t pg = 0; pg < ONFAULT / PAGE_SIZE / 2; pg++)
        swap_fill(o + pg * PAGE_SIZE, pg, 2);
    if (on_pagoda())
        CHECK(meminfo_kb("Mlocked") >= (long)((LOCKED + ONFAULT / 2) / 1024));

    long pswpout = vmstat_value("pswpout");
    size_t out = pressure(load);
    if (swapping) {
        CHECK(vmstat_value("pswpout") > pswpout);
        CHECK(out > 0);
    }
    /* Every locked page is still resident; the untouched on-fault half never came in. */
    CHECK_EQ(resident(l, LOCKED), LOCKED / PAGE_SIZE);
    if (onfault) {
        CHECK_EQ(resident(o, ONFAULT / 2), ONFAULT / PAGE_SIZE / 2);
        CHECK_EQ(resident(o + ONFAULT / 2, ONFAULT / 2), 0);
    }
    /* Reading them back costs no major fault and no page in from swap. */
    long majflt = vmstat_value("pgmajfault"), pswpin = vmstat_value("pswpin");
    for (size_t pg = 0; pg < LOCKED / PAGE_SIZE; pg++)
        swap_verify(l + pg * PAGE_SIZE, pg, 1);
    for (size_t pg = 0; pg < ONFAULT / PAGE_SIZE / 2; pg++)
        swap_verify(o + pg * PAGE_SIZE, pg, 2);
    if (swapping) {
        CHECK_EQ(vmstat_value("pgmajfault"), majflt);
        CHECK_EQ(vmstat_value("pswpin"), pswpin);
    }

    /* Unlocked, the same pressure takes them too. */
    CHECK_OK(munlock(l, LOCKED));
    if (onfault)
        CHECK_OK(munlock(o, ONFAULT));
    pressure(load);
    if (swapping)
        CHECK(resident(l, LOCKED) < LOCKED / PAGE_SIZE);
    for (size_t pg = 0; pg < LOCKED / PAGE_SIZE; pg++)
        swap_verify(l + pg * PAGE_SIZE, pg, 1);
    for (size_t pg = 0; pg < ONFAULT / PAGE_SIZE / 2; pg++)
        swap_verify(o + pg * PAGE_SIZE, pg, 2);
    CHECK_OK(munmap(l, LOCKED));
    CHECK_OK(munmap(o, ONFAULT));
    _exit(0);
}

int main(void)
{
    long mem_free = meminfo_kb("MemFree") + meminfo_kb("SwapCached");
    CHECK_EXITED(run_in_child(workload, NULL), 0);
    if (swap_enabled())
        CHECK_SWAP_SLOTS_BACK();
    CHECK_MEMFREE_BACK(mem_free);
    return 0;
}
