/*
 * leak_exit_children - found by the fuzzer (issue 13): a process that forked children,
 * reaped every one of them, and then exits leaves its (empty) list of children behind in
 * the kernel heap: one kmalloc-32 object (kmalloc-64 once it had 5 or more children at a
 * time). proc::exit takes the list out of the process (`core::mem::take(&mut
 * inner.children)`) and, when it is empty, never drops it: exit() does not return, so its
 * locals are never dropped. Any user can grow the kernel heap without bound this way.
 *
 * The reproducer: 100 middle processes each fork one child, reap it and exit; the slab
 * objects in use (/proc/slabinfo) must come back to their baseline. Fixed: exit drops
 * the empty list by hand. Under Linux it checks nothing but the process tree.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define ROUNDS 100

/* Objects in use over every size class of /proc/slabinfo. */
static long slab_objects(void)
{
    char buf[8192];
    int fd = CHECK_OK(open("/proc/slabinfo", O_RDONLY));
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    long total = 0;
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "kmalloc-", 8) != 0)
            continue;
        char *p = strchr(line, ' ');
        total += p ? strtol(p, NULL, 10) : 0;
    }
    return total;
}

/* Fork one middle process that forks a child, reaps it and exits; reap the middle. */
static void one_round(void)
{
    pid_t mid = fork();
    CHECK(mid >= 0);
    if (mid == 0) {
        pid_t child = fork();
        if (child < 0)
            _exit(2);
        if (child == 0)
            _exit(0);
        int st;
        if (waitpid(child, &st, 0) != child || !exited_with(st, 0))
            _exit(3);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(mid, &status, 0), mid);
    CHECK_EXITED(status, 0);
}

int main(void)
{
    /* Warm up: the first rounds may fill caches (kernel-stack pool, process table). */
    for (int i = 0; i < 10; i++)
        one_round();
    long before = on_pagoda() ? slab_objects() : 0;
    for (int i = 0; i < ROUNDS; i++)
        one_round();
    if (!on_pagoda())
        return 0;
    long after = slab_objects();
    long leaked = after - before;
    if (leaked > ROUNDS / 10)
        check_fail(__FILE__, __LINE__, "%ld slab objects leaked (%ld -> %ld) by %d processes "
                   "that reaped their child and exited", leaked, before, after, ROUNDS);
    return 0;
}
