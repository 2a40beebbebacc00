/*
 * thp_basic - transparent huge pages keep every byte through every path that splits,
 * shares or moves them. A 16 MiB private anonymous mapping gets a per-page pattern;
 * then: mprotect of one 4 KiB page in the middle of a huge page (the rest stays
 * writable, that page faults on write), munmap across a huge-page boundary (the pages
 * outside the hole keep their data, the hole faults), MADV_DONTNEED of part of a huge
 * page (those pages read zero, the others keep their data), a fork tree in which parent,
 * child and grandchild each write their own half and verify every page, mremap to a new
 * place, reads of never-written memory (zeros), MADV_NOHUGEPAGE and MAP_HUGETLB. Every check of the
 * data holds on any kernel; on pagoda the test also checks that huge pages were used
 * (AnonHugePages in smaps and meminfo, thp_fault_alloc, thp_split_pmd in /proc/vmstat)
 * and that MemFree comes back once everything is unmapped.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

#define HUGE (2 * MIB)
#define LEN (16 * MIB)
#define PAGES (LEN / PAGE_SIZE)

/* The word every page of the region holds at its start and end under `salt`. */
static uint64_t pattern(size_t page, uint64_t salt)
{
    return (page + 1) * 0x9e3779b97f4a7c15ULL ^ salt;
}

static void fill(char *p, size_t first, size_t n, uint64_t salt)
{
    for (size_t i = first; i < first + n; i++) {
        uint64_t *w = (uint64_t *)(p + i * PAGE_SIZE);
        w[0] = pattern(i, salt);
        w[PAGE_SIZE / 8 - 1] = ~pattern(i, salt);
    }
}

static void verify(const char *p, size_t first, size_t n, uint64_t salt)
{
    for (size_t i = first; i < first + n; i++) {
        const uint64_t *w = (const uint64_t *)(p + i * PAGE_SIZE);
        if (w[0] != pattern(i, salt) || w[PAGE_SIZE / 8 - 1] != ~pattern(i, salt))
            check_fail(__FILE__, __LINE__, "page %zu: %llx, want %llx", i,
                       (unsigned long long)w[0], (unsigned long long)pattern(i, salt));
    }
}

/* A 2 MiB aligned private anonymous mapping (aligned on any kernel). */
static char *map_aligned(size_t len)
{
    return map_anon_aligned(len, HUGE);
}

/* The `key:` value (kB) of the smaps entry of the area holding `addr`, or -1. */
static long smaps_kb(const void *addr, const char *key)
{
    static char buf[256 * 1024];
    int fd = open("/proc/self/smaps", O_RDONLY);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = 0;
    size_t klen = strlen(key);
    int inside = 0;
    for (char *line = buf; *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next = 0;
        unsigned long lo, hi;
        char dash;
        if (sscanf(line, "%lx%c%lx", &lo, &dash, &hi) == 3 && dash == '-')
            inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
        else if (inside && strncmp(line, key, klen) == 0 && line[klen] == ':')
            return atol(line + klen + 1);
        if (!next)
            break;
        line = next + 1;
    }
    return -1;
}

static char *region;

static void write_page(void *arg)
{
    *(volatile char *)arg = 1;
}

static void read_page(void *arg)
{
    (void)*(volatile char *)arg;
}

static void protect_one_page(void)
{
    long splits = vmstat_value("thp_split_pmd");
    char *page = region + 3 * MIB + 5 * PAGE_SIZE; /* inside the second huge page */
    size_t ro = (size_t)(page - region) / PAGE_SIZE;
    CHECK_OK(mprotect(page, PAGE_SIZE, PROT_READ));
    CHECK_SIGNALED(run_faulting_child(write_page, page), SIGSEGV);
    verify(region, 0, PAGES, 1);
    /* Every other page still takes writes. */
    fill(region, 0, ro, 2);
    fill(region, ro + 1, PAGES - ro - 1, 2);
    verify(region, 0, ro, 2);
    verify(region, ro, 1, 1);
    verify(region, ro + 1, PAGES - ro - 1, 2);
    CHECK_OK(mprotect(page, PAGE_SIZE, PROT_READ | PROT_WRITE));
    if (on_pagoda())
        CHECK(vmstat_value("thp_split_pmd") > splits);
}

static void unmap_across(void)
{
    /* Pages [6 MiB - 64 KiB, 6 MiB + 64 KiB): across the boundary of two huge pages. */
    char *hole = region + 6 * MIB - 64 * 1024;
    CHECK_OK(munmap(hole, 128 * 1024));
    CHECK_SIGNALED(run_faulting_child(read_page, hole), SIGSEGV);
    CHECK_SIGNALED(run_faulting_child(read_page, hole + 127 * 1024), SIGSEGV);
    size_t first = (size_t)(hole - region) / PAGE_SIZE, n = 128 * 1024 / PAGE_SIZE;
    verify(region, 0, first, 1);
    verify(region, first + n, PAGES - first - n, 1);
    /* Map the hole again (zeros) and restore the pattern, for the steps after. */
    char *again = mmap(hole, 128 * 1024, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(again == hole);
    for (size_t i = first; i < first + n; i++)
        CHECK_EQ(((uint64_t *)(region + i * PAGE_SIZE))[0], 0);
    fill(region, first, n, 1);
}

static void dontneed_part(void)
{
    /* 64 KiB in the middle of the seventh huge page. */
    char *part = region + 12 * MIB + 512 * 1024;
    CHECK_OK(madvise(part, 64 * 1024, MADV_DONTNEED));
    size_t first = (size_t)(part - region) / PAGE_SIZE, n = 64 * 1024 / PAGE_SIZE;
    for (size_t i = first; i < first + n; i++)
        CHECK_EQ(((uint64_t *)(region + i * PAGE_SIZE))[0], 0);
    verify(region, first + n, PAGES - first - n, 1);
    verify(region, 0, first, 1);
    fill(region, first, n, 1);
}

/* Each process of the tree writes its own salt over one half of the pages it owns and
 * checks every page: its own writes, and what it inherited. */
static void fork_tree(void)
{
    fill(region, 0, PAGES, 10);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        fill(region, 0, PAGES / 2, 11);
        pid_t grandchild = fork();
        if (grandchild == 0) {
            fill(region, PAGES / 4, PAGES / 4, 12);
            verify(region, 0, PAGES / 4, 11);
            verify(region, PAGES / 4, PAGES / 4, 12);
            verify(region, PAGES / 2, PAGES / 2, 10);
            _exit(0);
        }
        int status;
        if (grandchild < 0 || waitpid(grandchild, &status, 0) != grandchild ||
            !exited_with(status, 0))
            _exit(2);
        verify(region, 0, PAGES / 2, 11);
        verify(region, PAGES / 2, PAGES / 2, 10);
        _exit(0);
    }
    fill(region, PAGES / 2, PAGES / 2, 13);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_EXITED(status, 0);
    verify(region, 0, PAGES / 2, 10);
    verify(region, PAGES / 2, PAGES / 2, 13);
}

static void move(void)
{
    fill(region, 0, PAGES, 20);
    long huge = smaps_kb(region, "AnonHugePages");
    char *moved = mremap(region, LEN, LEN, MREMAP_MAYMOVE | MREMAP_FIXED,
                         map_aligned(LEN) /* a free, aligned place */);
    CHECK(moved != MAP_FAILED);
    verify(moved, 0, PAGES, 20);
    region = moved;
    /* The huge pages moved whole (the new place is 2 MiB aligned too). */
    if (on_pagoda())
        CHECK_EQ(smaps_kb(region, "AnonHugePages"), huge);
}

static void never_written(void)
{
    char *r = map_aligned(4 * MIB);
    for (size_t i = 0; i < 4 * MIB; i += 512)
        CHECK_EQ(r[i], 0);
    r[3 * MIB] = 7; /* a write after the reads */
    CHECK_EQ(r[3 * MIB], 7);
    CHECK_EQ(r[3 * MIB + 1], 0);
    CHECK_EQ(r[MIB], 0);
    CHECK_OK(munmap(r, 4 * MIB));
}

static void no_huge_advice(void)
{
    char *r = map_aligned(4 * MIB);
    CHECK_OK(madvise(r, 4 * MIB, MADV_NOHUGEPAGE));
    touch_pages(r, 4 * MIB, 3);
    if (on_pagoda())
        CHECK_EQ(smaps_kb(r, "AnonHugePages"), 0);
    CHECK_OK(munmap(r, 4 * MIB));
}

/* MAP_HUGETLB: whole 2 MiB pages, all there at once (pagoda takes them from free 2 MiB
 * blocks; a Linux without a hugetlb pool says ENOMEM). Checked on pagoda only. */
static void explicit_huge_pages(void)
{
    char *r = mmap(NULL, 3 * MIB, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (r == MAP_FAILED) {
        /* Elsewhere: no hugetlb pool (ENOMEM), or QEMU's user mode refusing the flag. */
        CHECK(!on_pagoda());
        CHECK(errno == ENOMEM || errno == EINVAL);
        return;
    }
    CHECK_EQ((uintptr_t)r % HUGE, 0);
    if (on_pagoda()) /* the length rounded up to 4 MiB, both pages mapped already */
        CHECK_EQ(smaps_kb(r, "AnonHugePages"), 4096);
    for (size_t off = 0; off < 4 * MIB; off += PAGE_SIZE)
        CHECK_EQ(r[off], 0);
    r[4 * MIB - 1] = 5;
    CHECK_EQ(r[4 * MIB - 1], 5);
    CHECK_OK(munmap(r, 4 * MIB));
    if (on_pagoda())
        CHECK_ERR(mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0), EINVAL);
}

int main(void)
{
    long baseline = meminfo_kb("MemFree");
    long allocs = vmstat_value("thp_fault_alloc");
    region = map_aligned(LEN);
    fill(region, 0, PAGES, 1);
    verify(region, 0, PAGES, 1);
    if (on_pagoda()) {
        CHECK_EQ(smaps_kb(region, "AnonHugePages"), (long)(LEN / 1024));
        CHECK(meminfo_kb("AnonHugePages") >= (long)(LEN / 1024));
        CHECK(vmstat_value("thp_fault_alloc") >= allocs + (long)(LEN / HUGE));
    }
    protect_one_page();
    fill(region, 0, PAGES, 1);
    unmap_across();
    dontneed_part();
    fork_tree();
    move();
    CHECK_OK(munmap(region, LEN));
    never_written();
    no_huge_advice();
    explicit_huge_pages();
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
