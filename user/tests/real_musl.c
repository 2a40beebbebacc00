/*
 * real_musl - a static musl program runs: /bin/hello-musl (user/bin/hello.c built with
 * `zig cc -target riscv64-linux-musl -static`, see user/real/real.mk) is forked and
 * executed; it prints its two lines (printf, uname) on the console and exits 0. Then 20
 * more runs with its stdout on a read-only file (writes fail with EBADF, silently; the
 * exit status is still 0), and MemFree back to its baseline on pagoda.
 * There is no pipe, so the output itself is not checked.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "check.h"

#define HELLO_MUSL "/bin/hello-musl"

struct run {
    int quiet;
};

static void exec_hello(void *arg)
{
    struct run *r = arg;
    if (r->quiet) {
        close(1); /* the lowest free descriptor is reused: no dup2 needed */
        if (open(DATA_HELLO_PATH, O_RDONLY) != 1)
            _exit(126);
    }
    char *argv[] = {HELLO_MUSL, NULL};
    char *envp[] = {NULL};
    execve(HELLO_MUSL, argv, envp);
    _exit(127);
}

int main(void)
{
    struct run loud = {0}, quiet = {1};
    CHECK_EXITED(run_in_child(exec_hello, &loud), 0);

    long baseline = meminfo_kb("MemFree");
    for (int i = 0; i < 20; i++)
        CHECK_EXITED(run_in_child(exec_hello, &quiet), 0);
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
