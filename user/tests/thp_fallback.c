/*
 * thp_fallback - with no free 2 MiB block, memory that would take huge pages works at
 * 4 KiB. Most free memory is filled with 4 KiB pages (MADV_NOHUGEPAGE) and every other
 * page of it is given back (MADV_DONTNEED), so free memory is plenty but in single
 * frames; then a region that could hold huge pages is written, read back and forked
 * (the child writes and checks it too). On pagoda /proc/vmstat shows the fallback
 * (thp_fault_fallback grew) and MemFree comes back once everything is unmapped.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

#define HUGE (2 * MIB)

static uint64_t pattern(size_t page, uint64_t salt)
{
    return (page + 3) * 0x9e3779b97f4a7c15ULL ^ salt;
}

int main(void)
{
    long first = meminfo_kb("MemFree");
    /* On pagoda: all but 12 MiB of free memory (less than the region below, so that
     * some of it must fall back); elsewhere (the host) a fixed 64 MiB. */
    size_t frag = on_pagoda() ? (size_t)(first - 12 * 1024) * 1024 : 64 * MIB;
    frag &= ~(HUGE - 1);
    char *f = mmap(NULL, frag, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(f != MAP_FAILED);
    CHECK_OK(madvise(f, frag, MADV_NOHUGEPAGE));
    touch_pages(f, frag, 1);
    for (size_t off = 0; off < frag; off += 2 * PAGE_SIZE)
        CHECK_OK(madvise(f + off, PAGE_SIZE, MADV_DONTNEED));

    long fallbacks = vmstat_value("thp_fault_fallback");
    size_t len = (frag / 4) & ~(HUGE - 1);
    if (len > 64 * MIB)
        len = 64 * MIB;
    size_t pages = len / PAGE_SIZE, words = PAGE_SIZE / 8;
    uint64_t *r = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(r != MAP_FAILED);
    for (size_t i = 0; i < pages; i++)
        r[i * words] = pattern(i, 1);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        for (size_t i = 0; i < pages; i += 2)
            r[i * words] = pattern(i, 2);
        for (size_t i = 0; i < pages; i++)
            if (r[i * words] != pattern(i, i % 2 ? 1 : 2))
                _exit(3);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_EXITED(status, 0);
    for (size_t i = 0; i < pages; i++)
        if (r[i * words] != pattern(i, 1))
            check_fail(__FILE__, __LINE__, "page %zu", i);
    if (on_pagoda())
        CHECK(vmstat_value("thp_fault_fallback") > fallbacks);
    CHECK_OK(munmap(r, len));
    CHECK_OK(munmap(f, frag));
    CHECK_MEMFREE_BACK(first);
    return 0;
}
