/*
 * swap_fork - copy-on-write of swapped-out pages: the parent fills 1.5x RAM (so its
 * first pages are in swap), then forks; the child rewrites the first half and checks
 * the second, the parent rewrites the second half and checks the first; each then
 * checks its own writes, so a page written by one side and read by the other would show
 * the wrong pattern. Afterwards every slot and frame is back. Without a swap disk on
 * pagoda it passes with a note; under Linux user-mode emulation it runs on 32 MiB.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

static char *m;
static size_t pages;

static void write_range(size_t from, size_t to, uint64_t round)
{
    for (size_t pg = from; pg < to; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, round);
}

static void verify_range(size_t from, size_t to, uint64_t round)
{
    for (size_t pg = from; pg < to; pg++)
        swap_verify(m + pg * PAGE_SIZE, pg, round);
}

static void workload(void *arg)
{
    (void)arg;
    size_t len = swap_enabled() ? 3 * (size_t)meminfo_kb("MemTotal") * 1024 / 2 : 32 * MIB;
    pages = len / PAGE_SIZE;
    size_t half = pages / 2;
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    write_range(0, pages, 1);
    if (swap_enabled())
        CHECK(self_status_kb("VmSwap") > 0);
    pid_t child = CHECK_OK(fork());
    if (child == 0) {
        write_range(0, half, 2);
        verify_range(half, pages, 1);
        verify_range(0, half, 2);
        _exit(0);
    }
    write_range(half, pages, 3);
    verify_range(0, half, 1);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_EXITED(status, 0);
    verify_range(half, pages, 3);
    verify_range(0, half, 1);
    CHECK_OK(munmap(m, len));
    _exit(0);
}

int main(void)
{
    return swap_test_main("swap_fork", workload);
}
