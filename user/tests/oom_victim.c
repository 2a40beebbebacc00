/*
 * oom_victim - when memory runs out, the process holding the most memory dies, not the
 * one that happened to fault: three memory hogs (each touching more than RAM) and a
 * small bystander that touches a fresh page every 20 ms. On pagoda every hog is killed
 * by SIGKILL (the largest at each shortage), the bystander finishes with its data
 * intact, and every frame comes back. Regression: the faulting process was killed, so
 * the bystander often died. Under Linux user-mode emulation the host has far more
 * memory: the hogs touch less and simply finish.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define HOGS 3
#define GIB (1024UL * 1024 * 1024)
#define BYSTANDER_PAGES 100

static void hog(void *arg)
{
    (void)arg;
    size_t len = on_pagoda() ? GIB : 32 * MIB;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        _exit(2);
    for (size_t off = 0; off < len; off += PAGE_SIZE)
        p[off] = 1;
}

/* Touches a new page every 20 ms, then checks every page it wrote. */
static void bystander(void *arg)
{
    (void)arg;
    uint8_t *p = map_anon(BYSTANDER_PAGES * PAGE_SIZE);
    struct timespec pause_ts = {0, 20 * 1000 * 1000};
    for (size_t i = 0; i < BYSTANDER_PAGES; i++) {
        p[i * PAGE_SIZE] = (uint8_t)(i + 1);
        nanosleep(&pause_ts, NULL);
    }
    for (size_t i = 0; i < BYSTANDER_PAGES; i++)
        if (p[i * PAGE_SIZE] != (uint8_t)(i + 1))
            _exit(3);
}

static pid_t start(void (*fn)(void *))
{
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        if (fn == hog)
            close(2); /* QEMU's user mode would report a killed child */
        fn(NULL);
        _exit(0);
    }
    return pid;
}

int main(void)
{
    long baseline = meminfo_kb("MemFree");
    pid_t by = start(bystander);
    pid_t hogs[HOGS];
    for (int i = 0; i < HOGS; i++)
        hogs[i] = start(hog);
    int status;
    for (int i = 0; i < HOGS; i++) {
        CHECK_EQ(waitpid(hogs[i], &status, 0), hogs[i]);
        if (on_pagoda())
            CHECK_SIGNALED(status, SIGKILL);
        else
            CHECK_EXITED(status, 0);
    }
    CHECK_EQ(waitpid(by, &status, 0), by);
    CHECK_EXITED(status, 0);
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
