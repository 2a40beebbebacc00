/*
 * bench/mmap - address-space bookkeeping: mmap + munmap of 4 KiB and of 1 MiB never
 * touched (area management only), and mprotect of 1 MiB of resident pages (256 page
 * table entries rewritten and the TLB flushed) back and forth.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

static void map_unmap(const char *name, size_t len, int loops)
{
    uint64_t t0 = now_ns();
    for (int i = 0; i < loops; i++) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(p != MAP_FAILED);
        CHECK_OK(munmap(p, len));
    }
    bench_report(name, now_ns() - t0, (uint64_t)loops);
}

int main(void)
{
    map_unmap("mmap_munmap_4K", PAGE_SIZE, 2000);
    map_unmap("mmap_munmap_1M", MIB, 2000);

    const int loops = 500;
    uint8_t *p = map_anon(MIB);
    memset(p, 1, MIB);
    uint64_t t0 = now_ns();
    for (int i = 0; i < loops; i++) {
        CHECK_OK(mprotect(p, MIB, PROT_READ));
        CHECK_OK(mprotect(p, MIB, PROT_READ | PROT_WRITE));
    }
    bench_report("mprotect_1M", now_ns() - t0, 2 * (uint64_t)loops);
    CHECK_OK(munmap(p, MIB));
    return 0;
}
