/*
 * kill_signals - what a signal does to a process that has no handler for it: a fatal
 * signal (SIGTERM, SIGUSR1) ends it and the parent sees that signal in wait4; a signal
 * ignored by default (SIGCHLD, SIGWINCH) or set to SIG_IGN does nothing. (Regression: the
 * first cut of pagoda reported every kill as SIGKILL and let SIGCHLD kill.) A process
 * killed while sleeping leaves nothing behind.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* A child that runs until a signal ends it; with `ignore`, it ignores SIGUSR1 first. */
static pid_t spawn_spinner(int ignore)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (ignore)
            signal(SIGUSR1, SIG_IGN);
        for (;;)
            sched_yield();
    }
    return pid;
}

/* Sends `sig` to a fresh spinner and checks the status that ends it. */
static void fatal(int sig)
{
    int status;
    pid_t pid = spawn_spinner(0);
    CHECK_OK(kill(pid, sig));
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_SIGNALED(status, sig);
}

int main(void)
{
    fatal(SIGTERM);
    fatal(SIGUSR1);
    fatal(SIGKILL);

    /* Ignored by default, then ignored explicitly: the child survives both, and the
     * SIGTERM afterwards is what ends it. */
    int status;
    pid_t pid = spawn_spinner(1);
    CHECK_OK(kill(pid, SIGCHLD));
    CHECK_OK(kill(pid, SIGWINCH));
    for (int i = 0; i < 50; i++)
        sched_yield();
    CHECK_EQ(waitpid(pid, &status, WNOHANG), 0);
    /* Let the child install SIG_IGN before SIGUSR1 is sent. */
    usleep(20000);
    CHECK_OK(kill(pid, SIGUSR1));
    for (int i = 0; i < 50; i++)
        sched_yield();
    CHECK_EQ(waitpid(pid, &status, WNOHANG), 0);
    CHECK_OK(kill(pid, SIGTERM));
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_SIGNALED(status, SIGTERM);

    CHECK_ERR(kill(pid, 0), ESRCH);

    /* A killed sleeper is gone for good (regression: pagoda kept every task killed in a
     * long nanosleep on its sleeper list, with its kernel stack, until the deadline). */
    long baseline = meminfo_kb("MemFree");
    for (int i = 0; i < 100; i++) {
        pid_t sleeper = fork();
        CHECK(sleeper >= 0);
        if (sleeper == 0) {
            struct timespec forever = {.tv_sec = 1000000, .tv_nsec = 0};
            syscall(SYS_nanosleep, &forever, NULL);
            _exit(1);
        }
        usleep(2000); /* let the child reach its sleep */
        CHECK_OK(kill(sleeper, SIGKILL));
        CHECK_EQ(waitpid(sleeper, &status, 0), sleeper);
        CHECK_SIGNALED(status, SIGKILL);
    }
    CHECK_MEMFREE_BACK(baseline);
    CHECK_ERR(kill(getpid(), 65), EINVAL);
    return 0;
}
