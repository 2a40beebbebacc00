/*
 * swap_off - swapon(2) and swapoff(2) on the swap disk (/dev/vda):
 *  - a process with 0.5x RAM of its own and, for a while, 1x RAM more has pages in swap;
 *    once the larger region is gone, swapoff brings every page back (the contents
 *    intact, SwapTotal 0, no line in /proc/swaps, VmSwap 0) and counts no major fault
 *    for them;
 *  - swapoff with more swapped out than memory can hold fails with ENOMEM and leaves
 *    everything as it was: swap still on, every page intact, readable;
 *  - Linux's errors: EINVAL for swapoff with swap off and for a path that is not the disk,
 *    ENOENT for a missing path, EBUSY for swapon of an active area and for writing the
 *    active swap device, EINVAL for unknown flags;
 *  - swapon again enables the area, lists the pages that exist for reclaim, and swapping
 *    works after it.
 * Linux user-mode emulation would pass swapon/swapoff to the host: there the test only
 * says so (the calls are pagoda's to prove).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/swap.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

#define DISK "/dev/vda"

static char *map_filled(size_t pages, uint64_t round)
{
    char *m = mmap(NULL, pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    for (size_t pg = 0; pg < pages; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, round);
    return m;
}

static void verify(const char *m, size_t pages, uint64_t round)
{
    for (size_t pg = 0; pg < pages; pg++)
        swap_verify(m + pg * PAGE_SIZE, pg, round);
}

static int swaps_lists_disk(void)
{
    char buf[512];
    int fd = CHECK_OK(open("/proc/swaps", O_RDONLY));
    ssize_t n = CHECK_OK(read(fd, buf, sizeof buf - 1));
    close(fd);
    buf[n] = 0;
    return strstr(buf, DISK) != NULL;
}

int main(void)
{
    if (!on_pagoda() || !swap_enabled()) {
        printf("swap_off: %s: nothing to test\n",
               on_pagoda() ? "no swap area" : "not on pagoda (swapon would reach the host)");
        return 0;
    }
    size_t ram_pages = (size_t)meminfo_kb("MemTotal") / 4;

    /* Errors first, with swap on. */
    CHECK_ERR(swapon(DISK, 0), EBUSY);
    CHECK_ERR(swapon(DISK, 1 << 24), EINVAL);
    CHECK_ERR(swapon("/nonexistent", 0), ENOENT);
    CHECK_ERR(swapoff("/nonexistent"), ENOENT);
    CHECK_ERR(swapoff("/dev/null"), EINVAL);
    int disk = CHECK_OK(open(DISK, O_RDWR));
    char header[16];
    CHECK_EQ(pread(disk, header, sizeof header, 0), (ssize_t)sizeof header);
    CHECK_ERR(write(disk, header, sizeof header), EBUSY);

    /* Pages out, then swapoff brings them back. */
    size_t keep = ram_pages / 2, big = ram_pages;
    char *a = map_filled(keep, 1);
    char *b = map_filled(big, 2);
    CHECK(self_status_kb("VmSwap") > 0);
    CHECK_OK(munmap(b, big * PAGE_SIZE));
    long out_kb = self_status_kb("VmSwap");
    long majflt = vmstat_value("pgmajfault");
    CHECK_OK(swapoff(DISK));
    CHECK_EQ(meminfo_kb("SwapTotal"), 0);
    CHECK(!swaps_lists_disk());
    CHECK_EQ(self_status_kb("VmSwap"), 0);
    /* Pages brought back by swapoff are no faults (a few of this process's own pages,
     * taken meanwhile by background reclaim, may fault back during the call). */
    CHECK(vmstat_value("pgmajfault") - majflt < out_kb / 4 / 8);
    printf("swap_off: %ld kB came back\n", out_kb);
    verify(a, keep, 1);
    CHECK_ERR(swapoff(DISK), EINVAL);
    /* The disk is free now: a write goes through (the header's bytes, unchanged). */
    CHECK_EQ(lseek(disk, 0, SEEK_SET), 0);
    CHECK_EQ(write(disk, header, sizeof header), (ssize_t)sizeof header);

    /* On again; then more swapped out than fits in memory: ENOMEM, nothing changed. */
    CHECK_OK(swapon(DISK, 0));
    CHECK(swaps_lists_disk());
    CHECK(meminfo_kb("SwapTotal") > 0);
    /* The pages that existed before swapon are candidates for reclaim at once (pagoda
     * keeps its replacement lists only while swap is on: swapon lists them). */
    CHECK(meminfo_kb("Active(anon)") + meminfo_kb("Inactive(anon)") >= (long)(keep * 4));
    char *c = map_filled(2 * ram_pages, 3);
    CHECK_ERR(swapoff(DISK), ENOMEM);
    CHECK(swaps_lists_disk());
    verify(c, 2 * ram_pages, 3);
    verify(a, keep, 1);
    CHECK_OK(munmap(c, 2 * ram_pages * PAGE_SIZE));
    CHECK_OK(munmap(a, keep * PAGE_SIZE));
    close(disk);
    CHECK_SWAP_SLOTS_BACK();
    return 0;
}
