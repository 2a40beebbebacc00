/*
 * swap_basic - a working set three times the machine's RAM, in a child: every page gets
 * a pattern derived from its index, then every page is verified sequentially and in a
 * random order, twice. On pagoda booted with a swap disk (the swap suite of `make test`)
 * the pages go out to swap and come back; the child checks that swap was used (VmSwap,
 * pswpout, pswpin, pgmajfault) and that the reading passes wrote no page read back from
 * swap out again; after it is gone, the parent checks that every swap slot and every
 * frame came back. Without a swap disk on pagoda there is nothing to test: it
 * says so and passes. Under Linux user-mode emulation the same code runs on 64 MiB.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

static void workload(void *arg)
{
    (void)arg;
    size_t len = swap_enabled() ? 3 * (size_t)meminfo_kb("MemTotal") * 1024 : 64 * MIB;
    long pswpout = vmstat_value("pswpout"), pswpin = vmstat_value("pswpin");
    long majflt = vmstat_value("pgmajfault");
    size_t pages = len / PAGE_SIZE;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    for (size_t pg = 0; pg < pages; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, 1);
    long written = 0;
    if (swap_enabled()) {
        CHECK(self_status_kb("VmSwap") > 0);
        CHECK(vmstat_value("pswpout") > pswpout);
        written = vmstat_value("pswpout");
    }
    uint64_t rng = 12345;
    for (int round = 0; round < 2; round++) {
        for (size_t pg = 0; pg < pages; pg++)
            swap_verify(m + pg * PAGE_SIZE, pg, 1);
        /* Every page once, in a random order (a random walk over a permutation). */
        size_t step = pages / 2 + 1;
        while (step % 2 == 0 || pages % step == 0)
            step++;
        size_t pg = xorshift64(&rng) % pages;
        for (size_t n = 0; n < pages; n++, pg = (pg + step) % pages)
            swap_verify(m + pg * PAGE_SIZE, pg, 1);
    }
    if (swap_enabled()) {
        /* The reads change nothing: a page read back from swap and reclaimed again is
         * not written again (its slot still holds it). Only the pages still in memory
         * when the writing ended, at most RAM's worth, go out once more. */
        long ram_pages = meminfo_kb("MemTotal") / 4;
        CHECK(vmstat_value("pswpout") - written <= ram_pages);
        CHECK(vmstat_value("pswpin") > pswpin);
        CHECK(vmstat_value("pgmajfault") > majflt);
        /* This process's own major faults, as getrusage reports them. */
        struct rusage ru;
        CHECK_OK(getrusage(RUSAGE_SELF, &ru));
        CHECK(ru.ru_majflt > 0);
    }
    CHECK_OK(munmap(m, len));
    /* What stays in swap is the child's own few pages (stack, libc data). */
    if (swap_enabled())
        CHECK(self_status_kb("VmSwap") < 1024);
    _exit(0);
}

int main(void)
{
    return swap_test_main("swap_basic", workload);
}
