/*
 * bomb_areas - a process with the most areas it may have (vm.max_map_count one-page
 * PROT_NONE mappings that cannot merge) cannot bring the kernel down:
 * - /proc/self/maps opened many times at once and read, whole and in small pieces,
 *   gives one line per area (regression: each open built the whole ~1.8 MB text in the
 *   kernel heap and kept it; about 120 opens panicked the kernel);
 * - fork until refused: each child gets a copy of the area map, and fork fails with
 *   ENOMEM when the kernel has no room for another (regression: the copy was an
 *   infallible allocation; after about 26 forks the kernel panicked);
 * and afterwards every frame is back.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define MAX_AREAS 65530
#define MAPS_OPENS 200
#define MAX_CHILDREN 64
/* MemFree may stay this far below its baseline after the churn (kB): slabs pinned by
 * objects allocated meanwhile. Leaking one area map (9 MiB) would exceed it 18 times. */
#define HEAP_FRAGMENT_KB 512

/* Lines of the maps file open at `fd`, read `piece` bytes at a time from offset 0. */
static long count_lines(int fd, size_t piece)
{
    static char buf[65536];
    long lines = 0;
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    for (;;) {
        ssize_t n = read(fd, buf, piece);
        CHECK(n >= 0);
        if (n == 0)
            return lines;
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    }
}

int main(void)
{
    long baseline = meminfo_kb("MemFree");
    /* A region to carve: every other page mapped, so no two areas merge. */
    size_t span = 2 * MAX_AREAS * PAGE_SIZE;
    char *base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(base != MAP_FAILED);
    CHECK_OK(munmap(base, span));
    long mapped = 0;
    for (long i = 0; i < MAX_AREAS; i++) {
        void *p = mmap(base + 2 * i * PAGE_SIZE, PAGE_SIZE, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p == MAP_FAILED) {
            CHECK_EQ(errno, ENOMEM); /* the area limit (or, under QEMU, the host's) */
            break;
        }
        mapped++;
    }
    CHECK(mapped > 1000);
    if (on_pagoda())
        CHECK(mapped >= MAX_AREAS - 16); /* all but the few areas the program had */

    /* Many open maps files at once; each reads whole and in pieces. */
    int fds[MAPS_OPENS];
    for (int i = 0; i < MAPS_OPENS; i++)
        fds[i] = CHECK_OK(open("/proc/self/maps", O_RDONLY));
    if (on_pagoda()) {
        /* (QEMU's user mode makes its own maps text, which with this many areas reads
         * as empty: the counts are checked on pagoda only.) */
        long lines = count_lines(fds[0], sizeof(long) * 8192);
        CHECK(lines >= mapped && lines < mapped + 16);
        CHECK_EQ(count_lines(fds[MAPS_OPENS - 1], 100), lines);
        CHECK_EQ(count_lines(fds[1], 1), lines);
    }
    for (int i = 0; i < MAPS_OPENS; i++)
        CHECK_OK(close(fds[i]));

    /* Fork sleeping children until the kernel refuses (or enough of them). */
    pid_t kids[MAX_CHILDREN];
    int nkids = 0;
    int limit = on_pagoda() ? MAX_CHILDREN : 8;
    while (nkids < limit) {
        pid_t pid = fork();
        if (pid == 0) {
            for (;;)
                pause();
        }
        if (pid < 0) {
            CHECK(errno == ENOMEM || errno == EAGAIN);
            break;
        }
        kids[nkids++] = pid;
    }
    CHECK(nkids > 0);
    for (int i = 0; i < nkids; i++)
        CHECK_OK(kill(kids[i], SIGKILL));
    for (int i = 0; i < nkids; i++) {
        int status;
        CHECK_EQ(waitpid(kids[i], &status, 0), kids[i]);
        CHECK_SIGNALED(status, SIGKILL);
    }
    /* With the children gone, fork works again. */
    pid_t pid = CHECK_OK(fork());
    if (pid == 0)
        _exit(0);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);

    CHECK_OK(munmap(base, span));
    /*
     * The kernel heap held the children's area maps (about 9 MiB each, some 100 MiB in
     * all) and got them back; slabs that a few objects allocated since still use stay
     * (slab fragmentation, not a leak: the objects' owners free them). Another hart
     * gives its caches back when it next goes idle: give it time.
     */
    long slack_kb = HEAP_FRAGMENT_KB;
    for (int tries = 0; tries < 200 && on_pagoda() &&
                        meminfo_kb("MemFree") < baseline - slack_kb; tries++) {
        struct timespec ms = {0, 10 * 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    if (on_pagoda())
        CHECK(meminfo_kb("MemFree") >= baseline - slack_kb);
    return 0;
}
