/*
 * vm_fork_stress - 1000 fork/exit cycles of a process with 16 MiB touched: each child
 * checks a few pages, writes one (a copy-on-write break) and exits with a code the
 * parent verifies; the parent's memory is intact afterwards and, on pagoda, MemFree is
 * back to its baseline.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define AREA (16 * MIB)
#define NPAGES (AREA / PAGE_SIZE)
#define CYCLES 1000

int main(void)
{
    uint8_t *p = map_anon(AREA);
    for (size_t i = 0; i < NPAGES; i++)
        memset(p + i * PAGE_SIZE, (int)(i * 7), PAGE_SIZE);
    /* Warm up, then take the baseline with the 16 MiB already resident. */
    for (int i = 0; i < 3; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(0);
        CHECK_EQ(waitpid(pid, NULL, 0), pid);
    }
    long free0 = meminfo_kb("MemFree");

    uint64_t seed = 0x5eed;
    for (int c = 0; c < CYCLES; c++) {
        size_t probe = xorshift64(&seed) % NPAGES;
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            if (p[probe * PAGE_SIZE + 9] != (uint8_t)(probe * 7) || p[0] != 0 ||
                p[AREA - 1] != (uint8_t)((NPAGES - 1) * 7))
                _exit(200);
            p[probe * PAGE_SIZE + 9] = 1;
            if (p[probe * PAGE_SIZE + 9] != 1)
                _exit(201);
            _exit(c % 100);
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK_EXITED(status, c % 100);
    }
    for (size_t i = 0; i < NPAGES; i++)
        CHECK_EQ(p[i * PAGE_SIZE + 9], (uint8_t)(i * 7));
    CHECK_MEMFREE_BACK(free0);
    CHECK_OK(munmap(p, AREA));
    return 0;
}
