/*
 * fork_wait - fork (clone with SIGCHLD) and wait4: every exit status 0..255, exit vs
 * exit_group, SIGKILL, WNOHANG, waiting for any child, ECHILD, kill's errors.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* A child that runs until it is killed. */
static pid_t spawn_spinner(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        for (;;)
            sched_yield();
    return pid;
}

int main(void)
{
    int status;

    /* No children yet. */
    CHECK_ERR(wait4(-1, &status, 0, NULL), ECHILD);
    CHECK_ERR(wait4(-1, &status, WNOHANG, NULL), ECHILD);

    /* Every exit status survives the trip to the parent. */
    for (int code = 0; code < 256; code++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(code);
        CHECK_EQ(wait4(pid, &status, 0, NULL), pid);
        CHECK(WIFEXITED(status));
        CHECK(!WIFSIGNALED(status));
        CHECK_EQ(WEXITSTATUS(status), code);
        CHECK_EQ(status, code << 8);
    }
    /* Only the low 8 bits of the exit code count. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(256 + 7);
    CHECK_EQ(wait4(pid, &status, 0, NULL), pid);
    CHECK_EXITED(status, 7);

    /* The raw exit and exit_group system calls. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        syscall(SYS_exit, 42);
    CHECK_EQ(wait4(pid, &status, 0, NULL), pid);
    CHECK_EXITED(status, 42);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        syscall(SYS_exit_group, 43);
    CHECK_EQ(wait4(pid, &status, 0, NULL), pid);
    CHECK_EXITED(status, 43);
    /* Returning from main is exit(). */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        exit(44);
    CHECK_EQ(wait4(pid, &status, 0, NULL), pid);
    CHECK_EXITED(status, 44);

    /* wait4 on a status pointer of NULL and with an rusage buffer. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(1);
    CHECK_EQ(wait4(pid, NULL, 0, NULL), pid);
    CHECK_ERR(wait4(pid, &status, 0, NULL), ECHILD);

    /* kill(SIGKILL) a running child: reported as killed by SIGKILL. */
    pid = spawn_spinner();
    CHECK_OK(kill(pid, 0));
    CHECK_EQ(wait4(pid, &status, WNOHANG, NULL), 0);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(wait4(pid, &status, 0, NULL), pid);
    CHECK_SIGNALED(status, SIGKILL);
    CHECK(!WIFEXITED(status));
    CHECK_EQ(status & 0x7f, SIGKILL);
    /* Once reaped the id is gone. */
    CHECK_ERR(kill(pid, 0), ESRCH);
    CHECK_ERR(kill(pid, SIGKILL), ESRCH);
    CHECK_ERR(kill(getpid(), 12345), EINVAL);

    /* Several children reaped by wait4(-1) in whatever order they end. */
    pid_t kids[5];
    for (int i = 0; i < 5; i++) {
        kids[i] = fork();
        CHECK(kids[i] >= 0);
        if (kids[i] == 0)
            _exit(100 + i);
    }
    unsigned reaped = 0;
    for (int n = 0; n < 5; n++) {
        pid_t got = wait4(-1, &status, 0, NULL);
        CHECK(got > 0);
        int i = 0;
        while (i < 5 && kids[i] != got)
            i++;
        CHECK(i < 5);
        CHECK((reaped & (1u << i)) == 0);
        reaped |= 1u << i;
        CHECK_EXITED(status, 100 + i);
    }
    CHECK_ERR(wait4(-1, &status, 0, NULL), ECHILD);

    /* Waiting for a process that is not our child. */
    CHECK_ERR(wait4(getpid(), &status, 0, NULL), ECHILD);
    CHECK_ERR(wait4(getppid(), &status, 0, NULL), ECHILD);

    /* A child's exit is seen by WNOHANG polling eventually. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(9);
    pid_t got;
    while ((got = wait4(pid, &status, WNOHANG, NULL)) == 0)
        sched_yield();
    CHECK_EQ(got, pid);
    CHECK_EXITED(status, 9);
    return 0;
}
