/*
 * memtour_run - the memory tour, /bin/memtour, runs to the end and shows its evidence.
 * memtour checks its own claims (RSS +40 kB for 10 pages written, 4096 zero-page maps,
 * one COW copy per page written, pages out to swap and back intact, ...) and exits 0
 * only when they all held; this test runs it with its output on a pipe and checks:
 *   - exit status 0;
 *   - each step ended with its verdict line: steps 1-3 PASS; step 4 (swap) PASS when
 *     pagoda runs with swap on, SKIPPED otherwise (under Linux and without a disk);
 *   - the evidence was shown: the counters each step is about, and BusyBox's free and
 *     pmap output when BusyBox is in the initramfs (on pagoda, pmap's line of the area).
 * The whole output is printed when a check fails, or always with MEMTOUR_SHOW=1 in the
 * environment (on pagoda: on the kernel command line, `test memtour_run MEMTOUR_SHOW=1`).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

#define MEMTOUR "/bin/memtour"

static char out[65536];
static size_t out_len;

/* Fails, after printing memtour's output, unless `text` is in it. */
static void want(const char *text)
{
    if (strstr(out, text))
        return;
    if (!getenv("MEMTOUR_SHOW"))
        write(2, out, out_len);
    check_fail(__FILE__, __LINE__, "memtour's output lacks \"%s\"", text);
}

int main(void)
{
    int fds[2];
    CHECK_OK(pipe(fds));
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        char *argv[] = {"memtour", NULL};
        execve(MEMTOUR, argv, (char *[]){NULL});
        dprintf(2, "execve %s: %s\n", MEMTOUR, errno_name(errno));
        _exit(127);
    }
    close(fds[1]);
    const char *show_env = getenv("MEMTOUR_SHOW");
    int show = show_env && strcmp(show_env, "1") == 0;
    char sink[4096];
    ssize_t n;
    /* Keep the first 64 KiB (memtour prints about 8 KiB), drain the rest. */
    for (;;) {
        char *at = out_len < sizeof out - 1 ? out + out_len : sink;
        n = read(fds[0], at, out_len < sizeof out - 1 ? sizeof out - 1 - out_len : sizeof sink);
        if (n <= 0)
            break;
        if (show) /* as it comes: a tour that hangs shows how far it got */
            write(2, at, (size_t)n);
        if (at != sink)
            out_len += (size_t)n;
    }
    close(fds[0]);
    out[out_len] = '\0';
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (!exited_with(status, 0) && !show)
        write(2, out, out_len);
    CHECK_EXITED(status, 0);

    want("memtour: step 1 demand-paging: PASS");
    want("memtour: step 2 zero-page: PASS");
    want("memtour: step 3 copy-on-write: PASS");
    if (swap_enabled())
        want("memtour: step 4 swap: PASS");
    else
        want("memtour: step 4 swap: SKIPPED");
    if (swap_enabled())
        want("memtour: step 5 huge-pages: SKIPPED");
    else
        want("memtour: step 5 huge-pages: PASS");
    want("steps passed, 0 failed");
    want("Not in this tour: shared page tables");
    if (!swap_enabled())
        want("AnonHugePages");

    /* The evidence. */
    want("VmRSS:");
    want("MinorFaults");
    want("ZeroPageMaps");
    want("CowCopies");
    if (swap_enabled()) {
        want("pswpout");
        want("pswpin");
        want("VmSwap");
    }
    if (access("/usr/bin/free", X_OK) == 0) {
        want("$ free -k");
        want("Mem:");
        want("Swap:");
    }
    if (access("/usr/bin/pmap", X_OK) == 0) {
        want("$ pmap -x");
        if (on_pagoda()) {
            /* Every pmap run found its area's line (65536 kB in step 1). */
            CHECK(strstr(out, "(no line for address") == NULL);
            want(" 65536 ");
        }
    }
    if (on_pagoda())
        CHECK(strstr(out, "NOT AS EXPECTED") == NULL && strstr(out, "not checked") == NULL);
    return 0;
}
