/*
 * check.h - the tiny shared library of pagoda's user programs.
 *
 * Every test is a static riscv64 Linux program that exits 0 when everything it checks
 * holds and exits 1 after printing `file:line: what failed` to stderr otherwise. The
 * same binary runs first under qemu-riscv64-static (Linux, the reference) and then on
 * pagoda, so a check may only assert exact kernel counters (MemFree, VmRSS) when
 * on_pagoda() says the /proc files describe the kernel under test rather than the host.
 *
 * Nothing here allocates memory: the helpers read /proc with open/read into stack
 * buffers, so measuring MemFree does not itself move the program break.
 */
#ifndef PAGODA_CHECK_H
#define PAGODA_CHECK_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The page size of Sv39 and of the auxiliary vector's AT_PAGESZ. */
#define PAGE_SIZE 4096UL
/* Bytes in one MiB, for sizes written as `16 * MIB`. */
#define MIB (1024UL * 1024UL)

/* The initramfs files the tests rely on (laid out by user/Makefile). */
#define PROBE_PATH "/libexec/probe"      /* helper program, see user/libexec/probe.c */
#define DATA_HELLO_PATH "/data/hello.txt" /* contains exactly DATA_HELLO_TEXT */
#define DATA_HELLO_TEXT "hello, pagoda\n"
#define DATA_BIG_PATH "/data/big.bin" /* read-only, DATA_BIG_SIZE bytes of data_byte(i) */
#define DATA_BIG_SIZE (5 * PAGE_SIZE + 123)
#define DATA_NOTELF_PATH "/data/notelf" /* executable-mode text file: execve gives ENOEXEC */
#define DATA_DIR_PATH "/data/dir"       /* directory holding exactly files a, b and c */

/*
 * How far MemFree may stay below its baseline after a workload has released everything
 * (kB). Small enough that leaking one page per cycle of any 200-cycle loop fails.
 */
#define MEMFREE_SLACK_KB 64
/* How often CHECK_MEMFREE_BACK reads MemFree, 10 ms apart, before it fails (2 s). */
#define MEMFREE_SETTLE_TRIES 200

/* Report a failed check at file:line (printf-style message) and exit(1). */
_Noreturn void check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The symbolic name of an errno value ("EINVAL"), or "?" for an unknown value. */
const char *errno_name(int err);

/* Fails unless `cond` is true. */
#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond))                                                                    \
            check_fail(__FILE__, __LINE__, "CHECK(%s) failed (errno %d %s)", #cond,     \
                       errno, errno_name(errno));                                       \
    } while (0)

/* Fails unless the integers (or pointers) `a` and `b` are equal; prints both values. */
#define CHECK_EQ(a, b)                                                                  \
    do {                                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);                             \
        if (a_ != b_)                                                                   \
            check_fail(__FILE__, __LINE__,                                              \
                       "CHECK_EQ(%s, %s) failed: %lld (0x%llx) != %lld (0x%llx)", #a,   \
                       #b, a_, (unsigned long long)a_, b_, (unsigned long long)b_);     \
    } while (0)

/*
 * Fails unless `call` fails the Linux way: returns -1 (or MAP_FAILED) with errno `err`.
 */
#define CHECK_ERR(call, err)                                                            \
    do {                                                                                \
        errno = 0;                                                                      \
        long r_ = (long)(call);                                                         \
        int e_ = errno;                                                                 \
        if (r_ != -1 || e_ != (err))                                                    \
            check_fail(__FILE__, __LINE__,                                              \
                       "%s: returned %ld with errno %d (%s), expected -1 with %s (%d)", \
                       #call, r_, e_, errno_name(e_), #err, (err));                     \
    } while (0)

/*
 * For the cases where QEMU's user-mode emulation (our stand-in for Linux) answers
 * differently from real Linux 6.1 (listed in docs/user-programs.md): on pagoda, the
 * same as CHECK_ERR(call, err) with the real-Linux errno; elsewhere the call is made
 * and its result ignored.
 */
#define CHECK_ERR_LINUX(call, err)                                                      \
    do {                                                                                \
        if (on_pagoda())                                                                \
            CHECK_ERR(call, err);                                                       \
        else                                                                            \
            (void)(call);                                                               \
    } while (0)

/* As CHECK_ERR_LINUX, for calls that succeed on Linux 6.1 but not under QEMU. */
#define CHECK_OK_LINUX(call)                                                            \
    do {                                                                                \
        if (on_pagoda())                                                                \
            (void)CHECK_OK(call);                                                       \
        else                                                                            \
            (void)(call);                                                               \
    } while (0)

/* Evaluates `call`, fails if it returned -1 (or MAP_FAILED), else yields its value. */
#define CHECK_OK(call)                                                                  \
    ({                                                                                  \
        errno = 0;                                                                      \
        long r_ = (long)(call);                                                         \
        if (r_ == -1)                                                                   \
            check_fail(__FILE__, __LINE__, "%s failed with errno %d (%s)", #call,      \
                       errno, errno_name(errno));                                       \
        r_;                                                                             \
    })

/* Fails unless wait status `status` says the child exited with code `code`. */
#define CHECK_EXITED(status, code)                                                      \
    do {                                                                                \
        int s_ = (status);                                                              \
        if (!exited_with(s_, (code)))                                                   \
            check_fail(__FILE__, __LINE__, "%s: child %s, expected exit status %d",     \
                       #status, describe_status(s_), (code));                           \
    } while (0)

/* Fails unless wait status `status` says the child was killed by signal `sig`. */
#define CHECK_SIGNALED(status, sig)                                                     \
    do {                                                                                \
        int s_ = (status);                                                              \
        if (!killed_by(s_, (sig)))                                                      \
            check_fail(__FILE__, __LINE__, "%s: child %s, expected killed by signal %d", \
                       #status, describe_status(s_), (sig));                            \
    } while (0)

/* True when wait status `status` is a normal exit with code `code`. */
int exited_with(int status, int code);
/* True when wait status `status` is death by signal `sig`. */
int killed_by(int status, int sig);
/* "exit status N" or "killed by signal S" (static buffer, for messages). */
const char *describe_status(int status);

/* True when running on pagoda: uname().release contains "pagoda". */
int on_pagoda(void);

/* Value of the `key:` line of /proc/meminfo in kB, or -1 when absent or unreadable. */
long meminfo_kb(const char *key);
/* MemFree in kB once it holds still: read every 10 ms until two readings agree (at most
 * MEMFREE_SETTLE_TRIES). Reading /proc/meminfo asks idle harts to give back their cached
 * heap objects, which they do a moment later: a single reading right before a measured
 * step can be followed by such a return and make the step look smaller. Elsewhere one
 * reading (of the host's memory, which tests do not check). */
long settled_memfree_kb(void);
/* The value of `key:` in any /proc file of `key: value kB` lines, or -1. */
long proc_field_kb(const char *path, const char *key);
/* Value of the `key:` line of /proc/self/status in kB, or -1 when absent or unreadable. */
long self_status_kb(const char *key);

/*
 * On pagoda only: fails unless MemFree plus SwapCached comes back to at least
 * `baseline_kb - MEMFREE_SLACK_KB` within MEMFREE_SETTLE_TRIES reads 10 ms apart.
 * Call after every child of the workload has been reaped and everything it mapped has
 * been unmapped. Elsewhere the file describes the host, so this checks nothing.
 */
#define CHECK_MEMFREE_BACK(baseline_kb)                                                 \
    check_memfree_back(__FILE__, __LINE__, (baseline_kb))
void check_memfree_back(const char *file, int line, long baseline_kb);

/*
 * Fails unless the NULL-terminated environment `envp` holds exactly the `n` strings of
 * `want`: in that order on pagoda (as Linux keeps them); in any order elsewhere,
 * because QEMU's user mode hands the environment to the program reversed.
 */
#define CHECK_ENVP(envp, want, n) check_envp(__FILE__, __LINE__, (envp), (want), (n))
void check_envp(const char *file, int line, char *const *envp, const char *const *want,
                size_t n);

/* fork(); the child runs fn(arg) then _exit(0); returns the child's wait status. */
int run_in_child(void (*fn)(void *), void *arg);

/*
 * Like run_in_child, but the child closes stderr first: for children that are expected
 * to die of a fault (QEMU's user mode would otherwise print a note about the signal).
 */
int run_faulting_child(void (*fn)(void *), void *arg);

/* fork() + execve(path, argv, envp) + wait4; returns the wait status. */
int spawn_wait(const char *path, char *const argv[], char *const envp[]);

/* The byte at offset `off` of DATA_BIG_PATH (the Makefile generates the same formula). */
static inline uint8_t data_byte(size_t off)
{
    return (uint8_t)(((uint32_t)off * 2654435761u) >> 24);
}

/* A xorshift64 pseudo-random generator: deterministic workloads from a fixed seed. */
static inline uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/*
 * Spin (with sched_yield) until *word == value; fails after WAIT_LIMIT_NS. For
 * processes that synchronise through a MAP_SHARED anonymous page (there is no pipe).
 */
#define WAIT_LIMIT_NS (20ULL * 1000 * 1000 * 1000)
#define WAIT_UNTIL(word, value) wait_until(__FILE__, __LINE__, (word), (value))
void wait_until(const char *file, int line, volatile int *word, int value);

/* mmap of `len` bytes of private anonymous read-write memory; fails the test if refused. */
void *map_anon(size_t len);
/* The same, starting at a multiple of `align` (a power of two): 2 MiB for huge pages on
 * any kernel (more is mapped, then the ends are unmapped). */
void *map_anon_aligned(size_t len, size_t align);

/* Monotonic clock in nanoseconds (clock_gettime(CLOCK_MONOTONIC)). */
uint64_t now_ns(void);

/* Touch (write one byte to) every page of [p, p + len). */
void touch_pages(void *p, size_t len, uint8_t value);

#endif
