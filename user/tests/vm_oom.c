/*
 * vm_oom - a process that touches more memory than the machine has: on pagoda (RAM 128 or
 * 256 MiB in the test boots) the page fault that finds no frame kills it with SIGKILL and
 * a log line, the parent carries on, and every frame comes back. Under Linux user-mode
 * emulation the host has far more memory: the child simply finishes. Either way the
 * kernel must not fall over.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define GIB (1024UL * 1024 * 1024)

static void touch_everything(void *arg)
{
    (void)arg;
    size_t len = on_pagoda() ? 2 * GIB : 64UL * 1024 * 1024;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        _exit(2);
    for (size_t off = 0; off < len; off += 4096)
        p[off] = 1;
    _exit(0);
}

static void nothing(void *arg)
{
    (void)arg;
}

int main(void)
{
    long baseline = meminfo_kb("MemFree");
    int status = run_faulting_child(touch_everything, NULL);
    if (on_pagoda())
        CHECK_SIGNALED(status, SIGKILL);
    else
        CHECK_EXITED(status, 0);
    /* The machine still works: fork and exit once more. */
    CHECK_EXITED(run_in_child(nothing, NULL), 0);
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
