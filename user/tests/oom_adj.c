/*
 * oom_adj - /proc/PID/oom_score_adj and oom_score, as Linux has them:
 *  - reads 0 by default, takes -1000..1000 (a newline allowed), refuses anything else
 *    with EINVAL; fork inherits it; oom_score is 0..1000;
 *  - on pagoda (no swap), the out-of-memory killer follows it: a process at -1000 holding
 *    half of RAM survives, a small one at +1000 dies first, then the hog that caused the
 *    shortage (the only one left to choose).
 * Under Linux user-mode emulation only the file semantics run (the writes reach the
 * emulator's own process).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static long read_num(const char *path)
{
    char buf[32];
    int fd = CHECK_OK(open(path, O_RDONLY));
    ssize_t n = CHECK_OK(read(fd, buf, sizeof buf - 1));
    close(fd);
    buf[n] = 0;
    long v;
    CHECK_EQ(sscanf(buf, "%ld", &v), 1);
    return v;
}

static int write_adj(const char *text)
{
    int fd = CHECK_OK(open("/proc/self/oom_score_adj", O_WRONLY));
    ssize_t n = write(fd, text, strlen(text));
    int err = errno;
    close(fd);
    errno = err;
    return n < 0 ? -1 : 0;
}

/* Fills `pages` pages, tells the parent, then waits to be killed or told to check. */
static void holder(size_t pages, const char *adj, int ready_fd, int go_fd)
{
    CHECK_OK(write_adj(adj));
    char *m = map_anon(pages * PAGE_SIZE);
    for (size_t pg = 0; pg < pages; pg++)
        m[pg * PAGE_SIZE] = (char)(pg + 1);
    char c = 1;
    CHECK_EQ(write(ready_fd, &c, 1), 1);
    CHECK_EQ(read(go_fd, &c, 1), 1);
    for (size_t pg = 0; pg < pages; pg++)
        CHECK_EQ(m[pg * PAGE_SIZE], (char)(pg + 1));
    _exit(0);
}

int main(void)
{
    CHECK_EQ(read_num("/proc/self/oom_score_adj"), 0);
    long score = read_num("/proc/self/oom_score");
    CHECK(score >= 0 && score <= 1000);
    CHECK_OK(write_adj("300\n"));
    CHECK_EQ(read_num("/proc/self/oom_score_adj"), 300);
    CHECK_ERR(write_adj("1001"), EINVAL);
    CHECK_ERR(write_adj("-1001"), EINVAL);
    CHECK_ERR(write_adj("ten"), EINVAL);
    CHECK_EQ(read_num("/proc/self/oom_score_adj"), 300);
    pid_t child = CHECK_OK(fork());
    if (child == 0) {
        CHECK_EQ(read_num("/proc/self/oom_score_adj"), 300);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_EXITED(status, 0);
    CHECK_OK(write_adj("0"));
    if (!on_pagoda() || meminfo_kb("SwapTotal") > 0) {
        printf("oom_adj: %s: the killer's part not run\n",
               on_pagoda() ? "swap is on" : "not on pagoda");
        return 0;
    }

    size_t ram = (size_t)meminfo_kb("MemTotal") / 4;
    int ready[2], go[2];
    CHECK_OK(pipe(ready));
    CHECK_OK(pipe(go));
    pid_t big = CHECK_OK(fork());
    if (big == 0)
        holder(ram / 2, "-1000", ready[1], go[0]);
    char c;
    CHECK_EQ(read(ready[0], &c, 1), 1);
    pid_t small = CHECK_OK(fork());
    if (small == 0)
        holder(ram / 10, "1000", ready[1], go[0]);
    CHECK_EQ(read(ready[0], &c, 1), 1);
    CHECK(read_num("/proc/self/oom_score") <= 1000);
    pid_t hog = CHECK_OK(fork());
    if (hog == 0) {
        char *m = map_anon(2 * ram * PAGE_SIZE);
        for (size_t pg = 0; pg < 2 * ram; pg++)
            m[pg * PAGE_SIZE] = 1;
        _exit(3);
    }
    CHECK_EQ(waitpid(small, &status, 0), small);
    CHECK_SIGNALED(status, SIGKILL);
    CHECK_EQ(waitpid(hog, &status, 0), hog);
    CHECK_SIGNALED(status, SIGKILL);
    CHECK_EQ(write(go[1], &c, 1), 1);
    CHECK_EQ(waitpid(big, &status, 0), big);
    CHECK_EXITED(status, 0);
    printf("oom_adj: the +1000 process died first, the -1000 one kept its memory\n");
    return 0;
}
