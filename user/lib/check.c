/* check.c - see check.h. */
#define _GNU_SOURCE
#include "check.h"

#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * stdout unbuffered in every program: output then never sits in a buffer that a fork
 * would duplicate or a fatal signal would lose, and the console shows lines in order.
 */
__attribute__((constructor)) static void unbuffer_stdout(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
}

_Noreturn void check_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dprintf(2, "%s:%d: %s\n", file, line, msg);
    exit(1);
}

const char *errno_name(int err)
{
    const char *name = err ? strerrorname_np(err) : "0";
    return name ? name : "?";
}

int exited_with(int status, int code)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

int killed_by(int status, int sig)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

const char *describe_status(int status)
{
    static char buf[64];
    if (WIFEXITED(status))
        snprintf(buf, sizeof buf, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, sizeof buf, "killed by signal %d (%s)", WTERMSIG(status),
                 sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
    else
        snprintf(buf, sizeof buf, "wait status 0x%x", status);
    return buf;
}

int on_pagoda(void)
{
    struct utsname u;
    return uname(&u) == 0 && strstr(u.release, "pagoda") != NULL;
}

/* The number after "key:" on a line of the file at `path`, or -1. */
long proc_field_kb(const char *path, const char *key)
{
    char buf[4096];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    size_t klen = strlen(key);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            return strtol(line + klen + 1, NULL, 10);
    }
    return -1;
}

long meminfo_kb(const char *key)
{
    return proc_field_kb("/proc/meminfo", key);
}

long self_status_kb(const char *key)
{
    return proc_field_kb("/proc/self/status", key);
}

/* Copies the file at `path` to standard error (what a failed check shows). */
static void dump_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    char text[1024];
    ssize_t n;
    while ((n = read(fd, text, sizeof text)) > 0)
        write(2, text, (size_t)n);
    close(fd);
}

long settled_memfree_kb(void)
{
    long last = meminfo_kb("MemFree");
    if (!on_pagoda())
        return last; /* the host's: it never holds still, and nothing checks it */
    for (int tries = 0; tries < MEMFREE_SETTLE_TRIES; tries++) {
        struct timespec ms = {0, 10 * 1000 * 1000};
        nanosleep(&ms, NULL);
        long now = meminfo_kb("MemFree");
        if (now == last)
            break;
        last = now;
    }
    return last;
}

void check_memfree_back(const char *file, int line, long baseline_kb)
{
    if (!on_pagoda())
        return;
    /*
     * Memory comes back shortly after the workload ends, not only at once: a reaped
     * child's last references may be dropped on another hart after the wait returned,
     * and an idle hart gives back its cached heap objects at its next pass. A leak never
     * comes back, however long the wait. The swap cache is reclaimable free memory.
     */
    long now = -1;
    for (int tries = 0; tries < MEMFREE_SETTLE_TRIES; tries++) {
        long free_kb = meminfo_kb("MemFree");
        long cached_kb = meminfo_kb("SwapCached");
        now = free_kb < 0 || cached_kb < 0 ? -1 : free_kb + cached_kb;
        if (baseline_kb < 0 || now < 0 || now >= baseline_kb - MEMFREE_SLACK_KB)
            break;
        struct timespec ms = {0, 10 * 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    if (baseline_kb < 0 || now < 0)
        check_fail(file, line, "MemFree unreadable (baseline %ld kB, now %ld kB)",
                   baseline_kb, now);
    if (now < baseline_kb - MEMFREE_SLACK_KB) {
        /* Show where the memory went before failing. */
        dump_file("/proc/meminfo");
        dump_file("/proc/slabinfo");
        check_fail(file, line,
                   "MemFree+SwapCached %ld kB is %ld kB below its baseline %ld kB after %d ms",
                   now, baseline_kb - now, baseline_kb, MEMFREE_SETTLE_TRIES * 10);
    }
}

void check_envp(const char *file, int line, char *const *envp, const char *const *want,
                size_t n)
{
    size_t got = 0;
    while (envp[got])
        got++;
    if (got != n)
        check_fail(file, line, "environment has %zu strings, expected %zu", got, n);
    int ordered = on_pagoda();
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        if (ordered)
            j = strcmp(envp[i], want[i]) == 0 ? i : n;
        else
            while (j < n && strcmp(envp[j], want[i]) != 0)
                j++;
        if (j == n)
            check_fail(file, line, "environment string %zu: expected '%s', found '%s'", i,
                       want[i], envp[i]);
    }
}

/* Fork; the child runs fn(arg) (quietly if asked) and exits 0; returns wait status. */
static int fork_run(void (*fn)(void *), void *arg, int quiet)
{
    pid_t pid = fork();
    if (pid < 0)
        check_fail(__FILE__, __LINE__, "fork failed: %s", errno_name(errno));
    if (pid == 0) {
        if (quiet)
            close(2);
        fn(arg);
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        check_fail(__FILE__, __LINE__, "wait4(%d) failed: %s", pid, errno_name(errno));
    return status;
}

int run_in_child(void (*fn)(void *), void *arg)
{
    return fork_run(fn, arg, 0);
}

int run_faulting_child(void (*fn)(void *), void *arg)
{
    return fork_run(fn, arg, 1);
}

int spawn_wait(const char *path, char *const argv[], char *const envp[])
{
    pid_t pid = fork();
    if (pid < 0)
        check_fail(__FILE__, __LINE__, "fork failed: %s", errno_name(errno));
    if (pid == 0) {
        execve(path, argv, envp);
        dprintf(2, "execve %s: %s\n", path, errno_name(errno));
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        check_fail(__FILE__, __LINE__, "wait4(%d) failed: %s", pid, errno_name(errno));
    return status;
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void touch_pages(void *p, size_t len, uint8_t value)
{
    volatile uint8_t *b = p;
    for (size_t off = 0; off < len; off += PAGE_SIZE)
        b[off] = value;
}

void wait_until(const char *file, int line, volatile int *word, int value)
{
    uint64_t start = now_ns();
    while (*word != value) {
        if (now_ns() - start > WAIT_LIMIT_NS)
            check_fail(file, line, "waited too long for %d (still %d)", value, *word);
        sched_yield();
    }
}

void *map_anon(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        check_fail(__FILE__, __LINE__, "mmap of %zu bytes failed: %s", len, errno_name(errno));
    return p;
}

void *map_anon_aligned(size_t len, size_t align)
{
    char *raw = map_anon(len + align);
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    if (start > (uintptr_t)raw && munmap(raw, start - (uintptr_t)raw) != 0)
        check_fail(__FILE__, __LINE__, "munmap of the head failed");
    uintptr_t end = (uintptr_t)raw + len + align;
    if (end > start + len && munmap((void *)(start + len), end - (start + len)) != 0)
        check_fail(__FILE__, __LINE__, "munmap of the tail failed");
    return (void *)start;
}
