/*
 * bench.h - reporting for pagoda's benchmarks.
 *
 * A benchmark prints one line per figure: `BENCH <name> <value> <unit>`, the value being
 * the cost of one operation measured with clock_gettime(CLOCK_MONOTONIC) around a loop.
 * Under QEMU with `-icount shift=0` one nanosecond of guest time is one guest
 * instruction, so figures from pagoda are repeatable instruction counts; under
 * qemu-riscv64-static they are host wall-clock times (only good for a sanity check).
 */
#ifndef PAGODA_BENCH_H
#define PAGODA_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "check.h"

/* Print `BENCH name value ns`, value = elapsed_ns / ops with one decimal. */
static inline void bench_report(const char *name, uint64_t elapsed_ns, uint64_t ops)
{
    printf("BENCH %s %.1f ns\n", name, (double)elapsed_ns / (double)(ops ? ops : 1));
}

#endif
