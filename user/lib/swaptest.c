/* swaptest.c - see swaptest.h. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

void swap_fill(void *p, size_t page, uint64_t round)
{
    uint64_t *w = p;
    for (size_t i = 0; i < PAGE_SIZE / 8; i += 8)
        w[i] = swap_word(page, i, round);
}

void swap_verify(const void *p, size_t page, uint64_t round)
{
    const uint64_t *w = p;
    for (size_t i = 0; i < PAGE_SIZE / 8; i += 8)
        if (w[i] != swap_word(page, i, round))
            check_fail(__FILE__, __LINE__, "page %zu word %zu: %#llx, expected %#llx (round %llu)",
                       page, i, (unsigned long long)w[i],
                       (unsigned long long)swap_word(page, i, round),
                       (unsigned long long)round);
}

long vmstat_value(const char *key)
{
    char buf[8192];
    int fd = open("/proc/vmstat", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    size_t len = strlen(key);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, len) == 0 && line[len] == ' ')
            return atol(line + len + 1);
    return -1;
}

int swap_enabled(void)
{
    return on_pagoda() && meminfo_kb("SwapTotal") > 0;
}

void check_swap_slots_back(const char *file, int line)
{
    if (!on_pagoda())
        return;
    long used = meminfo_kb("SwapTotal") - meminfo_kb("SwapFree");
    long named = meminfo_kb("SwapCached") + self_status_kb("VmSwap") +
                 proc_field_kb("/proc/1/status", "VmSwap");
    if (used > named)
        check_fail(file, line, "%ld kB of swap in use, only %ld kB named by a process or the cache",
                   used, named);
}

int swap_test_main(const char *name, void (*workload)(void *))
{
    if (on_pagoda() && !swap_enabled()) {
        printf("%s: no swap area: nothing to test\n", name);
        return 0;
    }
    long mem_free = meminfo_kb("MemFree");
    CHECK_EXITED(run_in_child(workload, NULL), 0);
    CHECK_SWAP_SLOTS_BACK();
    if (on_pagoda())
        CHECK(meminfo_kb("MemFree") + meminfo_kb("SwapCached") >= mem_free - MEMFREE_SLACK_KB);
    return 0;
}
