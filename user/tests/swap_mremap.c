/*
 * swap_mremap - mremap of memory that is out in swap: a working set 1.5 times the machine's
 * RAM is written (pages go out to swap), then moved by mremap (MREMAP_MAYMOVE, growing
 * past a guard page), and every page is verified at its new address (the swap entries
 * moved with the area and the pages come back there), written again (reclaim must find
 * the moved pages through the reverse map at their new address to swap them out again)
 * and verified once more. The parent then checks that every swap slot and every frame
 * came back. Without a swap disk on pagoda: nothing to test. Under Linux user-mode
 * emulation the same code runs on 64 MiB.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

static void workload(void *arg)
{
    (void)arg;
    size_t len = swap_enabled() ? 3 * (size_t)meminfo_kb("MemTotal") * 512 : 64 * MIB;
    len &= ~(PAGE_SIZE - 1);
    size_t pages = len / PAGE_SIZE;
    long pswpout = vmstat_value("pswpout");
    char *m = mmap(NULL, len + PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    /* A guard page after the working set: the growth below must move it. */
    CHECK_OK(mprotect(m + len, PAGE_SIZE, PROT_NONE));
    for (size_t pg = 0; pg < pages; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, 1);
    if (swap_enabled()) {
        CHECK(self_status_kb("VmSwap") > 0);
        CHECK(vmstat_value("pswpout") > pswpout);
    }
    char *n = (char *)CHECK_OK(
        syscall(SYS_mremap, m, len, len + 16 * PAGE_SIZE, MREMAP_MAYMOVE, NULL));
    CHECK(n != m);
    for (size_t pg = 0; pg < pages; pg++)
        swap_verify(n + pg * PAGE_SIZE, pg, 1);
    long out2 = vmstat_value("pswpout");
    for (size_t pg = 0; pg < pages; pg++)
        swap_fill(n + pg * PAGE_SIZE, pg, 2);
    if (swap_enabled())
        CHECK(vmstat_value("pswpout") > out2);
    for (size_t pg = 0; pg < pages; pg++)
        swap_verify(n + pg * PAGE_SIZE, pg, 2);
    CHECK_OK(munmap(n, len + 16 * PAGE_SIZE));
    CHECK_OK(munmap(m + len, PAGE_SIZE));
    _exit(0);
}

int main(void)
{
    return swap_test_main("swap_mremap", workload);
}
