/*
 * job_control - stopping and continuing a process: SIGSTOP and SIGTSTP (default action)
 * stop it (it no longer runs; /proc/PID/stat says T), wait4 with WUNTRACED reports the
 * stop once, SIGCONT continues it (WCONTINUED), waitid reports both with their si_code,
 * the parent gets SIGCHLD for them (not with SA_NOCLDSTOP), SIGKILL ends a stopped
 * process, and a handler for SIGTSTP runs instead of the stop.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static volatile sig_atomic_t chld_code;

static void on_chld(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    chld_code = si->si_code;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The state letter of `pid` in /proc/PID/stat. */
static char state_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = CHECK_OK(open(path, O_RDONLY));
    long n = CHECK_OK(read(fd, buf, sizeof buf - 1));
    buf[n] = 0;
    CHECK_OK(close(fd));
    char *close = strrchr(buf, ')');
    CHECK(close != NULL);
    return close[2];
}

/* A child that counts in shared memory forever. */
static pid_t counter(volatile long *count)
{
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        for (;;)
            (*count)++;
    }
    while (*count == 0)
        sleep_ms(1);
    return pid;
}

/* Stops `pid` with `sig` and checks the stop as wait4 and /proc report it. */
static void check_stop(pid_t pid, int sig, volatile long *count)
{
    int status;
    chld_code = 0;
    CHECK_OK(kill(pid, sig));
    CHECK_EQ(waitpid(pid, &status, WUNTRACED), pid);
    CHECK(WIFSTOPPED(status));
    CHECK_EQ(WSTOPSIG(status), sig);
    /* Reported once. */
    CHECK_EQ(waitpid(pid, &status, WUNTRACED | WNOHANG), 0);
    CHECK_EQ(state_of(pid), 'T');
    long before = *count;
    sleep_ms(50);
    CHECK_EQ(*count, before);
    for (int i = 0; i < 100 && chld_code == 0; i++)
        sleep_ms(1);
    CHECK_EQ(chld_code, CLD_STOPPED);
}

static void check_continue(pid_t pid, volatile long *count)
{
    int status;
    chld_code = 0;
    long before = *count;
    CHECK_OK(kill(pid, SIGCONT));
    CHECK_EQ(waitpid(pid, &status, WCONTINUED), pid);
    CHECK(WIFCONTINUED(status));
    for (int i = 0; i < 1000 && *count == before; i++)
        sleep_ms(1);
    CHECK(*count != before);
    for (int i = 0; i < 100 && chld_code == 0; i++)
        sleep_ms(1);
    CHECK_EQ(chld_code, CLD_CONTINUED);
}

static volatile sig_atomic_t got_tstp;

static void on_tstp(int sig)
{
    (void)sig;
    got_tstp = 1;
}

int main(void)
{
    volatile long *count = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(count != MAP_FAILED);
    struct sigaction sa = {.sa_sigaction = on_chld, .sa_flags = SA_SIGINFO | SA_RESTART};
    CHECK_OK(sigaction(SIGCHLD, &sa, NULL));

    pid_t pid = counter(count);
    check_stop(pid, SIGSTOP, count);
    check_continue(pid, count);
    check_stop(pid, SIGTSTP, count);
    check_continue(pid, count);

    /* waitid: the stop and the continuation with their codes. */
    CHECK_OK(kill(pid, SIGSTOP));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PID, pid, &si, WSTOPPED));
    CHECK_EQ(si.si_code, CLD_STOPPED);
    CHECK_EQ(si.si_status, SIGSTOP);
    CHECK_OK(kill(pid, SIGCONT));
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PID, pid, &si, WCONTINUED));
    CHECK_EQ(si.si_code, CLD_CONTINUED);

    /* SIGKILL ends a stopped process. */
    CHECK_OK(kill(pid, SIGSTOP));
    int status;
    CHECK_EQ(waitpid(pid, &status, WUNTRACED), pid);
    CHECK(WIFSTOPPED(status));
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* SA_NOCLDSTOP: no SIGCHLD for a stop. */
    *count = 0;
    pid = counter(count);
    sa.sa_flags |= SA_NOCLDSTOP;
    CHECK_OK(sigaction(SIGCHLD, &sa, NULL));
    chld_code = 0;
    CHECK_OK(kill(pid, SIGSTOP));
    CHECK_EQ(waitpid(pid, &status, WUNTRACED), pid);
    sleep_ms(50);
    /* (QEMU's user mode delivers it anyway: its own host handler has no SA_NOCLDSTOP.) */
    if (on_pagoda())
        CHECK_EQ(chld_code, 0);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(waitpid(pid, &status, 0), pid);

    /* A SIGTSTP handler runs instead of the default stop. */
    struct sigaction st = {.sa_handler = on_tstp};
    CHECK_OK(sigaction(SIGTSTP, &st, NULL));
    CHECK_OK(raise(SIGTSTP));
    CHECK(got_tstp);
    return 0;
}
