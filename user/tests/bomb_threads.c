/*
 * bomb_threads - a thread bomb is contained: one process creates threads (small stacks,
 * each touching its stack and then blocking) until the kernel refuses (EAGAIN at
 * threads-max, or ENOMEM when memory runs short); the system stays up, a bystander
 * process keeps running throughout, and once the bomb is killed every frame comes back
 * and threads can be created again.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Threads the bomb tries at most (the host under QEMU gets a small bomb). */
#define MAX_THREADS_PAGODA 100000
#define MAX_THREADS_LINUX 64
#define THREAD_STACK (64 * 1024)

struct shared {
    int created;  /* threads the bomb created */
    int refused;  /* the error pthread_create gave (0: none yet) */
    int done;     /* the bomb stopped creating */
    long ticks;   /* the bystander's progress */
    int stop;     /* tells the bystander to exit */
};

static void *blocker(void *arg)
{
    /* A page of stack in use, as a real thread has. */
    volatile char pad[2048];
    pad[0] = 1;
    (void)pad[0];
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void *nothing(void *arg)
{
    return arg;
}

static void bomb(volatile struct shared *sh, int max)
{
    pthread_attr_t attr;
    CHECK_EQ(pthread_attr_init(&attr), 0);
    CHECK_EQ(pthread_attr_setstacksize(&attr, THREAD_STACK), 0);
    for (int i = 0; i < max; i++) {
        pthread_t t;
        int err = pthread_create(&t, &attr, blocker, NULL);
        if (err != 0) {
            sh->refused = err;
            break;
        }
        sh->created++;
    }
    __atomic_store_n(&sh->done, 1, __ATOMIC_SEQ_CST);
    for (;;)
        pause();
}

int main(void)
{
    /* Warm up what the checks use (one thread made and joined), then the baseline. */
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, nothing, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    long baseline = meminfo_kb("MemFree");

    volatile struct shared *sh = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
                                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);

    /* A bystander that only counts; it must keep running through the bomb. */
    pid_t bystander = CHECK_OK(fork());
    if (bystander == 0) {
        while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
            __atomic_fetch_add(&sh->ticks, 1, __ATOMIC_SEQ_CST);
            sched_yield();
        }
        _exit(0);
    }

    int max = on_pagoda() ? MAX_THREADS_PAGODA : MAX_THREADS_LINUX;
    pid_t leader = CHECK_OK(fork());
    if (leader == 0)
        bomb(sh, max);
    uint64_t t0 = now_ns();
    while (!__atomic_load_n(&sh->done, __ATOMIC_SEQ_CST) && now_ns() - t0 < WAIT_LIMIT_NS)
        sched_yield();
    CHECK(sh->done);
    CHECK(sh->created > 0);
    if (on_pagoda()) {
        /* Refused, not killed, and well before the try limit. */
        CHECK(sh->refused == EAGAIN || sh->refused == ENOMEM);
        CHECK(sh->created < max);
    }
    printf("bomb_threads: %d threads created, then %s\n", sh->created,
           sh->refused ? strerror(sh->refused) : "the try limit");
    long ticks = sh->ticks;
    while (sh->ticks == ticks && now_ns() - t0 < WAIT_LIMIT_NS)
        sched_yield();
    CHECK(sh->ticks > ticks);

    /* Kill the bomb with all its threads. */
    int status;
    CHECK_OK(kill(leader, SIGKILL));
    CHECK_EQ(waitpid(leader, &status, 0), leader);
    CHECK_SIGNALED(status, SIGKILL);

    /* The bystander was never touched. */
    __atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(waitpid(bystander, &status, 0), bystander);
    CHECK_EXITED(status, 0);

    /* Everything back: threads again, memory returns. */
    CHECK_EQ(pthread_create(&t, NULL, nothing, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_OK(munmap((void *)sh, PAGE_SIZE));
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
