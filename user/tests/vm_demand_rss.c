/*
 * vm_demand_rss - anonymous memory is allocated on first touch: a 64 MiB mapping costs
 * (almost) nothing until written, each written page adds 4 kB to VmRSS, never-written
 * pages read as zeros, and munmap gives everything back. The counters are asserted on
 * pagoda only (under QEMU's user mode /proc describes the host and QEMU itself).
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#define AREA (64 * MIB)
#define TOUCHED 10
/* VmRSS may move by a page or two for stack or page-table effects of the test itself. */
#define RSS_SLACK_KB 16

int main(void)
{
    int pagoda = on_pagoda();
    /* Read the counters once first so that their own first use is not measured. */
    (void)self_status_kb("VmRSS");
    (void)meminfo_kb("MemFree");
    long free0 = meminfo_kb("MemFree");
    long rss0 = self_status_kb("VmRSS");
    if (pagoda) {
        CHECK(free0 > 0);
        CHECK(rss0 > 0);
    }

    uint8_t *p = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    /* Page by page: huge pages would map 2 MiB per touch (thp_basic tests those). */
    CHECK_OK(madvise(p, AREA, MADV_NOHUGEPAGE));
    long free1 = meminfo_kb("MemFree");
    long rss1 = self_status_kb("VmRSS");
    if (pagoda) {
        /* Mapping is lazy: no frames for the 64 MiB yet. */
        CHECK(rss1 - rss0 <= RSS_SLACK_KB);
        CHECK(free0 - free1 <= MEMFREE_SLACK_KB);
    }

    /* Ten pages spread over the area, one write each. */
    for (int i = 0; i < TOUCHED; i++)
        p[(size_t)i * (AREA / TOUCHED) + 123] = (uint8_t)(i + 1);
    long rss2 = self_status_kb("VmRSS");
    long free2 = meminfo_kb("MemFree");
    if (pagoda) {
        CHECK(rss2 - rss1 >= TOUCHED * 4);
        CHECK(rss2 - rss1 <= TOUCHED * 4 + RSS_SLACK_KB);
        CHECK(free1 - free2 >= TOUCHED * 4);
    }
    for (int i = 0; i < TOUCHED; i++)
        CHECK_EQ(p[(size_t)i * (AREA / TOUCHED) + 123], i + 1);

    /* Never-written pages read as zeros. Reading is not writing: as in Linux, a read
     * fault maps the shared zero page, which VmRSS does not count (so RSS must grow by
     * less than one page per page read). */
    for (size_t off = 0; off < AREA; off += 16 * PAGE_SIZE)
        CHECK_EQ(p[off + PAGE_SIZE - 1], 0);
    long rss3 = self_status_kb("VmRSS");
    if (pagoda)
        CHECK(rss3 - rss2 < (long)(AREA / (16 * PAGE_SIZE)) * 4);

    /* 4 MiB written: VmRSS grows by 4096 kB, give or take the 64 pages of that range the
     * reads above touched (counted already if reading took frames instead of the shared
     * zero page). */
    memset(p + 32 * MIB, 0x5a, 4 * MIB);
    long rss4 = self_status_kb("VmRSS");
    if (pagoda) {
        CHECK(rss4 - rss3 >= 4096 - 64 * 4);
        CHECK(rss4 - rss3 <= 4096 + RSS_SLACK_KB);
    }

    /* munmap returns the frames and the RSS. */
    CHECK_OK(munmap(p, AREA));
    long rss5 = self_status_kb("VmRSS");
    if (pagoda)
        CHECK(rss5 - rss0 <= RSS_SLACK_KB);
    CHECK_MEMFREE_BACK(free0);
    return 0;
}
