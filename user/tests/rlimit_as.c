/*
 * rlimit_as - RLIMIT_AS bounds every way an address space grows, root included, as on
 * Linux (`may_expand_vm`): with the limit a few MiB above the process's size, mmap,
 * MAP_FIXED over new pages, brk, malloc, mremap growth and stack growth past it fail
 * (ENOMEM; SIGSEGV for the stack), MAP_FIXED over mapped pages and shrinking stay
 * free, exec keeps the limit, and raising it lets the space grow again. RLIMIT_NPROC
 * reads Linux's default, half of threads-max.
 * QEMU's user mode accepts RLIMIT_AS but does not apply it (it would bind the emulator
 * itself), so under Linux only the calls' results that do not depend on it are checked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Room left under the limit, and what is asked beyond it. */
#define ROOM (8 * MIB)
#define TOO_MUCH (16 * MIB)

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    long v = -1;
    CHECK_EQ(fscanf(f, "%ld", &v), 1);
    fclose(f);
    return v;
}

/* The limit as set, in the exec'ed image: mappings past it still fail. */
static int after_exec(rlim_t want)
{
    struct rlimit r;
    CHECK_OK(getrlimit(RLIMIT_AS, &r));
    if (!on_pagoda())
        return 0;
    CHECK_EQ(r.rlim_cur, want);
    CHECK_EQ(mmap(NULL, 2 * want, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
             MAP_FAILED);
    CHECK_EQ(errno, ENOMEM);
    return 0;
}

/* Touches `bytes` of stack below this frame, page by page. */
static void __attribute__((noinline)) deep_stack(size_t bytes)
{
    volatile char *probe = alloca(bytes);
    for (size_t off = bytes; off >= PAGE_SIZE; off -= PAGE_SIZE)
        probe[off - PAGE_SIZE] = 1;
}

static void limited(void)
{
    int pagoda = on_pagoda();
    long size = self_status_kb("VmSize") * 1024;
    CHECK(size > 0);
    struct rlimit lim = {.rlim_cur = size + ROOM, .rlim_max = size + ROOM};
    CHECK_OK(setrlimit(RLIMIT_AS, &lim));

    /* A new mapping past the limit; one within it. */
    void *big = mmap(NULL, TOO_MUCH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pagoda) {
        CHECK_EQ(big, MAP_FAILED);
        CHECK_EQ(errno, ENOMEM);
    } else if (big != MAP_FAILED) {
        munmap(big, TOO_MUCH);
    }
    char *m = mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    m[0] = 1;
    /* MAP_FIXED over its own pages adds nothing. */
    CHECK_EQ(mmap(m, 2 * MIB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
             (void *)m);
    /* mremap: growth past the limit fails (the mapping stays), shrinking is free. */
    void *grown = mremap(m, 2 * MIB, 2 * MIB + TOO_MUCH, MREMAP_MAYMOVE);
    if (pagoda) {
        CHECK_EQ(grown, MAP_FAILED);
        CHECK_EQ(errno, ENOMEM);
    } else if (grown != MAP_FAILED) {
        m = grown;
    }
    CHECK_EQ(mremap(m, 2 * MIB, MIB, 0), (void *)m);
    CHECK_OK(munmap(m, MIB));
    /* brk and malloc (glibc falls back from mmap to brk: both refused). */
    void *brk0 = sbrk(0);
    if (pagoda) {
        CHECK_EQ(sbrk(TOO_MUCH), (void *)-1);
        CHECK_EQ(errno, ENOMEM);
        CHECK_EQ(sbrk(0), brk0);
        errno = 0;
        CHECK(malloc(TOO_MUCH) == NULL);
        CHECK_EQ(errno, ENOMEM);
    }
    CHECK(sbrk(PAGE_SIZE) != (void *)-1);

    /* Stack growth past the limit kills with SIGSEGV (4 MiB is within the stack's own
     * limit of 8 MiB: without RLIMIT_AS the same growth is fine). */
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        struct rlimit tight = {.rlim_cur = self_status_kb("VmSize") * 1024 + 2 * MIB};
        tight.rlim_max = tight.rlim_cur;
        CHECK_OK(setrlimit(RLIMIT_AS, &tight));
        deep_stack(MIB);
        deep_stack(4 * MIB);
        _exit(pagoda ? 3 : 0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (pagoda)
        CHECK_SIGNALED(status, SIGSEGV);
    else
        CHECK_EXITED(status, 0);

    /* exec keeps the limit. */
    pid = CHECK_OK(fork());
    if (pid == 0) {
        char arg[32];
        snprintf(arg, sizeof arg, "%lu", (unsigned long)lim.rlim_cur);
        char self[256];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        CHECK(n > 0);
        self[n] = 0;
        char *argv[] = {"rlimit_as", arg, NULL};
        execv(self, argv);
        _exit(4);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);

    /* Raised to no limit (root may raise the hard limit): the space grows again. */
    lim.rlim_cur = lim.rlim_max = RLIM_INFINITY;
    CHECK_OK(setrlimit(RLIMIT_AS, &lim));
    big = mmap(NULL, TOO_MUCH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(big != MAP_FAILED);
    CHECK(sbrk(TOO_MUCH) != (void *)-1);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc == 2)
        return after_exec(strtoul(argv[1], NULL, 10));

    struct rlimit r;
    CHECK_OK(getrlimit(RLIMIT_AS, &r));
    CHECK_EQ(r.rlim_cur, RLIM_INFINITY);
    CHECK_EQ(r.rlim_max, RLIM_INFINITY);
    CHECK_OK(getrlimit(RLIMIT_NPROC, &r));
    if (on_pagoda()) {
        long threads_max = read_long("/proc/sys/kernel/threads-max");
        CHECK_EQ(r.rlim_cur, (rlim_t)(threads_max / 2));
        CHECK_EQ(r.rlim_max, (rlim_t)(threads_max / 2));
    }

    pid_t pid = CHECK_OK(fork());
    if (pid == 0)
        limited();
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    /* The parent's own space was never limited. */
    void *big = mmap(NULL, TOO_MUCH, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(big != MAP_FAILED);
    return 0;
}
