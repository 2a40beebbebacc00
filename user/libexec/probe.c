/*
 * /libexec/probe - helper program the tests execute (not a test itself, not a tool:
 * test helpers live in /libexec, out of /bin).
 *
 *   probe exit N         exit with status N
 *   probe args ...       exit 0 iff argv and envp are exactly what execve_basic passes
 *   probe exe            exit 0 iff readlink("/proc/self/exe") is "/libexec/probe"
 *   probe unmapped ADDR  exit 0 iff the page at hex ADDR is not mapped (exec dropped it):
 *                        mprotect of an unmapped page is ENOMEM
 *   probe pid PID        exit 0 iff getpid() == PID (execve keeps the process id)
 *   probe unlocked       exit 0 iff nothing is locked (VmLck 0) and a new mapping is not
 *                        locked either: execve ends mlock and mlockall(MCL_FUTURE)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

/* What tests/execve_basic.c passes; keep the two in step. */
static const char *const expected_argv[] = {"probe-argv0", "args", "one", "two words", "", "last"};
static const char *const expected_envp[] = {"A=1", "EMPTY=", "PATH=/bin", "LAST=x"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int main(int argc, char **argv, char **envp)
{
    CHECK(argc >= 2);
    const char *mode = argv[1];
    if (strcmp(mode, "exit") == 0) {
        CHECK_EQ(argc, 3);
        return atoi(argv[2]);
    }
    if (strcmp(mode, "unlocked") == 0) {
        CHECK_EQ(self_status_kb("VmLck"), 0);
        char *m = map_anon(4 * PAGE_SIZE);
        touch_pages(m, 4 * PAGE_SIZE, 1);
        CHECK_EQ(self_status_kb("VmLck"), 0);
        return 0;
    }
    if (strcmp(mode, "args") == 0) {
        CHECK_EQ(argc, COUNT(expected_argv));
        for (size_t i = 0; i < COUNT(expected_argv); i++)
            CHECK(strcmp(argv[i], expected_argv[i]) == 0);
        CHECK(argv[argc] == NULL);
        CHECK_ENVP(envp, expected_envp, COUNT(expected_envp));
        return 0;
    }
    if (strcmp(mode, "exe") == 0) {
        char buf[256];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        CHECK(n > 0);
        buf[n] = '\0';
        if (strcmp(buf, PROBE_PATH) != 0)
            check_fail(__FILE__, __LINE__, "/proc/self/exe is '%s'", buf);
        return 0;
    }
    if (strcmp(mode, "unmapped") == 0) {
        CHECK_EQ(argc, 3);
        void *page = (void *)strtoul(argv[2], NULL, 16);
        CHECK_ERR(mprotect(page, PAGE_SIZE, PROT_READ), ENOMEM);
        return 0;
    }
    if (strcmp(mode, "pid") == 0) {
        CHECK_EQ(argc, 3);
        CHECK_EQ(getpid(), atoi(argv[2]));
        return 0;
    }
    check_fail(__FILE__, __LINE__, "unknown mode '%s'", mode);
}
