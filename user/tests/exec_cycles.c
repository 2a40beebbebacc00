/*
 * exec_cycles - 200 sequential fork + execve + wait4 cycles of a small program; on
 * pagoda MemFree returns to its baseline afterwards (no frame, page table or kernel
 * object leaks per process).
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "check.h"

#define CYCLES 200
#define WARMUP 5

int main(void)
{
    char *argv[] = {"probe", "exit", "0", NULL};
    char *envp[] = {NULL};
    /* A few cycles first, so that caches the kernel fills once are not counted. (pagoda
     * gives its heap caches back when a hart goes idle and before it reports MemFree;
     * without that, the heap's per-hart caches grew by 32 pages over the first few
     * hundred processes and this check failed: a regression test for that too.) */
    for (int i = 0; i < WARMUP; i++)
        CHECK_EXITED(spawn_wait(PROBE_PATH, argv, envp), 0);
    long baseline = meminfo_kb("MemFree");
    for (int i = 0; i < CYCLES; i++)
        CHECK_EXITED(spawn_wait(PROBE_PATH, argv, envp), 0);
    CHECK_MEMFREE_BACK(baseline);
    /* Different exit codes through the same path. */
    char code[8];
    char *exit_n[] = {"probe", "exit", code, NULL};
    for (int i = 0; i < 20; i++) {
        code[0] = (char)('0' + i % 10);
        code[1] = '\0';
        CHECK_EXITED(spawn_wait(PROBE_PATH, exit_n, envp), i % 10);
    }
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
