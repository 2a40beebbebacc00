/*
 * fork_shared_tables - fork of a process with 16 MiB of private memory in 4 KiB pages
 * (pagoda shares its leaf page tables with the child instead of copying them) keeps
 * every side's memory its own, verified page by page:
 * - a tree: the parent P forks A; A writes the even pages and forks B; B writes pages
 *   1 mod 4, write-protects one page in the middle (and reads it), unmaps 64 KiB,
 *   checks its view and exits; A checks its view is untouched by B; P meanwhile writes
 *   the pages 3 mod 4, and after A exits checks its own;
 * - on pagoda, /proc/vmstat's pgtable_share grew (the tables were shared);
 * - 200 forks whose child writes one page and reads another give back every frame
 *   (MemFree back at its value before them).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

#define HUGE (2 * MIB)
#define LEN (16 * MIB)
#define PAGES (LEN / PAGE_SIZE)
#define WORDS (PAGE_SIZE / 8)
#define PROTECTED_PAGE 1001
#define UNMAPPED_FIRST 2048
#define UNMAPPED_PAGES 16
#define LEAK_FORKS 200

static uint64_t pattern(size_t page, uint64_t gen)
{
    return ((page + 1) * 0x9e3779b97f4a7c15ULL) ^ (gen << 56);
}

/* Generation of page `page` as `who` must see it. */
static uint64_t expected(char who, size_t page)
{
    switch (who) {
    case 'O': /* before any fork */
        return 1;
    case 'P':
        return page % 4 == 3 ? 4 : 1;
    case 'A':
        return page % 2 == 0 ? 2 : 1;
    default: /* B */
        if (page % 4 == 1)
            return 3;
        return page % 2 == 0 ? 2 : 1;
    }
}

static void check_view(uint64_t *region, char who)
{
    for (size_t i = 0; i < PAGES; i++) {
        if (who == 'B' && i >= UNMAPPED_FIRST && i < UNMAPPED_FIRST + UNMAPPED_PAGES)
            continue;
        uint64_t want = pattern(i, expected(who, i));
        if (region[i * WORDS] != want || region[i * WORDS + WORDS - 1] != want)
            check_fail(__FILE__, __LINE__, "%c: page %zu is %#lx, not %#lx", who, i,
                       (unsigned long)region[i * WORDS], (unsigned long)want);
    }
}

static void write_pages(uint64_t *region, size_t first, size_t step, uint64_t gen)
{
    for (size_t i = first; i < PAGES; i += step) {
        region[i * WORDS] = pattern(i, gen);
        region[i * WORDS + WORDS - 1] = pattern(i, gen);
    }
}

static void child_b(uint64_t *region)
{
    check_view(region, 'A');
    write_pages(region, 1, 4, 3);
    char *page = (char *)region + PROTECTED_PAGE * PAGE_SIZE;
    CHECK_OK(mprotect(page, PAGE_SIZE, PROT_READ));
    CHECK_OK(munmap((char *)region + UNMAPPED_FIRST * PAGE_SIZE, UNMAPPED_PAGES * PAGE_SIZE));
    check_view(region, 'B');
    _exit(0);
}

static void child_a(uint64_t *region)
{
    check_view(region, 'O');
    write_pages(region, 0, 2, 2);
    pid_t b = fork();
    CHECK(b >= 0);
    if (b == 0)
        child_b(region);
    int status;
    CHECK_EQ(waitpid(b, &status, 0), b);
    CHECK_EXITED(status, 0);
    check_view(region, 'A');
    /* B's write protection was its own. */
    region[PROTECTED_PAGE * WORDS] = pattern(PROTECTED_PAGE, expected('A', PROTECTED_PAGE));
    _exit(0);
}

int main(void)
{
    uint64_t *region = map_anon_aligned(LEN, HUGE);
    CHECK_OK_LINUX(madvise(region, LEN, MADV_NOHUGEPAGE));
    write_pages(region, 0, 1, 1);
    long shared_before = vmstat_value("pgtable_share");

    pid_t a = fork();
    CHECK(a >= 0);
    if (a == 0)
        child_a(region);
    write_pages(region, 3, 4, 4);
    int status;
    CHECK_EQ(waitpid(a, &status, 0), a);
    CHECK_EXITED(status, 0);
    check_view(region, 'P');
    if (on_pagoda())
        CHECK(vmstat_value("pgtable_share") >= shared_before + (long)(LEN / HUGE));

    long before = meminfo_kb("MemFree");
    for (int f = 0; f < LEAK_FORKS; f++) {
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            size_t mine = (size_t)f * 37 % PAGES, other = (size_t)f * 101 % PAGES;
            region[mine * WORDS] = ~pattern(mine, expected('P', mine));
            if (region[other * WORDS] != pattern(other, expected('P', other)) && other != mine)
                _exit(3);
            _exit(0);
        }
        CHECK_EQ(waitpid(child, &status, 0), child);
        CHECK_EXITED(status, 0);
    }
    check_view(region, 'P');
    CHECK_MEMFREE_BACK(before);
    CHECK_OK(munmap(region, LEN));
    return 0;
}
