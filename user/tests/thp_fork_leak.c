/*
 * thp_fork_leak - fork of a process whose memory is in huge pages shares them
 * copy-on-write and gives every frame back. A 64 MiB private anonymous mapping (huge
 * pages on pagoda) is filled with a per-page pattern; then 1,000 times: fork, the child
 * writes one page of one huge page (a copy-on-write break of a shared huge page) and
 * checks a page of another, exits; the parent waits. The parent's data is intact after
 * the loop, and on pagoda MemFree is back at its value before the loop (no frame of a
 * copied or shared huge page leaked), and back at its first value after munmap.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define HUGE (2 * MIB)
#define LEN (64 * MIB)
#define PAGES (LEN / PAGE_SIZE)
#define FORKS 1000

static uint64_t pattern(size_t page)
{
    return (page + 7) * 0x9e3779b97f4a7c15ULL;
}

int main(void)
{
    long first = meminfo_kb("MemFree");
    char *raw = mmap(NULL, LEN + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    CHECK(raw != MAP_FAILED);
    uint64_t *region = (uint64_t *)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    const size_t words = PAGE_SIZE / 8;
    for (size_t i = 0; i < PAGES; i++)
        region[i * words] = pattern(i);
    long before = meminfo_kb("MemFree");
    for (int f = 0; f < FORKS; f++) {
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            size_t mine = (size_t)(f % 32) * (HUGE / PAGE_SIZE) + (size_t)f % 512;
            size_t other = (size_t)((f + 16) % 32) * (HUGE / PAGE_SIZE) + 3;
            region[mine * words] = ~pattern(mine);
            if (region[mine * words] != ~pattern(mine) || region[other * words] != pattern(other))
                _exit(3);
            _exit(0);
        }
        int status;
        CHECK_EQ(waitpid(child, &status, 0), child);
        CHECK_EXITED(status, 0);
    }
    for (size_t i = 0; i < PAGES; i++)
        if (region[i * words] != pattern(i))
            check_fail(__FILE__, __LINE__, "page %zu changed in the parent", i);
    CHECK_MEMFREE_BACK(before);
    CHECK_OK(munmap(raw, LEN + HUGE));
    CHECK_MEMFREE_BACK(first);
    return 0;
}
