/*
 * bomb_fork - a fork bomb is contained: a process forks children (each forking again,
 * two levels deep) until the kernel refuses with EAGAIN (threads-max) or ENOMEM (memory
 * down to the kernel's reserve); the system stays up, every other process is intact,
 * and once the bomb is killed every frame comes back and fork works again.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Children per process on each level (the host under QEMU gets a small bomb). */
#define FANOUT_PAGODA 480
#define FANOUT_LINUX 8

/* Appends this process's pid to the shared list (dropped when the list is full: the
 * test then fails on the count). */
static void record(volatile int *npids, volatile pid_t *pids, int max)
{
    int i = __atomic_fetch_add(npids, 1, __ATOMIC_SEQ_CST);
    if (i < max)
        pids[i] = getpid();
}

int main(void)
{
    /* Warm up what the checks below use, then take the baseline. */
    int status;
    pid_t warm = CHECK_OK(fork());
    if (warm == 0)
        _exit(0);
    CHECK_EQ(waitpid(warm, &status, 0), warm);
    long baseline = meminfo_kb("MemFree");

    volatile int *shared = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    volatile int *forked = &shared[0], *refused = &shared[1], *bad = &shared[2];
    /* Every bomb process records its pid here, so that all of them can be killed. */
    volatile int *npids = &shared[3];
    volatile pid_t *pids = (volatile pid_t *)&shared[4];
    int max_pids = (int)(PAGE_SIZE / sizeof(int)) - 4;
    int fanout = on_pagoda() ? FANOUT_PAGODA : FANOUT_LINUX;

    /* The bomb: a leader that forks until refused; each child forks once more. */
    pid_t leader = CHECK_OK(fork());
    if (leader == 0) {
        for (int i = 0; i < fanout; i++) {
            pid_t pid = fork();
            if (pid < 0) {
                if (errno == EAGAIN || errno == ENOMEM)
                    __atomic_fetch_add(refused, 1, __ATOMIC_SEQ_CST);
                else
                    *bad = errno;
                break;
            }
            if (pid == 0) {
                record(npids, pids, max_pids);
                pid_t grandchild = fork();
                if (grandchild == 0)
                    record(npids, pids, max_pids);
                else if (grandchild > 0)
                    __atomic_fetch_add(forked, 1, __ATOMIC_SEQ_CST);
                for (;;)
                    pause();
            }
            __atomic_fetch_add(forked, 1, __ATOMIC_SEQ_CST);
        }
        for (;;)
            pause();
    }
    /* Wait until the bomb is refused (or, under QEMU, has forked its few children). */
    uint64_t t0 = now_ns();
    while (*refused == 0 && *forked < 2 * fanout && now_ns() - t0 < WAIT_LIMIT_NS)
        sched_yield();
    CHECK_EQ(*bad, 0);
    if (on_pagoda())
        CHECK(*refused > 0);

    /* The rest of the system still works: a fork may fail while the bomb holds every
     * task, but this process's memory and calls are intact. */
    CHECK(*forked > 0);

    /* Kill the bomb: every process it recorded (their orphans are re-parented to init,
     * which reaps them), then the leader. A process may still be between its fork and
     * its record: wait until the count settles. */
    int seen = -1;
    while (seen != *npids) {
        seen = *npids;
        struct timespec ms = {0, 50 * 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    CHECK(*npids <= max_pids);
    for (int i = 0; i < *npids; i++)
        kill(pids[i], SIGKILL);
    CHECK_OK(kill(leader, SIGKILL));
    CHECK_EQ(waitpid(leader, &status, 0), leader);
    CHECK_SIGNALED(status, SIGKILL);

    /* Everything back: fork works again, memory returns (init reaps the orphans). */
    pid_t pid = -1;
    for (int tries = 0; tries < 500 && pid < 0; tries++) {
        pid = fork();
        if (pid < 0) {
            struct timespec ms = {0, 10 * 1000 * 1000};
            nanosleep(&ms, NULL);
        }
    }
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    CHECK_OK(munmap((void *)shared, PAGE_SIZE));
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
