/*
 * vm_file_shared - one memory object per file: every MAP_SHARED mapping of a file, in
 * every process, maps the same frames (on pagoda, a second process mapping and reading
 * this program's own file takes no memory for its pages, where a private mapping copies
 * every page); and two mappings of one file at consecutive offsets, placed side by side
 * with the same rights, are one area (/proc/self/maps shows one line), shared or
 * private, as on Linux.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Sums one byte of every page: reads (faults in) each page of the mapping. */
static unsigned touch(const uint8_t *p, size_t len)
{
    unsigned sum = 0;
    for (size_t i = 0; i < len; i += PAGE_SIZE)
        sum += ((const volatile uint8_t *)p)[i];
    return sum;
}

/* The end of the /proc/self/maps line that starts at `start`, or 0 if none does. */
static unsigned long maps_end(unsigned long start)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    char line[512];
    unsigned long end = 0, s, e;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s == start)
            end = e;
    fclose(f);
    return end;
}

/* Maps file pages [0, 2) then [2, 4) of `fd` side by side with `flags`: one area. */
static void check_merge(int fd, int flags)
{
    uint8_t *a = mmap(NULL, 4 * PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    CHECK(mmap(a, 2 * PAGE_SIZE, PROT_READ, flags | MAP_FIXED, fd, 0) == a);
    CHECK(mmap(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ, flags | MAP_FIXED, fd,
               2 * PAGE_SIZE) == a + 2 * PAGE_SIZE);
    CHECK_EQ(maps_end((unsigned long)a), (unsigned long)(a + 4 * PAGE_SIZE));
    /* Not at consecutive offsets: two areas. */
    CHECK(mmap(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ, flags | MAP_FIXED, fd,
               3 * PAGE_SIZE) == a + 2 * PAGE_SIZE);
    CHECK_EQ(maps_end((unsigned long)a), (unsigned long)(a + 2 * PAGE_SIZE));
    CHECK_OK(munmap(a, 4 * PAGE_SIZE));
}

int main(void)
{
    char path[256];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    CHECK(n > 0);
    path[n] = 0;
    int fd = CHECK_OK(open(path, O_RDONLY));
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    size_t len = (size_t)st.st_size & ~(size_t)(PAGE_SIZE - 1);
    size_t pages = len / PAGE_SIZE;
    CHECK(pages >= 64);

    check_merge(fd, MAP_SHARED);
    check_merge(fd, MAP_PRIVATE);

    /* The parent maps the file shared and reads every page. */
    uint8_t *mine = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(mine != MAP_FAILED);
    unsigned sum = touch(mine, len);

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* Another process, another mapping of the same file: the same pages. */
        long before = settled_memfree_kb();
        uint8_t *theirs = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        if (theirs == MAP_FAILED || theirs == mine)
            _exit(2);
        if (touch(theirs, len) != sum || memcmp(theirs, mine, len) != 0)
            _exit(3);
        long shared_kb = before - settled_memfree_kb();
        /* A private mapping of the same file, read: a private copy of every page. */
        before = settled_memfree_kb();
        uint8_t *copy = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (copy == MAP_FAILED || touch(copy, len) != sum)
            _exit(4);
        long private_kb = before - settled_memfree_kb();
        if (on_pagoda()) {
            long file_kb = (long)(len / 1024);
            /* Page tables and the area may take a few pages; the file's pages none. */
            if (shared_kb > file_kb / 8)
                _exit(5);
            if (private_kb < file_kb * 9 / 10)
                _exit(6);
        }
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    CHECK_EQ(touch(mine, len), sum);
    CHECK_OK(munmap(mine, len));
    CHECK_OK(close(fd));
    return 0;
}
