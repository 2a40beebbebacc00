/*
 * mlock_basic - mlock, mlock2, munlock, mlockall and munlockall with Linux's errors: the
 * range is page-rounded and faulted in (mincore says resident), VmLck counts locked
 * areas, mprotect and munmap split them and keep the rest locked, PROT_NONE is locked
 * but ENOMEM, MADV_DONTNEED refuses locked pages, MAP_LOCKED locks, locks are not
 * inherited by fork and end at execve (with mlockall(MCL_FUTURE)), and a root process
 * (CAP_IPC_LOCK) locks past RLIMIT_MEMLOCK. On pagoda: mlock2, Mlocked and Unevictable
 * in /proc/meminfo, and mlockall(MCL_CURRENT) (under QEMU's user mode it would lock
 * the emulator's own memory, and QEMU 7.2 has no mlock2).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

static long vmlck(void)
{
    return self_status_kb("VmLck");
}

static int sys_mlock2(const void *addr, size_t len, unsigned flags)
{
    return (int)syscall(SYS_mlock2, addr, len, flags);
}

/* Number of resident pages among the `pages` pages at `p`, by mincore. */
static size_t resident(void *p, size_t pages)
{
    unsigned char vec[256];
    CHECK(pages <= sizeof vec);
    CHECK_OK(mincore(p, pages * PAGE_SIZE, vec));
    size_t n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

static void errors(void)
{
    char *p = map_anon(4 * PAGE_SIZE);
    long base = vmlck();
    CHECK_ERR(mlock(NULL, PAGE_SIZE), ENOMEM);
    CHECK_ERR(munlock(NULL, PAGE_SIZE), ENOMEM);
    CHECK_OK(mlock(NULL, 0));
    CHECK_OK(mlock(p, 0));
    /* A length that rounds to 0 pages locks nothing; one that wraps is EINVAL. */
    CHECK_OK(mlock(p + PAGE_SIZE, SIZE_MAX));
    CHECK_EQ(vmlck(), base);
    CHECK_ERR(mlock(p + PAGE_SIZE, SIZE_MAX - 2 * PAGE_SIZE + 1), EINVAL);
    CHECK_ERR(munlock(p + PAGE_SIZE, SIZE_MAX - 2 * PAGE_SIZE + 1), EINVAL);
    CHECK_ERR(mlockall(0), EINVAL);
    CHECK_ERR(mlockall(MCL_ONFAULT), EINVAL);
    CHECK_ERR(mlockall(8), EINVAL);
    CHECK_ERR_LINUX(sys_mlock2(p, PAGE_SIZE, 2), EINVAL);
    CHECK_ERR_LINUX(sys_mlock2(NULL, PAGE_SIZE, 0), ENOMEM);
    /* A hole after the first page: ENOMEM, the page before it locked (as Linux). */
    CHECK_OK(munmap(p + PAGE_SIZE, PAGE_SIZE));
    CHECK_ERR(mlock(p + PAGE_SIZE, PAGE_SIZE), ENOMEM);
    CHECK_ERR(mlock(p, 3 * PAGE_SIZE), ENOMEM);
    CHECK_EQ(vmlck(), base + 4);
    CHECK_ERR(munlock(p, 3 * PAGE_SIZE), ENOMEM);
    CHECK_EQ(vmlck(), base);
    CHECK_OK(munmap(p, 4 * PAGE_SIZE));
}

static void lock_and_split(void)
{
    char *p = map_anon(16 * PAGE_SIZE);
    long base = vmlck();
    CHECK_EQ(resident(p, 16), 0);
    /* Unaligned start, length ending inside the fourth page: pages 1..4 locked. */
    CHECK_OK(mlock(p + PAGE_SIZE + 100, 3 * PAGE_SIZE));
    CHECK_EQ(vmlck(), base + 16);
    CHECK_EQ(resident(p, 16), 4);
    CHECK_EQ(resident(p + PAGE_SIZE, 4), 4);
    /* Locking again changes nothing. */
    CHECK_OK(mlock(p + PAGE_SIZE, 4 * PAGE_SIZE));
    CHECK_EQ(vmlck(), base + 16);
    /* mprotect inside the locked range splits it: still locked, still resident. */
    CHECK_OK(mprotect(p + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ));
    CHECK_EQ(vmlck(), base + 16);
    CHECK_OK(mprotect(p + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE));
    /* munmap of one locked page: the rest stays locked. */
    CHECK_OK(munmap(p + 3 * PAGE_SIZE, PAGE_SIZE));
    CHECK_EQ(vmlck(), base + 12);
    /* MADV_DONTNEED refuses locked pages (EINVAL); unlocked ones it drops. */
    /* (QEMU's user mode passes MADV_DONTNEED to Linux only for some mappings and
     * otherwise ignores it: checked on pagoda.) */
    p[10 * PAGE_SIZE] = 1;
    CHECK_ERR_LINUX(madvise(p, 16 * PAGE_SIZE, MADV_DONTNEED), EINVAL);
    CHECK_EQ(resident(p + PAGE_SIZE, 2), 2);
    CHECK_OK(madvise(p + 8 * PAGE_SIZE, 8 * PAGE_SIZE, MADV_DONTNEED));
    if (on_pagoda())
        CHECK_EQ(resident(p + 10 * PAGE_SIZE, 1), 0);
    /* munlock of part, then of everything (holes are ENOMEM, after the rest). */
    CHECK_OK(munlock(p + PAGE_SIZE, PAGE_SIZE));
    CHECK_EQ(vmlck(), base + 8);
    CHECK_ERR(munlock(p, 16 * PAGE_SIZE), ENOMEM);
    CHECK_EQ(vmlck(), base + 4); /* page 4, beyond the hole, is still locked */
    CHECK_OK(munlock(p + 4 * PAGE_SIZE, 12 * PAGE_SIZE));
    CHECK_EQ(vmlck(), base);
    CHECK_OK(munmap(p, 16 * PAGE_SIZE));
}

static void prot_none_and_map_locked(void)
{
    long base = vmlck();
    char *n = mmap(NULL, 2 * PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(n != MAP_FAILED);
    /* Linux locks the area, then cannot fault it in: ENOMEM, and VmLck counts it. */
    CHECK_ERR(mlock(n, 2 * PAGE_SIZE), ENOMEM);
    CHECK_EQ(vmlck(), base + 8);
    CHECK_OK(munlock(n, 2 * PAGE_SIZE));
    CHECK_EQ(vmlck(), base);
    CHECK_OK(munmap(n, 2 * PAGE_SIZE));
    /* MAP_LOCKED: locked and faulted in at once. */
    char *l = mmap(NULL, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    CHECK(l != MAP_FAILED);
    CHECK_EQ(vmlck(), base + 32);
    CHECK_EQ(resident(l, 8), 8);
    CHECK_OK(munmap(l, 8 * PAGE_SIZE));
    CHECK_EQ(vmlck(), base);
}

static void onfault(void)
{
    char *p = map_anon(8 * PAGE_SIZE);
    long base = vmlck();
    if (sys_mlock2(p, 8 * PAGE_SIZE, MLOCK_ONFAULT) != 0) {
        CHECK(!on_pagoda()); /* QEMU 7.2's user mode: ENOSYS */
        CHECK_OK(munmap(p, 8 * PAGE_SIZE));
        return;
    }
    CHECK_EQ(vmlck(), base + 32);
    CHECK_EQ(resident(p, 8), 0);
    p[3 * PAGE_SIZE] = 1;
    CHECK_EQ(resident(p, 8), 1);
    /* A plain mlock of it faults everything in. */
    CHECK_OK(mlock(p, 8 * PAGE_SIZE));
    CHECK_EQ(resident(p, 8), 8);
    CHECK_EQ(vmlck(), base + 32);
    CHECK_OK(munmap(p, 8 * PAGE_SIZE));
    CHECK_EQ(vmlck(), base);
}

/* On pagoda, /proc/meminfo's Mlocked and Unevictable follow the locked resident pages. */
static void meminfo_counts(void)
{
    if (!on_pagoda())
        return;
    long mlocked = meminfo_kb("Mlocked");
    CHECK(mlocked >= 0);
    CHECK_EQ(meminfo_kb("Unevictable"), mlocked);
    char *p = map_anon(64 * PAGE_SIZE);
    CHECK_OK(mlock(p, 64 * PAGE_SIZE));
    CHECK_EQ(meminfo_kb("Mlocked"), mlocked + 256);
    CHECK_OK(munmap(p + 32 * PAGE_SIZE, 16 * PAGE_SIZE));
    CHECK_EQ(meminfo_kb("Mlocked"), mlocked + 192);
    CHECK_OK(munlock(p, 16 * PAGE_SIZE));
    CHECK_EQ(meminfo_kb("Mlocked"), mlocked + 128);
    /* A locked child's pages come back when it exits. */
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        char *q = map_anon(32 * PAGE_SIZE);
        if (mlock(q, 32 * PAGE_SIZE) != 0 || meminfo_kb("Mlocked") != mlocked + 256)
            _exit(1);
        _exit(0);
    }
    int status;
    CHECK_OK(waitpid(pid, &status, 0));
    CHECK_EXITED(status, 0);
    CHECK_EQ(meminfo_kb("Mlocked"), mlocked + 128);
    CHECK_OK(munmap(p, 64 * PAGE_SIZE));
    CHECK_EQ(meminfo_kb("Mlocked"), mlocked);
}

/* Neither a lock nor mlockall(MCL_FUTURE) passes to a child; execve ends both. */
static void fork_and_exec(void)
{
    char *p = map_anon(4 * PAGE_SIZE);
    CHECK_OK(mlock(p, 4 * PAGE_SIZE));
    long locked = vmlck();
    CHECK(locked >= 16);
    /* Linux user mode would lock QEMU's own future memory too: on fault only there. */
    CHECK_OK(mlockall(on_pagoda() ? MCL_FUTURE : MCL_FUTURE | MCL_ONFAULT));
    char *q = map_anon(2 * PAGE_SIZE);
    CHECK(vmlck() >= locked + 8);
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        if (vmlck() != 0)
            _exit(2);
        char *c = map_anon(2 * PAGE_SIZE);
        touch_pages(c, 2 * PAGE_SIZE, 1);
        if (vmlck() != 0)
            _exit(3);
        _exit(0);
    }
    int status;
    CHECK_OK(waitpid(pid, &status, 0));
    CHECK_EXITED(status, 0);
    /* execve of a program that checks nothing is locked, from a locked process. */
    pid = CHECK_OK(fork());
    if (pid == 0) {
        CHECK_OK(mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT));
        char *const argv[] = {"probe", "unlocked", NULL};
        execve(PROBE_PATH, argv, (char *const[]){NULL});
        _exit(4);
    }
    CHECK_OK(waitpid(pid, &status, 0));
    CHECK_EXITED(status, 0);
    CHECK_OK(munlockall());
    CHECK_EQ(vmlck(), 0);
    CHECK_OK(munmap(q, 2 * PAGE_SIZE));
    CHECK_OK(munmap(p, 4 * PAGE_SIZE));
}

/* mlockall(MCL_CURRENT) faults every mapping in; on pagoda only (see the top). */
static void lock_everything(void)
{
    if (!on_pagoda())
        return;
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        char *p = map_anon(16 * PAGE_SIZE);
        CHECK_EQ(resident(p, 16), 0);
        CHECK_OK(mlockall(MCL_CURRENT));
        CHECK_EQ(resident(p, 16), 16);
        CHECK(vmlck() >= 64);
        /* Not MCL_FUTURE: a new mapping is not locked. */
        long locked = vmlck();
        char *q = map_anon(4 * PAGE_SIZE);
        CHECK_EQ(vmlck(), locked);
        CHECK_EQ(resident(q, 4), 0);
        /* MCL_FUTURE: the next one is, and the heap grows locked. */
        CHECK_OK(mlockall(MCL_FUTURE));
        char *r = map_anon(4 * PAGE_SIZE);
        CHECK_EQ(vmlck(), locked + 16);
        CHECK_EQ(resident(r, 4), 4);
        char *brk0 = sbrk(0);
        CHECK(sbrk(8 * PAGE_SIZE) != (void *)-1);
        CHECK(vmlck() >= locked + 16 + 32);
        (void)brk0;
        CHECK_OK(munlockall());
        CHECK_EQ(vmlck(), 0);
        _exit(0);
    }
    int status;
    CHECK_OK(waitpid(pid, &status, 0));
    CHECK_EXITED(status, 0);
}

/* Root has CAP_IPC_LOCK: RLIMIT_MEMLOCK does not bound it, even at 0. */
static void rlimit_for_root(void)
{
    struct rlimit saved, zero = {0, 0};
    CHECK_OK(getrlimit(RLIMIT_MEMLOCK, &saved));
    if (on_pagoda())
        CHECK_EQ(saved.rlim_cur, 8 * MIB); /* Linux 6.1's default */
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        zero.rlim_max = saved.rlim_max;
        CHECK_OK(setrlimit(RLIMIT_MEMLOCK, &zero));
        char *p = map_anon(4 * PAGE_SIZE);
        CHECK_OK(mlock(p, 4 * PAGE_SIZE));
        char *l = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
        CHECK(l != MAP_FAILED);
        CHECK_OK(setrlimit(RLIMIT_MEMLOCK, &saved));
        /* Root (CAP_SYS_RESOURCE) may raise a hard limit again (on pagoda: the host
         * that runs the Linux check may withhold the capability). */
        struct rlimit low = {PAGE_SIZE, PAGE_SIZE};
        CHECK_OK(setrlimit(RLIMIT_MEMLOCK, &low));
        CHECK_OK_LINUX(setrlimit(RLIMIT_MEMLOCK, &saved));
        _exit(0);
    }
    int status;
    CHECK_OK(waitpid(pid, &status, 0));
    CHECK_EXITED(status, 0);
}

int main(void)
{
    long mem_free = meminfo_kb("MemFree");
    CHECK_EQ(vmlck(), 0);
    errors();
    lock_and_split();
    prot_none_and_map_locked();
    onfault();
    meminfo_counts();
    fork_and_exec();
    lock_everything();
    rlimit_for_root();
    CHECK_EQ(vmlck(), 0);
    CHECK_MEMFREE_BACK(mem_free);
    return 0;
}
