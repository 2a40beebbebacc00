/*
 * swap_thp - huge pages and swap together: a child maps twice the machine's RAM as
 * private anonymous memory with MADV_HUGEPAGE and writes a pattern to every page; on
 * pagoda with a swap disk the first 2 MiB ranges get huge pages, and reclaim, finding
 * them cold, splits each (thp_swpout_fallback) and swaps its 4 KiB pages out. Every page
 * is then verified, twice. A second round forks first: the huge pages the parent and
 * child share stay whole while both hold them, every byte stays right on both sides,
 * and after the child exits another range as large is written and read back. The parent of
 * all checks that every swap slot and frame came back. Under Linux user-mode emulation
 * the same code runs on 64 MiB.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

#define HUGE (2 * MIB)

/* `len` bytes of private anonymous memory at a 2 MiB boundary, huge pages advised. */
static char *map_huge(size_t len)
{
    char *raw = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    CHECK(raw != MAP_FAILED);
    char *m = (char *)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    CHECK_OK(madvise(m, len, MADV_HUGEPAGE));
    return m;
}

static void verify_all(char *m, size_t pages, uint64_t round)
{
    for (size_t pg = 0; pg < pages; pg++)
        swap_verify(m + pg * PAGE_SIZE, pg, round);
    for (size_t pg = pages; pg-- > 0;)
        swap_verify(m + pg * PAGE_SIZE, pg, round);
}

static void workload(void *arg)
{
    (void)arg;
    int swap = swap_enabled();
    size_t len = swap ? 2 * (size_t)meminfo_kb("MemTotal") * 1024 : 64 * MIB;
    len &= ~(HUGE - 1);
    size_t pages = len / PAGE_SIZE;
    long fallback = vmstat_value("thp_swpout_fallback");
    long alloc = vmstat_value("thp_fault_alloc");
    long pswpout = vmstat_value("pswpout");
    char *m = map_huge(len);
    for (size_t pg = 0; pg < pages; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, 1);
    if (swap) {
        CHECK(vmstat_value("thp_fault_alloc") > alloc);
        CHECK(vmstat_value("thp_swpout_fallback") > fallback);
        CHECK(vmstat_value("pswpout") > pswpout);
        CHECK(self_status_kb("VmSwap") > 0);
    }
    verify_all(m, pages, 1);

    /* Fork: what both hold is shared, huge or not; each side writes its own half. */
    pid_t pid = CHECK_OK(fork());
    size_t half = pages / 2;
    if (pid == 0) {
        for (size_t pg = 0; pg < half; pg++)
            swap_fill(m + pg * PAGE_SIZE, pg, 2);
        for (size_t pg = 0; pg < pages; pg++)
            swap_verify(m + pg * PAGE_SIZE, pg, pg < half ? 2 : 1);
        _exit(0);
    }
    for (size_t pg = half; pg < pages; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, 3);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    for (size_t pg = 0; pg < pages; pg++)
        swap_verify(m + pg * PAGE_SIZE, pg, pg < half ? 1 : 3);
    /* Alone again: another range as large, written and read back while the first is
     * pushed out (huge pages only where a 2 MiB block is still free: swapping leaves
     * memory in 4 KiB pieces, and pagoda does not compact). */
    if (swap) {
        char *more = map_huge(len);
        for (size_t pg = 0; pg < pages; pg++)
            swap_fill(more + pg * PAGE_SIZE, pg, 4);
        verify_all(more, pages, 4);
        for (size_t pg = 0; pg < pages; pg++)
            swap_verify(m + pg * PAGE_SIZE, pg, pg < half ? 1 : 3);
        printf("swap_thp: thp_fault_alloc %ld, thp_swpout_fallback %ld, thp_split_page %ld\n",
               vmstat_value("thp_fault_alloc") - alloc,
               vmstat_value("thp_swpout_fallback") - fallback,
               vmstat_value("thp_split_page"));
    }
    _exit(0);
}

int main(void)
{
    return swap_test_main("swap_thp", workload);
}
