/*
 * swap_full - when RAM and swap are both full, the out-of-memory killer takes exactly one
 * process, the largest, and the others finish with their data intact.
 *
 * Booted with a swap disk much smaller than RAM. Two workers of 0.2x RAM fill their
 * memory first; then a hog writes pages until it is killed (it wants 1.5x RAM + swap,
 * which cannot fit). The workers verify every page, twice, while the hog grows and after
 * it died. Afterwards: the hog died of SIGKILL, the workers exited 0, /proc/vmstat's
 * oom_kill rose by exactly one, and every swap slot came back. Only on pagoda with a
 * swap area (elsewhere there is nothing to fill).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

#define WORKERS 2

static void worker(size_t pages, int ready_fd, int go_fd, uint64_t round)
{
    char *m = mmap(NULL, pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    for (size_t pg = 0; pg < pages; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, round);
    char c = 1;
    CHECK_EQ(write(ready_fd, &c, 1), 1);
    /* While the hog grows, then once it is gone (the parent says so). */
    for (size_t pg = 0; pg < pages; pg++)
        swap_verify(m + pg * PAGE_SIZE, pg, round);
    CHECK_EQ(read(go_fd, &c, 1), 1);
    for (size_t pg = 0; pg < pages; pg++)
        swap_verify(m + pg * PAGE_SIZE, pg, round);
    _exit(0);
}

static void hog(size_t pages)
{
    char *m = mmap(NULL, pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(m != MAP_FAILED);
    for (size_t pg = 0; pg < pages; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, 9);
    /* Everything fit: the test's sizes are wrong. */
    _exit(3);
}

int main(void)
{
    if (!on_pagoda() || !swap_enabled()) {
        printf("swap_full: %s: nothing to test\n",
               on_pagoda() ? "no swap area" : "not on pagoda");
        return 0;
    }
    size_t ram = (size_t)meminfo_kb("MemTotal") / 4, swap = (size_t)meminfo_kb("SwapTotal") / 4;
    long kills = vmstat_value("oom_kill");
    int ready[2], go[2];
    CHECK_OK(pipe(ready));
    CHECK_OK(pipe(go));
    pid_t workers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = CHECK_OK(fork());
        if (workers[i] == 0)
            worker(ram / 5, ready[1], go[0], 10 + i);
    }
    for (int i = 0; i < WORKERS; i++) {
        char c;
        CHECK_EQ(read(ready[0], &c, 1), 1);
    }
    pid_t h = CHECK_OK(fork());
    if (h == 0)
        hog(3 * ram / 2 + swap);
    int status;
    CHECK_EQ(waitpid(h, &status, 0), h);
    CHECK_SIGNALED(status, SIGKILL);
    char go_on[WORKERS] = {0};
    CHECK_EQ(write(go[1], go_on, WORKERS), WORKERS);
    for (int i = 0; i < WORKERS; i++) {
        CHECK_EQ(waitpid(workers[i], &status, 0), workers[i]);
        CHECK_EXITED(status, 0);
    }
    CHECK_EQ(vmstat_value("oom_kill"), kills + 1);
    printf("swap_full: the hog was killed, %d workers intact\n", WORKERS);
    CHECK_SWAP_SLOTS_BACK();
    return 0;
}
