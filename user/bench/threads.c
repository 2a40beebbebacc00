/*
 * bench/threads - threads, signals, pipes and TLB shootdowns (run by `make bench` on
 * four harts):
 *   thread_create_join     pthread_create + pthread_join of a thread that returns;
 *   futex_pingpong         one futex wake-up and the switch to the woken thread
 *                          (a round trip between two threads, halved);
 *   signal_roundtrip       tgkill to oneself, the handler, rt_sigreturn;
 *   pipe_roundtrip         one byte to another process and back over two pipes;
 *   mprotect_4K_T<n>       mprotect of one resident page there and back, with n - 1
 *   mprotect_1M_T<n>       other threads running the address space on other harts
 *   munmap_4K_T<n>         (spinning on their own pages): each change must reach them;
 *   *.remote               remote TLB flush requests the kernel sent per operation
 *                          (pagoda's /proc/vmstat tlb_remote_requests; not on Linux).
 * Under -icount, time is every hart's instructions, spinners included: the mprotect and
 * munmap figures compare kernels with the same spinners, not with the one-thread rows.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* pagoda's count of remote flush requests (-1 where there is none, e.g. Linux). */
static long remote_requests(void)
{
    char buf[2048];
    int fd = open("/proc/vmstat", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *at = strstr(buf, "tlb_remote_requests ");
    return at ? atol(at + strlen("tlb_remote_requests ")) : -1;
}

static void report_remote(const char *name, long before, long after, uint64_t ops)
{
    if (before < 0 || after < 0)
        return;
    printf("BENCH %s.remote %.2f requests\n", name, (double)(after - before) / (double)ops);
}

static void *nothing(void *arg)
{
    return arg;
}

static void create_join(void)
{
    const int loops = 200;
    uint64_t t0 = now_ns();
    for (int i = 0; i < loops; i++) {
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, nothing, NULL), 0);
        CHECK_EQ(pthread_join(t, NULL), 0);
    }
    bench_report("thread_create_join", now_ns() - t0, loops);
}

static volatile uint32_t ping, pong;
#define ROUND_TRIPS 500

static void futex_wait(volatile uint32_t *w, uint32_t v)
{
    while (*w == v)
        syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void futex_wake(volatile uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *ponger(void *arg)
{
    (void)arg;
    for (uint32_t i = 1; i <= ROUND_TRIPS; i++) {
        futex_wait(&ping, i - 1);
        pong = i;
        futex_wake(&pong);
    }
    return NULL;
}

static void futex_pingpong(void)
{
    ping = pong = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, ponger, NULL), 0);
    uint64_t t0 = now_ns();
    for (uint32_t i = 1; i <= ROUND_TRIPS; i++) {
        ping = i;
        futex_wake(&ping);
        futex_wait(&pong, i - 1);
    }
    bench_report("futex_pingpong", now_ns() - t0, 2 * ROUND_TRIPS);
    CHECK_EQ(pthread_join(t, NULL), 0);
}

static volatile int handled;

static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static void signal_roundtrip(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    const int loops = 1000;
    pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
    uint64_t t0 = now_ns();
    for (int i = 0; i < loops; i++)
        syscall(SYS_tgkill, pid, tid, SIGUSR1);
    bench_report("signal_roundtrip", now_ns() - t0, loops);
    CHECK_EQ(handled, loops);
}

static void pipe_roundtrip(void)
{
    int there[2], back[2];
    CHECK_OK(pipe(there));
    CHECK_OK(pipe(back));
    const int loops = 500;
    pid_t pid = CHECK_OK(fork());
    char c = 0;
    if (pid == 0) {
        for (int i = 0; i < loops; i++) {
            if (read(there[0], &c, 1) != 1 || write(back[1], &c, 1) != 1)
                _exit(1);
        }
        _exit(0);
    }
    uint64_t t0 = now_ns();
    for (int i = 0; i < loops; i++) {
        CHECK_EQ(write(there[1], &c, 1), 1);
        CHECK_EQ(read(back[0], &c, 1), 1);
    }
    bench_report("pipe_roundtrip", now_ns() - t0, loops);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    close(there[0]);
    close(there[1]);
    close(back[0]);
    close(back[1]);
}

static volatile int stop_spinning;

/* Spins until the byte at `p` is not 0. */
static void wait_nonzero(volatile char *p)
{
    uint64_t t0 = now_ns();
    while (*p == 0)
        CHECK(now_ns() - t0 < WAIT_LIMIT_NS);
}

/* A thread keeping the address space live on its hart: it writes its own page. */
static void *spinner(void *arg)
{
    volatile char *mine = arg;
    while (!stop_spinning)
        mine[0] = (char)(mine[0] + 1) | 1;
    return NULL;
}

static void changes_with_threads(int threads)
{
    pthread_t t[4];
    char *own = map_anon(4 * PAGE_SIZE);
    stop_spinning = 0;
    for (int i = 0; i < threads - 1; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, spinner, own + i * PAGE_SIZE), 0);
    /* Measured only once every spinner runs (on its own hart: there are four). */
    for (int i = 0; i < threads - 1; i++)
        wait_nonzero(own + i * PAGE_SIZE);
    char name[64];
    const int loops = 200;

    uint8_t *page = map_anon(MIB);
    memset(page, 1, MIB);
    long r0 = remote_requests();
    uint64_t t0 = now_ns();
    for (int i = 0; i < loops; i++) {
        CHECK_OK(mprotect(page, PAGE_SIZE, PROT_READ));
        CHECK_OK(mprotect(page, PAGE_SIZE, PROT_READ | PROT_WRITE));
    }
    uint64_t took = now_ns() - t0;
    snprintf(name, sizeof name, "mprotect_4K_T%d", threads);
    bench_report(name, took, 2 * loops);
    report_remote(name, r0, remote_requests(), 2 * loops);

    r0 = remote_requests();
    t0 = now_ns();
    for (int i = 0; i < loops / 4; i++) {
        CHECK_OK(mprotect(page, MIB, PROT_READ));
        CHECK_OK(mprotect(page, MIB, PROT_READ | PROT_WRITE));
    }
    took = now_ns() - t0;
    snprintf(name, sizeof name, "mprotect_1M_T%d", threads);
    bench_report(name, took, 2 * (loops / 4));
    report_remote(name, r0, remote_requests(), 2 * (loops / 4));
    CHECK_OK(munmap(page, MIB));

    /* munmap of one resident page (mapped and touched again each time). */
    r0 = remote_requests();
    uint64_t in_unmap = 0;
    for (int i = 0; i < loops; i++) {
        uint8_t *p = map_anon(PAGE_SIZE);
        p[0] = 1;
        t0 = now_ns();
        CHECK_OK(munmap(p, PAGE_SIZE));
        in_unmap += now_ns() - t0;
    }
    snprintf(name, sizeof name, "munmap_4K_T%d", threads);
    bench_report(name, in_unmap, loops);
    report_remote(name, r0, remote_requests(), loops);

    stop_spinning = 1;
    for (int i = 0; i < threads - 1; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_OK(munmap(own, 4 * PAGE_SIZE));
}

int main(void)
{
    create_join();
    futex_pingpong();
    signal_roundtrip();
    pipe_roundtrip();
    for (int n = 1; n <= 4; n *= 2)
        changes_with_threads(n);
    return 0;
}
