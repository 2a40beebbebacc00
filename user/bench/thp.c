/*
 * bench/thp - huge pages against 4 KiB pages on the same work, chosen per mapping with
 * madvise (MADV_HUGEPAGE or MADV_NOHUGEPAGE), so the figures do not depend on the
 * system's default mode (pagoda's thp=, Linux's transparent_hugepage/enabled, which
 * `make bench` sets to madvise on both). For each kind (`huge_`, `small_`):
 *   write_64M       first write to every page of 64 MiB, per 4 KiB;
 *   write_64M_faults  page faults taken by that, per 64 MiB (getrusage);
 *   read_64M        first read of every page of 64 MiB never written, per 4 KiB;
 *   munmap_64M      munmap of the written 64 MiB, per 4 KiB;
 *   fork_exit_wait_NM  fork + _exit + wait4 with N MiB written, per fork;
 *   cow_first_write a child's first write after fork (one page), per fork;
 *   cow_write       a child writing every page of 16 MiB after fork, per 4 KiB.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define HUGE (2 * MIB)
#define BIG (64 * MIB)
#define ROUNDS 3

/* A 2 MiB aligned private anonymous mapping with the kind's advice. */
static uint8_t *map_kind(size_t len, int huge)
{
    uint8_t *start = map_anon_aligned(len, HUGE);
    CHECK_OK(madvise(start, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE));
    return start;
}

static long minor_faults(void)
{
    struct rusage ru;
    CHECK_OK(getrusage(RUSAGE_SELF, &ru));
    return ru.ru_minflt;
}

static void report(const char *kind, const char *what, uint64_t elapsed, uint64_t ops)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%s", kind, what);
    bench_report(name, elapsed, ops);
}

static void touch(int huge, const char *kind)
{
    uint64_t write_ns = 0, read_ns = 0, unmap_ns = 0;
    long faults = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint8_t *p = map_kind(BIG, huge);
        long f0 = minor_faults();
        uint64_t t0 = now_ns();
        touch_pages(p, BIG, 1);
        write_ns += now_ns() - t0;
        faults += minor_faults() - f0;
        t0 = now_ns();
        CHECK_OK(munmap(p, BIG));
        unmap_ns += now_ns() - t0;

        volatile uint8_t *q = map_kind(BIG, huge);
        unsigned sum = 0;
        t0 = now_ns();
        for (size_t off = 0; off < BIG; off += PAGE_SIZE)
            sum += q[off];
        read_ns += now_ns() - t0;
        CHECK_EQ(sum, 0);
        CHECK_OK(munmap((void *)q, BIG));
    }
    uint64_t pages = ROUNDS * (BIG / PAGE_SIZE);
    report(kind, "write_64M", write_ns, pages);
    printf("BENCH %s_write_64M_faults %.1f faults\n", kind, (double)faults / ROUNDS);
    report(kind, "read_64M", read_ns, pages);
    report(kind, "munmap_64M", unmap_ns, pages);
}

static void fork_exit_wait(int huge, const char *kind, size_t mib, int loops)
{
    uint8_t *p = map_kind(mib * MIB, huge);
    memset(p, 1, mib * MIB);
    uint64_t t0 = now_ns();
    for (int i = 0; i < loops; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(0);
        CHECK_EQ(waitpid(pid, NULL, 0), pid);
    }
    uint64_t t1 = now_ns();
    char what[32];
    snprintf(what, sizeof what, "fork_exit_wait_%zuM", mib);
    report(kind, what, t1 - t0, (uint64_t)loops);
    CHECK_OK(munmap(p, mib * MIB));
}

/* The child's first write after fork (one page), then every page of 16 MiB. */
static void cow(int huge, const char *kind, int loops)
{
    const size_t len = 16 * MIB;
    uint8_t *p = map_kind(len, huge);
    memset(p, 1, len);
    uint64_t *result = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(result != MAP_FAILED);
    uint64_t first = 0, all = 0;
    for (int i = 0; i < loops; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            uint64_t t0 = now_ns();
            p[len / 2] = 2;
            uint64_t t1 = now_ns();
            touch_pages(p, len, 3);
            result[0] = t1 - t0;
            result[1] = now_ns() - t1;
            _exit(0);
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK_EXITED(status, 0);
        first += result[0];
        all += result[1];
    }
    report(kind, "cow_first_write", first, (uint64_t)loops);
    report(kind, "cow_write", all, (uint64_t)loops * (len / PAGE_SIZE - 1));
    CHECK_OK(munmap(p, len));
    CHECK_OK(munmap(result, PAGE_SIZE));
}

int main(void)
{
    for (int huge = 1; huge >= 0; huge--) {
        const char *kind = huge ? "huge" : "small";
        touch(huge, kind);
        fork_exit_wait(huge, kind, 16, 10);
        fork_exit_wait(huge, kind, 64, 5);
        fork_exit_wait(huge, kind, 256, 3);
        cow(huge, kind, 5);
    }
    return 0;
}
