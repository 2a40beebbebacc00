/*
 * bench/fork - process creation with memory: fork + child exit + wait4 with 0, 1, 16,
 * 64 and 256 MiB of private memory touched (the copy-on-write setup and teardown cost;
 * no 256 MiB figure where fork fails with ENOMEM, as vm=eager's copying fork does on
 * make bench's 512 MiB machine), the same with a
 * child that writes one page of 64 MiB before it exits, and the per-page cost of the
 * copies when a child writes every page of 16 MiB. With shared page tables (pagoda's
 * fork=share) the cost moves from fork to the first write to each 2 MiB.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* Average cost of fork + _exit + wait4 with `mib` MiB touched, over `loops` rounds. */
static void fork_exit_wait(size_t mib, int loops)
{
    uint8_t *p = NULL;
    if (mib) {
        p = map_anon(mib * MIB);
        memset(p, 1, mib * MIB);
    }
    uint64_t t0 = now_ns();
    for (int i = 0; i < loops; i++) {
        pid_t pid = fork();
        if (pid < 0 && errno == ENOMEM && i == 0) {
            /* A fork that copies every page (vm=eager) has no room for the copy. */
            printf("bench/fork: fork with %zu MiB touched: ENOMEM, no figure\n", mib);
            CHECK_OK(munmap(p, mib * MIB));
            return;
        }
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(0);
        CHECK_EQ(waitpid(pid, NULL, 0), pid);
    }
    uint64_t t1 = now_ns();
    char name[64];
    snprintf(name, sizeof name, "fork_exit_wait_%zuM", mib);
    bench_report(name, t1 - t0, (uint64_t)loops);
    if (p)
        CHECK_OK(munmap(p, mib * MIB));
}

/* fork + one page written by the child + exit + wait4, with 64 MiB touched. */
static void fork_write_one(int loops)
{
    const size_t len = 64 * MIB;
    uint8_t *p = map_anon(len);
    memset(p, 1, len);
    uint64_t t0 = now_ns();
    for (int i = 0; i < loops; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            p[(size_t)i * 7919 * PAGE_SIZE % len] = 2;
            _exit(0);
        }
        CHECK_EQ(waitpid(pid, NULL, 0), pid);
    }
    bench_report("fork_write1_exit_wait_64M", now_ns() - t0, (uint64_t)loops);
    CHECK_OK(munmap(p, len));
}

/* Per page: a child writes one byte in every page of 16 MiB shared copy-on-write. */
static void cow_write(int loops)
{
    const size_t len = 16 * MIB;
    uint8_t *p = map_anon(len);
    memset(p, 1, len);
    uint64_t *result = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(result != MAP_FAILED);
    uint64_t total = 0;
    for (int i = 0; i < loops; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            uint64_t t0 = now_ns();
            touch_pages(p, len, 2);
            result[0] = now_ns() - t0;
            _exit(0);
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK_EXITED(status, 0);
        total += result[0];
    }
    bench_report("cow_write_fault", total, (uint64_t)loops * (len / PAGE_SIZE));
    CHECK_OK(munmap(p, len));
    CHECK_OK(munmap(result, PAGE_SIZE));
}

int main(void)
{
    fork_exit_wait(0, 100);
    fork_exit_wait(1, 50);
    fork_exit_wait(16, 20);
    fork_exit_wait(64, 5);
    fork_exit_wait(256, 3);
    fork_write_one(5);
    cow_write(5);
    return 0;
}
