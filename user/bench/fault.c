/*
 * bench/fault - the page-fault paths of anonymous memory, per page: the first write to
 * a never-touched page (allocate and zero a frame), and the first read of one (Linux
 * maps the shared zero page).
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define LEN (16 * MIB)
#define ROUNDS 5

int main(void)
{
    uint64_t write_ns = 0, read_ns = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint8_t *p = map_anon(LEN);
        uint64_t t0 = now_ns();
        touch_pages(p, LEN, 1);
        write_ns += now_ns() - t0;
        CHECK_OK(munmap(p, LEN));

        volatile uint8_t *q = map_anon(LEN);
        unsigned sum = 0;
        t0 = now_ns();
        for (size_t off = 0; off < LEN; off += PAGE_SIZE)
            sum += q[off];
        read_ns += now_ns() - t0;
        CHECK_EQ(sum, 0);
        CHECK_OK(munmap((void *)q, LEN));
    }
    bench_report("zero_write_fault", write_ns, ROUNDS * (LEN / PAGE_SIZE));
    bench_report("zero_read_fault", read_ns, ROUNDS * (LEN / PAGE_SIZE));
    return 0;
}
