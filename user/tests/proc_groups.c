/*
 * proc_groups - the process plumbing a shell needs, as Linux behaves: process groups
 * and sessions (setpgid, getpgid, setsid, getsid and their errors), kill and wait4 on
 * a process group, waitpid(INT_MIN) = ESRCH, waitid (P_PID, P_PGID, P_ALL, WNOWAIT,
 * WNOHANG, si_code/si_status for exit and kill), rt_sigtimedwait (a blocked signal
 * taken with its sender, EAGAIN on timeout), setitimer/getitimer(ITIMER_REAL) with
 * SIGALRM once and periodically, and pselect6 on a pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* A child that waits to be killed, in process group `pgid` (0: its own; -1: ours). */
static pid_t sleeper(pid_t pgid)
{
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        if (pgid >= 0)
            CHECK_OK(setpgid(0, pgid));
        for (;;)
            pause();
    }
    if (pgid >= 0) {
        /* Both sides set it, as shells do, so that neither order races. */
        setpgid(pid, pgid == 0 ? pid : pgid);
    }
    return pid;
}

static void groups(void)
{
    pid_t me = getpid();
    pid_t a = sleeper(0); /* leads a new group */
    pid_t b = sleeper(a); /* joins it */
    pid_t c = sleeper(-1); /* stays in ours */
    CHECK_EQ(getpgid(a), a);
    CHECK_EQ(getpgid(b), a);
    CHECK_EQ(getpgid(c), getpgid(0));
    CHECK_EQ(getpgid(0), getpgrp());
    CHECK_ERR(getpgid(INT_MAX - 5), ESRCH);
    CHECK_ERR(setpgid(c, INT_MAX - 5), EPERM); /* no such group in our session */
    CHECK_ERR(setpgid(1, 1), ESRCH);           /* not our child */
    CHECK_ERR(setpgid(-1, 0), EINVAL);
    CHECK_ERR(waitpid(INT_MIN, NULL, 0), ESRCH);
    /* Nothing of group a has exited yet. */
    CHECK_EQ(waitpid(-a, NULL, WNOHANG), 0);
    /* kill(-pgid) reaches a and b, not c. */
    CHECK_OK(kill(-a, SIGTERM));
    int status, reaped = 0;
    for (int i = 0; i < 2; i++) {
        pid_t p = waitpid(-a, &status, 0);
        CHECK(p == a || p == b);
        CHECK_SIGNALED(status, SIGTERM);
        reaped++;
    }
    CHECK_EQ(reaped, 2);
    CHECK_ERR(waitpid(-a, NULL, 0), ECHILD);
    CHECK_EQ(waitpid(c, NULL, WNOHANG), 0);
    CHECK_ERR(kill(-a, SIGTERM), ESRCH); /* the group is gone */
    CHECK_OK(kill(c, SIGKILL));
    CHECK_EQ(waitpid(0, &status, 0), c); /* our own group */
    CHECK_SIGNALED(status, SIGKILL);
    CHECK_EQ(getpid(), me);
}

static void session(void *arg)
{
    (void)arg;
    pid_t me = getpid();
    CHECK(getsid(0) != me);
    CHECK_EQ(setsid(), me);
    CHECK_EQ(getsid(0), me);
    CHECK_EQ(getpgid(0), me);
    CHECK_ERR(setsid(), EPERM); /* already a group leader */
    /* A session leader cannot change its group. */
    CHECK_ERR(setpgid(0, 0), EPERM);
    /* A child of the leader is in its session and group. */
    pid_t child = CHECK_OK(fork());
    if (child == 0)
        _exit(getsid(0) == me && getpgid(0) == me ? 0 : 1);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_EXITED(status, 0);
}

static void wait_id(void)
{
    pid_t pid = CHECK_OK(fork());
    if (pid == 0)
        _exit(37);
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    /* WNOWAIT leaves it waitable. */
    CHECK_OK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
    CHECK_EQ(si.si_signo, SIGCHLD);
    CHECK_EQ(si.si_code, CLD_EXITED);
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(si.si_status, 37);
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_ALL, 0, &si, WEXITED));
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(si.si_status, 37);
    CHECK_ERR(waitid(P_PID, pid, &si, WEXITED), ECHILD);
    /* WNOHANG with a running child: 0, and si_pid 0. */
    pid = sleeper(-1);
    memset(&si, 0xff, sizeof si);
    CHECK_OK(waitid(P_PGID, (id_t)getpgid(0), &si, WEXITED | WNOHANG));
    CHECK_EQ(si.si_pid, 0);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_OK(waitid(P_PID, pid, &si, WEXITED));
    CHECK_EQ(si.si_code, CLD_KILLED);
    CHECK_EQ(si.si_status, SIGKILL);
    CHECK_ERR(waitid(P_ALL, 0, &si, 0), EINVAL); /* no event asked for */
}

static void timed_wait(void)
{
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK_OK(sigprocmask(SIG_BLOCK, &usr1, &old));
    CHECK_OK(kill(getpid(), SIGUSR1));
    siginfo_t si;
    struct timespec zero = {0, 0};
    CHECK_EQ(sigtimedwait(&usr1, &si, &zero), SIGUSR1);
    CHECK_EQ(si.si_signo, SIGUSR1);
    CHECK_EQ(si.si_code, SI_USER);
    CHECK_EQ(si.si_pid, getpid());
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    uint64_t t0 = now_ns();
    CHECK_ERR(sigtimedwait(&usr1, &si, &ten_ms), EAGAIN);
    CHECK(now_ns() - t0 >= 10 * 1000 * 1000);
    /* A child's signal wakes the wait. */
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        sleep_ms(20);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    CHECK_EQ(sigwaitinfo(&usr1, &si), SIGUSR1);
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(waitpid(pid, NULL, 0), pid);
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));
}

static volatile int alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void timers(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    CHECK_OK(sigaction(SIGALRM, &sa, NULL));
    struct itimerval it = {{0, 0}, {0, 30 * 1000}}, cur;
    CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
    CHECK_OK(getitimer(ITIMER_REAL, &cur));
    CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 &&
          cur.it_value.tv_usec <= 30 * 1000);
    uint64_t t0 = now_ns();
    while (!alarms && now_ns() - t0 < WAIT_LIMIT_NS)
        pause();
    CHECK_EQ(alarms, 1);
    CHECK(now_ns() - t0 >= 20 * 1000 * 1000);
    CHECK_OK(getitimer(ITIMER_REAL, &cur));
    CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0); /* disarmed */
    /* Periodic: every 10 ms until disarmed. */
    struct itimerval every = {{0, 10 * 1000}, {0, 10 * 1000}};
    CHECK_OK(setitimer(ITIMER_REAL, &every, NULL));
    while (alarms < 4 && now_ns() - t0 < WAIT_LIMIT_NS)
        pause();
    CHECK(alarms >= 4);
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK_OK(setitimer(ITIMER_REAL, &off, &cur));
    CHECK_EQ(cur.it_interval.tv_usec, 10 * 1000);
    int seen = alarms;
    sleep_ms(40);
    CHECK_EQ(alarms, seen);
    CHECK_EQ(alarm(0), 0);
}

static void select_pipe(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    /* Writable at once, not readable. */
    CHECK_EQ(pselect(p[1] + 1, &r, &w, NULL, &ten_ms, NULL), 1);
    CHECK(!FD_ISSET(p[0], &r));
    CHECK(FD_ISSET(p[1], &w));
    /* Nothing to read: times out. */
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    CHECK_EQ(pselect(p[0] + 1, &r, NULL, NULL, &ten_ms, NULL), 0);
    CHECK(!FD_ISSET(p[0], &r));
    CHECK_EQ(write(p[1], "x", 1), 1);
    FD_SET(p[0], &r);
    CHECK_EQ(pselect(p[0] + 1, &r, NULL, NULL, &ten_ms, NULL), 1);
    CHECK(FD_ISSET(p[0], &r));
    close(p[0]);
    close(p[1]);
    /* A closed descriptor: EBADF. */
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    CHECK_ERR(pselect(p[0] + 1, &r, NULL, NULL, &ten_ms, NULL), EBADF);
}

int main(void)
{
    groups();
    CHECK_EXITED(run_in_child(session, NULL), 0);
    wait_id();
    timed_wait();
    timers();
    select_pipe();
    return 0;
}
