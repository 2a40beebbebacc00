/*
 * priv_efault - the kernel stays private (issue 13, item 4): every system call that
 * takes a buffer, given a kernel-half pointer (direct map, kernel stacks, kernel image),
 * fails with EFAULT, and writes nothing there.
 *
 * "Nothing there" is observed through the direct map: physical page P of RAM is also at
 * 0xffffffc000000000 + P, so a kernel that wrote through a kernel pointer a user passed
 * would write into some frame of RAM. The test fills 8 MiB of its own memory with a
 * pattern, then offers every page of the direct map of RAM (and of the first 256 MiB
 * above it) to the calls that write to a buffer, and checks that its pattern, its open
 * file's offset and the kernel (which would have crashed) are intact.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define KDIRECT 0xffffffc000000000UL
#define RAM_BASE 0x80000000UL

/* Kernel-half pointers of every region, some unaligned. */
static const uint64_t kptrs[] = {
    0xffffffc000000000UL, 0xffffffc010000000UL, 0xffffffc080000000UL,
    0xffffffc080200000UL, 0xffffffc080200008UL, 0xffffffc081000003UL,
    0xffffffdffffff000UL, 0xffffffe000000000UL, 0xffffffe000001000UL,
    0xffffffe00000fff8UL, 0xffffffe000011000UL, 0xffffffff80000000UL,
    0xffffffff80001000UL, 0xffffffff80100004UL, 0xfffffffffffff000UL,
    0xfffffffffffffff8UL, 0xffffffbffffffff0UL, /* straddles into the direct map */
};
#define NK (sizeof kptrs / sizeof kptrs[0])

#define PATTERN_SIZE (8 * MIB)
static uint8_t *pattern;

static uint8_t pattern_byte(size_t i)
{
    return (uint8_t)(i * 131 + (i >> 12) * 7 + 0x5b);
}

static void check_pattern(void)
{
    for (size_t i = 0; i < PATTERN_SIZE; i++)
        if (pattern[i] != pattern_byte(i))
            check_fail(__FILE__, __LINE__, "pattern byte %zu changed: %#x, expected %#x", i,
                       pattern[i], pattern_byte(i));
}

/* Every call that takes a buffer, with kernel pointer k in the buffer's place. */
static void every_call(uint64_t k, int data_fd, int dir_fd)
{
    struct iovec bad_base = {.iov_base = (void *)k, .iov_len = 16};
    char path[] = DATA_HELLO_PATH;

    /* Writers: the kernel would store into k. */
    CHECK_ERR(syscall(SYS_read, data_fd, k, 64), EFAULT);
    CHECK_ERR(syscall(SYS_pread64, data_fd, k, 64, 0), EFAULT);
    CHECK_ERR(syscall(SYS_readv, data_fd, &bad_base, 1), EFAULT);
    CHECK_ERR(syscall(SYS_readv, data_fd, k, 1), EFAULT);
    CHECK_ERR(syscall(SYS_getdents64, dir_fd, k, 4096), EFAULT);
    CHECK_ERR(syscall(SYS_newfstatat, AT_FDCWD, path, k, 0), EFAULT);
    CHECK_ERR(syscall(SYS_fstat, data_fd, k), EFAULT);
    CHECK_ERR(syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", k, 64), EFAULT);
    CHECK_ERR(syscall(SYS_getcwd, k, 4096), EFAULT);
    CHECK_ERR(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, k), EFAULT);
    CHECK_ERR(syscall(SYS_getrlimit, RLIMIT_STACK, k), EFAULT);
    CHECK_ERR(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, k), EFAULT);
    /* QEMU 7.2 ignores the failed store and returns 0 (Linux: EFAULT). */
    CHECK_ERR_LINUX(syscall(SYS_clock_getres, CLOCK_MONOTONIC, k), EFAULT);
    CHECK_ERR(syscall(SYS_gettimeofday, k, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_uname, k), EFAULT);
    CHECK_ERR(syscall(SYS_getrandom, k, 16, 0), EFAULT);
    CHECK_ERR(syscall(SYS_sysinfo, k), EFAULT);
    CHECK_ERR(syscall(SYS_rt_sigaction, SIGUSR1, NULL, k, 8), EFAULT);
    CHECK_ERR(syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, k, 8), EFAULT);
    CHECK_ERR(syscall(SYS_sigaltstack, NULL, k), EFAULT);
    if (on_pagoda()) /* under QEMU stdout is not a terminal: ENOTTY comes first */
        CHECK_ERR(syscall(SYS_ioctl, 1, 0x5413 /* TIOCGWINSZ */, k), EFAULT);

    /* Readers: the kernel would load from k (paths, structures, data). */
    CHECK_ERR(syscall(SYS_write, 1, k, 16), EFAULT);
    CHECK_ERR(syscall(SYS_writev, 1, &bad_base, 1), EFAULT);
    CHECK_ERR(syscall(SYS_writev, 1, k, 1), EFAULT);
    CHECK_ERR(syscall(SYS_openat, AT_FDCWD, k, O_RDONLY), EFAULT);
    CHECK_ERR(syscall(SYS_newfstatat, AT_FDCWD, k, pattern, 0), EFAULT);
    CHECK_ERR(syscall(SYS_readlinkat, AT_FDCWD, k, pattern, 64), EFAULT);
    CHECK_ERR(syscall(SYS_chdir, k), EFAULT);
    CHECK_ERR(syscall(SYS_faccessat, AT_FDCWD, k, R_OK), EFAULT);
    CHECK_ERR(syscall(SYS_execve, k, NULL, NULL), EFAULT);
    char *argv_bad[] = {"probe", (char *)k, NULL};
    CHECK_ERR(syscall(SYS_execve, PROBE_PATH, k, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_execve, PROBE_PATH, argv_bad, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_execve, PROBE_PATH, argv_bad + 2, k), EFAULT);
    /* QEMU 7.2 ignores the failed read and sleeps for whatever its stack held: not
     * even called there. */
    if (on_pagoda())
        CHECK_ERR(syscall(SYS_nanosleep, k, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, k, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_rt_sigaction, SIGUSR1, k, NULL, 8), EFAULT);
    CHECK_ERR(syscall(SYS_rt_sigprocmask, SIG_BLOCK, k, NULL, 8), EFAULT);
    /* Found by this test on the kernel before signals landed (sigaltstack ignored a new
     * stack unread and returned 0); fixed on main by the signal work. */
    CHECK_ERR(syscall(SYS_sigaltstack, k, NULL), EFAULT);
    /* Found by this test (issue 13): pagoda refused any new limit with EPERM before
     * reading it; Linux reads it first (EFAULT). Fixed. */
    CHECK_ERR(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, k, NULL), EFAULT);
}

/* wait4 storing a status or rusage at a kernel pointer: EFAULT, the child reaped. */
static void wait_into(uint64_t k, int rusage)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(7);
    int status;
    if (rusage)
        CHECK_ERR(syscall(SYS_wait4, pid, &status, 0, k), EFAULT);
    else
        CHECK_ERR(syscall(SYS_wait4, pid, k, 0, NULL), EFAULT);
    CHECK_ERR(wait4(pid, &status, 0, NULL), ECHILD);
}

/* A child that asks for its tid to be cleared (and its robust list walked) at a kernel
 * address when it exits: it exits normally and nothing is written. */
static void exit_with_kernel_tid(void *arg)
{
    uint64_t k = *(uint64_t *)arg;
    syscall(SYS_set_tid_address, k);
    syscall(SYS_set_robust_list, k, 24);
}

int main(void)
{
    pattern = map_anon(PATTERN_SIZE);
    for (size_t i = 0; i < PATTERN_SIZE; i++)
        pattern[i] = pattern_byte(i);
    int data_fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    int dir_fd = CHECK_OK(open(DATA_DIR_PATH, O_RDONLY | O_DIRECTORY));
    CHECK_EQ(lseek(data_fd, 100, SEEK_SET), 100);

    for (size_t i = 0; i < NK; i++) {
        every_call(kptrs[i], data_fd, dir_fd);
        wait_into(kptrs[i], 0);
        wait_into(kptrs[i], 1);
        CHECK_EXITED(run_in_child(exit_with_kernel_tid, (void *)&kptrs[i]), 0);
    }

    /*
     * Every page of the direct map of RAM (and beyond, up to 256 MiB past the end of
     * RAM, in case the machine has more), offered to the calls that store: reads of a
     * file, random bytes, a time, the system name.
     */
    struct sysinfo si;
    CHECK_OK(sysinfo(&si));
    uint64_t ram = on_pagoda() ? (uint64_t)si.totalram * si.mem_unit : 128 * MIB;
    uint64_t span = ram + 256 * MIB;
    for (uint64_t off = 0; off < span; off += PAGE_SIZE) {
        uint64_t k = KDIRECT + RAM_BASE + off + ((off >> 12) % 8) * 8;
        if (syscall(SYS_read, data_fd, k, 32) != -1 || errno != EFAULT)
            check_fail(__FILE__, __LINE__, "read into %#llx: not EFAULT (errno %s)",
                       (unsigned long long)k, errno_name(errno));
        if (syscall(SYS_getrandom, k, 32, 0) != -1 || errno != EFAULT)
            check_fail(__FILE__, __LINE__, "getrandom into %#llx: not EFAULT",
                       (unsigned long long)k);
        if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, k) != -1 || errno != EFAULT)
            check_fail(__FILE__, __LINE__, "clock_gettime into %#llx: not EFAULT",
                       (unsigned long long)k);
        if (syscall(SYS_uname, k) != -1 || errno != EFAULT)
            check_fail(__FILE__, __LINE__, "uname into %#llx: not EFAULT",
                       (unsigned long long)k);
    }

    /* Nothing written to our frames; the failed reads consumed nothing. */
    check_pattern();
    CHECK_EQ(lseek(data_fd, 0, SEEK_CUR), 100);
    uint8_t b;
    CHECK_EQ(read(data_fd, &b, 1), 1);
    CHECK_EQ(b, data_byte(100));
    CHECK_OK(close(data_fd));
    CHECK_OK(close(dir_fd));
    return 0;
}
