/*
 * thread_futex - the futex system call as Linux defines it, signals among threads,
 * and the process-creation calls that share an address space:
 *   futex: EAGAIN when the word differs, ETIMEDOUT after a relative (FUTEX_WAIT) or
 *   absolute (FUTEX_WAIT_BITSET) deadline, bitset matching, CMP_REQUEUE (and its
 *   EAGAIN), EINTR when a handler runs, a shared futex between two processes through
 *   MAP_SHARED memory, EINVAL for a misaligned word;
 *   signals: a process-directed signal runs in the thread that does not block it,
 *   tgkill reaches the thread named, the blocked set is per thread;
 *   vfork (the parent resumes after the child exits, and sees its writes), posix_spawn
 *   (its exec error is reported), CLONE_PARENT (the new process is the caller's
 *   sibling).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static long futex(volatile uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts,
                  volatile uint32_t *uaddr2, uint32_t val3)
{
    return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

static pid_t gettid_(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static volatile uint32_t word_a, word_b;
static volatile int started;

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

static void basics(void)
{
    word_a = 5;
    CHECK_ERR(futex(&word_a, FUTEX_WAIT_PRIVATE, 6, NULL, NULL, 0), EAGAIN);
    CHECK_ERR(futex((volatile uint32_t *)((char *)&word_a + 1), FUTEX_WAIT, 5, NULL, NULL, 0),
              EINVAL);
    CHECK_EQ(futex(&word_a, FUTEX_WAKE_PRIVATE, 10, NULL, NULL, 0), 0);
    /* Relative timeout. */
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    uint64_t t0 = now_ns();
    CHECK_ERR(futex(&word_a, FUTEX_WAIT_PRIVATE, 5, &ten_ms, NULL, 0), ETIMEDOUT);
    CHECK(now_ns() - t0 >= 10 * 1000 * 1000);
    /* Absolute timeout on CLOCK_MONOTONIC, and on CLOCK_REALTIME. */
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 10 * 1000 * 1000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    CHECK_ERR(futex(&word_a, FUTEX_WAIT_BITSET_PRIVATE, 5, &abs, NULL, FUTEX_BITSET_MATCH_ANY),
              ETIMEDOUT);
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_sec -= 1; /* already past */
    CHECK_ERR(futex(&word_a, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 5, &abs, NULL,
                    FUTEX_BITSET_MATCH_ANY),
              ETIMEDOUT);
    CHECK_ERR(futex(&word_a, FUTEX_WAIT_BITSET_PRIVATE, 5, NULL, NULL, 0), EINVAL);
}

/* A waiter on word_a with bitset (long)arg. */
static void *bit_waiter(void *arg)
{
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    long r = futex(&word_a, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, (uint32_t)(long)arg);
    return (void *)r;
}

/* Wakes word at most `n` at a time until `want` waiters have been woken. */
static void wake_until(volatile uint32_t *w, int op, uint32_t bits, int want)
{
    int woken = 0;
    uint64_t t0 = now_ns();
    while (woken < want) {
        long r = futex(w, op, 1, NULL, NULL, bits);
        CHECK(r >= 0);
        woken += (int)r;
        if (now_ns() - t0 > WAIT_LIMIT_NS)
            check_fail(__FILE__, __LINE__, "woke %d of %d waiters", woken, want);
        sched_yield();
    }
}

static void bitsets(void)
{
    word_a = 0;
    started = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, bit_waiter, (void *)1L), 0);
    WAIT_UNTIL(&started, 1);
    sleep_ms(20); /* let it reach the kernel */
    /* A wake-up with a disjoint mask passes it by. */
    CHECK_EQ(futex(&word_a, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 2), 0);
    wake_until(&word_a, FUTEX_WAKE_BITSET_PRIVATE, 3, 1);
    void *r;
    CHECK_EQ(pthread_join(t, &r), 0);
    CHECK_EQ((long)r, 0);
}

static void *plain_waiter(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    while (word_a == 0)
        futex(&word_a, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}

static void requeue(void)
{
    word_a = 0;
    word_b = 0;
    started = 0;
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, plain_waiter, NULL), 0);
    WAIT_UNTIL(&started, 3);
    sleep_ms(30);
    /* A stale expected value: nothing moves. */
    CHECK_ERR(futex(&word_a, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)2L, &word_b, 9), EAGAIN);
    /* Wake none, move all three to word_b: counted as moved. */
    CHECK_EQ(futex(&word_a, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)3L, &word_b, 0), 3);
    CHECK_EQ(futex(&word_a, FUTEX_WAKE_PRIVATE, 3, NULL, NULL, 0), 0);
    word_a = 1;
    CHECK_EQ(futex(&word_b, FUTEX_WAKE_PRIVATE, 3, NULL, NULL, 0), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
}

/* EINTR: a handler runs in the waiting thread. */
static volatile pid_t handler_tid;
static volatile int handler_hits;

static void record(int sig)
{
    (void)sig;
    handler_tid = gettid_();
    handler_hits++;
}

static volatile pid_t waiter_tid;

static void *eintr_waiter(void *arg)
{
    (void)arg;
    waiter_tid = gettid_();
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    long r = futex(&word_a, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return (void *)(r < 0 ? (long)errno : 0L);
}

static void interrupted(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = record;
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    word_a = 0;
    started = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, eintr_waiter, NULL), 0);
    WAIT_UNTIL(&started, 1);
    sleep_ms(20);
    CHECK_OK(syscall(SYS_tgkill, getpid(), waiter_tid, SIGUSR1));
    void *r;
    CHECK_EQ(pthread_join(t, &r), 0);
    CHECK_EQ((long)r, EINTR);
    CHECK_EQ(handler_tid, waiter_tid);
}

/* A process-directed signal goes to the thread that does not block it. */
static volatile int go_home;

static void *unblocked(void *arg)
{
    (void)arg;
    sigset_t none;
    sigemptyset(&none);
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &none, NULL), 0);
    waiter_tid = gettid_();
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    while (!go_home)
        sched_yield();
    return NULL;
}

static void directed(void)
{
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
    started = 0;
    handler_hits = 0;
    handler_tid = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, unblocked, NULL), 0);
    WAIT_UNTIL(&started, 1);
    CHECK_OK(kill(getpid(), SIGUSR1));
    uint64_t t0 = now_ns();
    while (!handler_hits && now_ns() - t0 < WAIT_LIMIT_NS)
        sched_yield();
    CHECK_EQ(handler_hits, 1);
    CHECK_EQ(handler_tid, waiter_tid);
    /* The main thread's mask is its own: still blocked here. */
    sigset_t now;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    CHECK(sigismember(&now, SIGUSR1));
    go_home = 1;
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}

/* A futex shared by two processes through MAP_SHARED memory. */
static void shared_futex(void)
{
    volatile uint32_t *w = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(w != MAP_FAILED);
    w[0] = 0;
    w[1] = 0;
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        w[1] = 1;
        while (w[0] == 0)
            futex(&w[0], FUTEX_WAIT, 0, NULL, NULL, 0);
        _exit(w[0] == 7 ? 0 : 1);
    }
    WAIT_UNTIL((volatile int *)&w[1], 1);
    sleep_ms(20);
    w[0] = 7;
    wake_until(&w[0], FUTEX_WAKE, 0, 1);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    CHECK_OK(munmap((void *)w, PAGE_SIZE));
}

/* vfork: the child runs in the parent's memory until it exits or execs. */
static void vfork_shares(void)
{
    static volatile int written;
    written = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        written = 99;
        _exit(5);
    }
    CHECK(pid > 0);
    /* The child is done, and wrote our memory (Linux user-mode emulation runs vfork as
     * fork: there the write stays the child's). */
    if (on_pagoda())
        CHECK_EQ(written, 99);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 5);
}

static void spawn(void)
{
    extern char **environ;
    char *ok_argv[] = {"probe", "exit", "7", NULL};
    pid_t pid;
    CHECK_EQ(posix_spawn(&pid, PROBE_PATH, NULL, NULL, ok_argv, environ), 0);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 7);
    char *bad_argv[] = {"nothing", NULL};
    /* The exec error comes back through the memory the child shares with us; Linux
     * user-mode emulation runs the child as a fork, so there the child exits 127. */
    int r = posix_spawn(&pid, "/no/such/program", NULL, NULL, bad_argv, environ);
    if (on_pagoda()) {
        CHECK_EQ(r, ENOENT);
    } else {
        CHECK_EQ(r, 0);
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK_EXITED(status, 127);
    }
}

/* CLONE_PARENT: the new process is our sibling, so our parent reaps it. */
static void clone_parent(void *arg)
{
    (void)arg;
    long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(9);
    CHECK(pid > 0);
    CHECK_ERR(waitpid((pid_t)pid, NULL, 0), ECHILD); /* not our child */
    _exit((int)(pid & 0x7f));
}

static void sibling(void)
{
    pid_t child = CHECK_OK(fork());
    if (child == 0)
        clone_parent(NULL);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    int low = WEXITSTATUS(status); /* the sibling's pid, low 7 bits */
    /* The sibling is ours to reap. */
    pid_t p;
    uint64_t t0 = now_ns();
    while ((p = waitpid(-1, &status, WNOHANG)) == 0 && now_ns() - t0 < WAIT_LIMIT_NS)
        sleep_ms(5);
    CHECK(p > 0);
    CHECK_EQ(p & 0x7f, low);
    CHECK_EXITED(status, 9);
}

int main(void)
{
    basics();
    bitsets();
    requeue();
    interrupted();
    directed();
    shared_futex();
    vfork_shares();
    spawn();
    /* Linux user-mode emulation refuses CLONE_PARENT (EINVAL): pagoda only. */
    if (on_pagoda())
        sibling();
    return 0;
}
