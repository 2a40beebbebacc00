/*
 * sys_info - uname, prlimit64, getrandom, rt_sigprocmask and rt_sigaction: the values
 * static glibc start-up and ordinary programs depend on.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "check.h"

static void handler(int sig)
{
    (void)sig;
}

int main(void)
{
    /* uname: a Linux riscv64 machine; on pagoda the release names it. */
    struct utsname u;
    CHECK_OK(uname(&u));
    CHECK(strcmp(u.sysname, "Linux") == 0);
    CHECK(strcmp(u.machine, "riscv64") == 0);
    CHECK(u.release[0] >= '1' && u.release[0] <= '9');
    if (on_pagoda())
        CHECK(strcmp(u.release, "6.1.0-pagoda") == 0);

    /* prlimit64 on ourselves (pid 0) and by pid: the stack limit is a sane size. */
    struct rlimit64 lim, lim2;
    CHECK_OK(syscall(SYS_prlimit64, 0, RLIMIT_STACK, NULL, &lim));
    CHECK(lim.rlim_cur >= 128 * 1024);
    CHECK(lim.rlim_cur <= lim.rlim_max);
    CHECK_OK(syscall(SYS_prlimit64, getpid(), RLIMIT_STACK, NULL, &lim2));
    CHECK_EQ(lim.rlim_cur, lim2.rlim_cur);
    CHECK_OK(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &lim));
    CHECK(lim.rlim_cur >= 64);
    CHECK_ERR(syscall(SYS_prlimit64, 0, 1000, NULL, &lim), EINVAL);
    CHECK_OK(getrlimit(RLIMIT_STACK, (struct rlimit *)&lim));

    /* getrandom fills the buffer; two draws of 32 bytes differ. */
    unsigned char r1[32], r2[32];
    memset(r1, 0, sizeof r1);
    memset(r2, 0, sizeof r2);
    CHECK_EQ(getrandom(r1, sizeof r1, 0), sizeof r1);
    CHECK_EQ(getrandom(r2, sizeof r2, GRND_NONBLOCK), sizeof r2);
    CHECK(memcmp(r1, r2, sizeof r1) != 0);
    CHECK_EQ(getrandom(r1, 0, 0), 0);
    CHECK_ERR(getrandom(r1, sizeof r1, 0x1000), EINVAL);

    /* Signal mask and actions: the calls succeed and report what was set. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, &old));
    CHECK_OK(sigprocmask(SIG_SETMASK, NULL, &old));
    CHECK(sigismember(&old, SIGUSR1));
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &set, NULL));
    CHECK_OK(sigprocmask(SIG_SETMASK, NULL, &old));
    CHECK(!sigismember(&old, SIGUSR1));
    CHECK_ERR(syscall(SYS_rt_sigprocmask, 99, &set, NULL, 8), EINVAL);

    struct sigaction sa, prev;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    CHECK_OK(sigaction(SIGUSR1, NULL, &prev));
    CHECK(prev.sa_handler == handler);
    sa.sa_handler = SIG_DFL;
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    CHECK_ERR(sigaction(SIGKILL, &sa, NULL), EINVAL);
    CHECK_ERR(sigaction(0, &sa, NULL), EINVAL);

    /* set_robust_list may be missing (glibc start-up accepts ENOSYS); nothing to check. */
    return 0;
}
