/*
 * bomb_files - open files are bounded: a process gets EMFILE at its descriptor limit,
 * and processes together get ENFILE at the system's (fs.file-max, a tenth of RAM in
 * kilobytes); afterwards every description is closed and counted back
 * (/proc/sys/fs/file-nr). Regression: 1,500 children each opening /proc/self/status up
 * to the descriptor limit made 1.5 million kernel objects, allocated infallibly and
 * uncounted, until the kernel heap panicked.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* The most children (enough to pass fs.file-max at 256 MiB: 23,447 descriptions). */
#define MAX_CHILDREN 40
/* How long the children may take to open everything (ns): a loaded host is slow. */
#define OPEN_LIMIT_NS (180ULL * 1000 * 1000 * 1000)

/* Column `col` (0: open file descriptions, 2: fs.file-max) of /proc/sys/fs/file-nr. */
static long file_nr(int col)
{
    char buf[128] = {0};
    int fd = open("/proc/sys/fs/file-nr", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    long v[3] = {-1, -1, -1};
    if (n > 0)
        sscanf(buf, "%ld %ld %ld", &v[0], &v[1], &v[2]);
    return v[col];
}

static long open_files(void)
{
    return file_nr(0);
}

/* Opens files until refused; returns how many, and the errno that stopped it. */
static int open_until_refused(const char *path, int *err)
{
    int n = 0;
    for (;;) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            *err = errno;
            return n;
        }
        n++;
    }
}

int main(void)
{
    long files_before = open_files();
    struct rlimit rl;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    if (!on_pagoda() && rl.rlim_cur > 1024) {
        /* The host may allow far more descriptors than Linux's default 1024. */
        rl.rlim_cur = 1024;
        CHECK_OK(setrlimit(RLIMIT_NOFILE, &rl));
    }

    /* One process: EMFILE at its limit. */
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        int err = 0;
        int n = open_until_refused("/proc/self/status", &err);
        _exit(err == EMFILE && n + 3 >= (int)rl.rlim_cur - 8 ? 0 : 1);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    if (on_pagoda()) /* (the host's count moves with everything else it runs) */
        CHECK_EQ(open_files(), files_before);

    /* The baseline once this program's own pages (stdio, sscanf) are in. */
    long baseline = meminfo_kb("MemFree");

    /* Many processes, each at its limit, all at once: the system's limit (or memory). */
    volatile int *shared = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    volatile int *done = &shared[0], *go = &shared[1], *enfile = &shared[2];
    volatile int *total = &shared[3];
    /* On pagoda: enough children at 1,021 descriptors each to pass fs.file-max. */
    int children = on_pagoda() ? (int)(file_nr(2) / 1021) + 2 : 8;
    CHECK(children > 2 && children <= MAX_CHILDREN);
    pid_t kids[MAX_CHILDREN];
    for (int i = 0; i < children; i++) {
        kids[i] = CHECK_OK(fork());
        if (kids[i] == 0) {
            int err = 0;
            int n = open_until_refused(i % 4 ? DATA_HELLO_PATH : "/proc/self/status", &err);
            __atomic_fetch_add(total, n, __ATOMIC_SEQ_CST);
            if (err == ENFILE || err == ENOMEM)
                __atomic_fetch_add(enfile, 1, __ATOMIC_SEQ_CST);
            else if (err != EMFILE)
                _exit(2);
            __atomic_fetch_add(done, 1, __ATOMIC_SEQ_CST);
            WAIT_UNTIL(go, 1);
            _exit(0);
        }
    }
    uint64_t t0 = now_ns();
    while (*done < children && now_ns() - t0 < OPEN_LIMIT_NS)
        sched_yield();
    CHECK_EQ(*done, children);
    if (on_pagoda()) {
        /* children x 1021 descriptors exceed fs.file-max. */
        CHECK(*enfile > 0);
    }
    *go = 1;
    for (int i = 0; i < children; i++) {
        CHECK_EQ(waitpid(kids[i], &status, 0), kids[i]);
        CHECK_EXITED(status, 0);
    }
    CHECK(*total > children);
    CHECK_OK(munmap((void *)shared, PAGE_SIZE));
    if (on_pagoda())
        CHECK_EQ(open_files(), files_before);
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
