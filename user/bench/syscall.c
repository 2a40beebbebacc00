/* bench/syscall - the cost of the cheapest system call: getpid, user to kernel and back. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

#define LOOPS 10000

int main(void)
{
    /* Warm up (first-touch faults of the stack and code pages). */
    for (int i = 0; i < 100; i++)
        syscall(SYS_getpid);
    uint64_t t0 = now_ns();
    for (int i = 0; i < LOOPS; i++)
        syscall(SYS_getpid);
    uint64_t t1 = now_ns();
    bench_report("getpid", t1 - t0, LOOPS);
    return 0;
}
