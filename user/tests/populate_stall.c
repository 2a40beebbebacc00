/*
 * populate_stall - a huge MAP_POPULATE mapping neither holds the machine nor outlives
 * SIGKILL: a child maps 192 GiB PROT_READ with MAP_POPULATE (on pagoda; far less under
 * Linux user-mode emulation); meanwhile the parent's 10 ms sleeps return promptly (on
 * one hart too), and SIGKILL ends the child within seconds; every frame comes back.
 * Regression: the kernel populated the whole range with the hart held (about 90 s, a
 * 10 ms sleep took 45 s) and the kill waited for it.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define GIB (1024UL * 1024 * 1024)
/* A 10 ms sleep must return within this (ns): generous for a loaded host (before the
 * fix it took 45 s; a one-hart guest on a host with two busy cores has taken 3 s). */
#define SLEEP_LIMIT_NS (6000ULL * 1000 * 1000)
/* SIGKILL must end the child within this (ns). */
#define KILL_LIMIT_NS (20ULL * 1000 * 1000 * 1000)

int main(void)
{
    long baseline = meminfo_kb("MemFree");
    volatile int *started = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(started != MAP_FAILED);
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        size_t len = on_pagoda() ? 192 * GIB : 1 * GIB;
        *started = 1;
        mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        /* Refused or finished: wait to be killed. */
        for (;;)
            pause();
    }
    WAIT_UNTIL(started, 1);
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 20; i++) {
        uint64_t t0 = now_ns();
        CHECK_OK(nanosleep(&ten_ms, NULL));
        uint64_t took = now_ns() - t0;
        if (took > SLEEP_LIMIT_NS)
            check_fail(__FILE__, __LINE__, "a 10 ms sleep took %llu ms",
                       (unsigned long long)(took / 1000000));
    }
    uint64_t t0 = now_ns();
    CHECK_OK(kill(pid, SIGKILL));
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_SIGNALED(status, SIGKILL);
    uint64_t took = now_ns() - t0;
    if (took > KILL_LIMIT_NS)
        check_fail(__FILE__, __LINE__, "SIGKILL took %llu ms to end the child",
                   (unsigned long long)(took / 1000000));
    CHECK_OK(munmap((void *)started, PAGE_SIZE));
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
