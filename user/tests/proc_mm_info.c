/*
 * proc_mm_info - /proc/slabinfo and /proc/buddyinfo have Linux's formats: the slabinfo
 * 2.1 header and per-cache lines of numbers in which active objects never exceed the
 * objects the slabs hold; buddyinfo lines "Node N, zone NAME" with a free-block count per
 * order. On pagoda the heap's size classes are there, some objects are in use, and the
 * free blocks add up to no more than the RAM.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* Room for Linux's slabinfo (a few hundred caches); a longer file is checked in part. */
static char text[512 * 1024];

/* Reads the file at `path` into `text` (whole lines only); returns its length. */
static size_t slurp(const char *path)
{
    int fd = CHECK_OK(open(path, O_RDONLY));
    size_t len = 0;
    ssize_t n;
    while (len < sizeof text - 1 && (n = read(fd, text + len, sizeof text - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    while (len > 0 && text[len - 1] != '\n')
        len--;
    text[len] = '\0';
    return len;
}

/* Parses up to `max` unsigned numbers from `s`, stopping at ':' or the end of the line. */
static int numbers(const char **s, long *out, int max)
{
    int n = 0;
    for (;;) {
        while (**s == ' ')
            (*s)++;
        if (**s < '0' || **s > '9' || n == max)
            return n;
        char *end;
        out[n++] = strtol(*s, &end, 10);
        *s = end;
    }
}

static void check_slabinfo(void)
{
    CHECK(slurp("/proc/slabinfo") > 0);
    char *line = text;
    CHECK(strncmp(line, "slabinfo - version: 2.1\n", 24) == 0);
    line = strchr(line, '\n') + 1;
    CHECK(strncmp(line, "# name", 6) == 0);
    int caches = 0, kmalloc = 0;
    long in_use = 0;
    for (line = strchr(line, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        const char *p = line;
        while (*p != ' ')
            p++;
        long v[5];
        CHECK_EQ(numbers(&p, v, 5), 5);
        /* active_objs <= num_objs; an object size and per-slab counts of at least 1. */
        CHECK(v[0] <= v[1]);
        CHECK(v[2] > 0 && v[3] > 0 && v[4] > 0);
        CHECK(strncmp(p, ": tunables", 10) == 0);
        caches++;
        if (strncmp(line, "kmalloc-", 8) == 0) {
            kmalloc++;
            in_use += v[0];
        }
    }
    CHECK(caches > 0);
    if (on_pagoda()) {
        /* Every size class, 8 bytes to one page; the kernel has objects in some. */
        CHECK(kmalloc > 10);
        CHECK(in_use > 0);
    }
}

static void check_buddyinfo(void)
{
    CHECK(slurp("/proc/buddyinfo") > 0);
    long free_kb = 0;
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        CHECK(strncmp(line, "Node ", 5) == 0);
        const char *zone = strstr(line, ", zone ");
        CHECK(zone != NULL && zone < strchr(line, '\n'));
        const char *p = zone + 7;
        while (*p == ' ')
            p++;
        while (*p != ' ')
            p++;
        long blocks[32];
        int orders = numbers(&p, blocks, 32);
        /* Linux has 11 orders, pagoda 19. */
        CHECK(orders >= 11);
        for (int k = 0; k < orders; k++)
            free_kb += blocks[k] * (long)(PAGE_SIZE / 1024) << k;
    }
    if (on_pagoda())
        CHECK(free_kb > 0 && free_kb <= meminfo_kb("MemTotal"));
}

int main(void)
{
    check_slabinfo();
    check_buddyinfo();
    return 0;
}
