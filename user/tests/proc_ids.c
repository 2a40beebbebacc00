/*
 * proc_ids - getpid, getppid, gettid and set_tid_address, in a process and its child.
 */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static int tid_slot;

int main(void)
{
    pid_t pid = getpid();
    CHECK(pid > 0);
    CHECK_EQ(syscall(SYS_getpid), pid);
    /* A single-threaded process: its only thread's id is the process id. */
    CHECK_EQ(gettid(), pid);
    CHECK(getppid() > 0);
    CHECK(getppid() != pid);
    /* set_tid_address returns the caller's thread id. */
    CHECK_EQ(syscall(SYS_set_tid_address, &tid_slot), pid);

    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        /* Exit codes say which check failed: the parent cannot see our stderr lines. */
        if (getppid() != pid)
            _exit(2);
        if (getpid() == pid)
            _exit(3);
        if (gettid() != getpid())
            _exit(4);
        if (syscall(SYS_set_tid_address, &tid_slot) != getpid())
            _exit(5);
        _exit(0);
    }
    CHECK(child != pid);
    int status;
    CHECK_EQ(wait4(child, &status, 0, NULL), child);
    CHECK_EXITED(status, 0);

    /* Process ids are not reused at once: a second child gets a different id. */
    pid_t second = fork();
    CHECK(second >= 0);
    if (second == 0)
        _exit(0);
    CHECK(second != child);
    CHECK_EQ(waitpid(second, &status, 0), second);
    CHECK_EXITED(status, 0);
    return 0;
}
