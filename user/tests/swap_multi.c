/*
 * swap_multi - four processes at once, each with a working set of 0.75x RAM (3x RAM in
 * all): each fills its pages and verifies them twice while the others do the same, so
 * reclaim takes pages of one process to make room for another. Afterwards every slot and
 * frame is back. Without a swap disk on pagoda it passes with a note; under Linux
 * user-mode emulation each process uses 16 MiB.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

#define PROCS 4

static void workload(void *arg)
{
    uint64_t round = (uint64_t)(uintptr_t)arg;
    size_t len = swap_enabled() ? 3 * (size_t)meminfo_kb("MemTotal") * 1024 / 4 : 16 * MIB;
    size_t pages = len / PAGE_SIZE;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    for (size_t pg = 0; pg < pages; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, round);
    for (int pass = 0; pass < 2; pass++)
        for (size_t pg = 0; pg < pages; pg++)
            swap_verify(m + pg * PAGE_SIZE, pg, round);
    CHECK_OK(munmap(m, len));
    _exit(0);
}

int main(void)
{
    if (on_pagoda() && !swap_enabled()) {
        printf("swap_multi: no swap area: nothing to test\n");
        return 0;
    }
    long mem_free = meminfo_kb("MemFree");
    pid_t kids[PROCS];
    for (int i = 0; i < PROCS; i++) {
        kids[i] = CHECK_OK(fork());
        if (kids[i] == 0)
            workload((void *)(uintptr_t)(i + 10));
    }
    for (int i = 0; i < PROCS; i++) {
        int status;
        CHECK_EQ(waitpid(kids[i], &status, 0), kids[i]);
        CHECK_EXITED(status, 0);
    }
    CHECK_SWAP_SLOTS_BACK();
    if (on_pagoda())
        CHECK(meminfo_kb("MemFree") + meminfo_kb("SwapCached") >= mem_free - MEMFREE_SLACK_KB);
    return 0;
}
