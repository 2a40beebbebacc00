/*
 * thread_basic - POSIX threads on static glibc, as Linux runs them: create and join
 * (clone with CLONE_VM | CLONE_THREAD | CLONE_SETTLS | CLONE_CHILD_CLEARTID ...), 300
 * threads that return at once created and joined in a row, thread
 * ids (gettid differs, getpid is shared, /proc/self/status counts the threads),
 * thread-local storage, a mutex and a condition variable under contention, many
 * threads demand-faulting one address space at once, pthread_exit from the main thread
 * (the process lives on until its last thread ends), exit_group from a thread ending
 * every thread with its status, and a fault in one thread killing the whole process.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define THREADS 8
#define ROUNDS 2000

static __thread long tls_value = 7;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long counter;
static int tids[THREADS];

static pid_t gettid_(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void *worker(void *arg)
{
    long i = (long)arg;
    CHECK_EQ(tls_value, 7); /* each thread starts with the initial image */
    tls_value = 100 + i;
    tids[i] = gettid_();
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_EQ(pthread_mutex_lock(&lock), 0);
        long v = counter;
        if (r % 64 == 0)
            sched_yield(); /* hold the lock across a switch: others must wait */
        counter = v + 1;
        CHECK_EQ(pthread_mutex_unlock(&lock), 0);
    }
    CHECK_EQ(tls_value, 100 + i);
    return (void *)(i * 3);
}

static void create_join(void)
{
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (long i = 0; i < THREADS; i++) {
        void *ret;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK_EQ((long)ret, i * 3);
    }
    CHECK_EQ(counter, (long)THREADS * ROUNDS);
    CHECK_EQ(tls_value, 7);
    for (int i = 0; i < THREADS; i++) {
        CHECK(tids[i] > 0);
        CHECK(tids[i] != getpid());
        for (int j = 0; j < i; j++)
            CHECK(tids[i] != tids[j]);
    }
    CHECK_EQ(gettid_(), getpid());
}

/* Threads that return at once, created and joined in a row: the thread may exit (and
 * clear its tid word, waking the join) before pthread_create returns. Regression: the
 * kernel wrote CLONE_PARENT_SETTID's tid after the child could run, over the child's
 * clearing, and pthread_join waited forever (seen on four harts). */
static void *returns_at_once(void *arg)
{
    return arg;
}

static void quick_threads(void)
{
    for (long i = 0; i < 300; i++) {
        pthread_t t;
        void *ret;
        CHECK_EQ(pthread_create(&t, NULL, returns_at_once, (void *)i), 0);
        CHECK_EQ(pthread_join(t, &ret), 0);
        CHECK_EQ((long)ret, i);
    }
}

/* Producer/consumer through one slot under a condition variable. */
static int slot, full, done_consuming;
static long consumed_sum;

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (!full)
            pthread_cond_wait(&cond, &lock);
        int v = slot;
        full = 0;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        if (v < 0)
            break;
        consumed_sum += v;
    }
    done_consuming = 1;
    return NULL;
}

static void condvar(void)
{
    pthread_t c;
    CHECK_EQ(pthread_create(&c, NULL, consumer, NULL), 0);
    long want = 0;
    for (int i = 1; i <= 500; i++) {
        pthread_mutex_lock(&lock);
        while (full)
            pthread_cond_wait(&cond, &lock);
        slot = i;
        full = 1;
        want += i;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    while (full)
        pthread_cond_wait(&cond, &lock);
    slot = -1;
    full = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    CHECK_EQ(pthread_join(c, NULL), 0);
    CHECK(done_consuming);
    CHECK_EQ(consumed_sum, want);
}

/* Many threads demand-fault disjoint parts of one mapping at once. */
#define FAULT_PAGES 256
static char *region;

static void *toucher(void *arg)
{
    long i = (long)arg;
    for (long p = i; p < FAULT_PAGES; p += THREADS)
        region[p * PAGE_SIZE + 1] = (char)(p + 1);
    return NULL;
}

static void parallel_faults(void)
{
    region = mmap(NULL, FAULT_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(region != MAP_FAILED);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, toucher, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    for (long p = 0; p < FAULT_PAGES; p++)
        CHECK_EQ(region[p * PAGE_SIZE + 1], (char)(p + 1));
    CHECK_OK(munmap(region, FAULT_PAGES * PAGE_SIZE));
}

/* /proc/self/status counts the threads. */
static volatile int parked_go;

static void *parked(void *arg)
{
    (void)arg;
    while (!parked_go)
        sched_yield();
    return NULL;
}

static void thread_count(void)
{
    /* Deltas: Linux user-mode emulation runs threads of its own. */
    long before = self_status_kb("Threads");
    CHECK(before >= 1);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, parked, NULL), 0);
    CHECK_EQ(self_status_kb("Threads"), before + 3);
    parked_go = 1;
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    /* A joined thread may still be leaving (the join wakes on its tid word, cleared
     * early in its exit): wait for the count, within WAIT_LIMIT_NS. */
    uint64_t t0 = now_ns();
    while (self_status_kb("Threads") != before) {
        if (now_ns() - t0 > WAIT_LIMIT_NS)
            check_fail(__FILE__, __LINE__, "Threads stays %ld, not %ld",
                       self_status_kb("Threads"), before);
        sched_yield();
    }
}

/* In a child: the main thread leaves with pthread_exit; the last thread's exit code
 * becomes the process's. */
static void *late_exit(void *arg)
{
    (void)arg;
    struct timespec ms = {0, 20 * 1000 * 1000};
    nanosleep(&ms, NULL);
    syscall(SYS_exit, 23); /* this thread only: the last one */
    return NULL;
}

static void main_exits_first(void *arg)
{
    (void)arg;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, late_exit, NULL), 0);
    pthread_exit(NULL);
}

/* In a child: a thread calls exit(), ending the process (exit_group) while the main
 * thread sleeps. */
static void *exits_all(void *arg)
{
    (void)arg;
    exit(42);
}

static void thread_exits_process(void *arg)
{
    (void)arg;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, exits_all, NULL), 0);
    for (;;)
        pause();
}

/* In a child: a thread faults; the process dies with SIGSEGV. */
static volatile int *volatile nowhere = (volatile int *)8; /* the first page: never mapped */
static void *faulter(void *arg)
{
    (void)arg;
    *nowhere = 1;
    return NULL;
}

static void thread_faults(void *arg)
{
    (void)arg;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, faulter, NULL), 0);
    for (;;)
        pause();
}

int main(void)
{
    create_join();
    quick_threads();
    condvar();
    parallel_faults();
    thread_count();
    CHECK_EXITED(run_in_child(main_exits_first, NULL), 23);
    CHECK_EXITED(run_in_child(thread_exits_process, NULL), 42);
    CHECK_SIGNALED(run_in_child(thread_faults, NULL), SIGSEGV);
    return 0;
}
