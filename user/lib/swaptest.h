/*
 * swaptest.h - what the swap tests share: a per-page pattern, /proc/vmstat counters and
 * the check that swap slots and frames came back.
 *
 * A slot is in use while a swap entry (a swapped-out page of some process) or the swap
 * cache names it. After a workload is gone, the slots in use may only be those of the
 * processes still alive (their own pages may have been swapped out meanwhile: VmSwap in
 * /proc/PID/status) and of the swap cache (SwapCached): any more is a leaked slot.
 */
#ifndef PAGODA_SWAPTEST_H
#define PAGODA_SWAPTEST_H

#include <stddef.h>
#include <stdint.h>

/* The word at index `i` (of 512) of page `page` in pattern `round`. */
static inline uint64_t swap_word(size_t page, size_t i, uint64_t round)
{
    uint64_t x = (page + 1) * 0x9e3779b97f4a7c15ULL ^ (i + 1) * 0xbf58476d1ce4e5b9ULL;
    return x ^ (round * 0x94d049bb133111ebULL);
}

/* Fills page `page` (at `p`) with pattern `round`: every eighth word, so that the whole
 * page is dirtied without the test's own time dominating. */
void swap_fill(void *p, size_t page, uint64_t round);
/* Fails unless page `page` (at `p`) holds pattern `round`. */
void swap_verify(const void *p, size_t page, uint64_t round);
/* A counter of /proc/vmstat, or -1. */
long vmstat_value(const char *key);
/* Whether pagoda runs with a swap area (false under Linux user-mode emulation). */
int swap_enabled(void);
/* The slot check above, for the calling process and init (the only processes left). */
void check_swap_slots_back(const char *file, int line);
#define CHECK_SWAP_SLOTS_BACK() check_swap_slots_back(__FILE__, __LINE__)

/*
 * The main of a swap test: on pagoda without a swap area, says "NAME: no swap area:
 * nothing to test" and returns 0; otherwise runs `workload` in a child, which must exit
 * 0, then checks that every swap slot came back and, on pagoda, that MemFree plus
 * SwapCached did. Returns main's exit status (0; a failed check exits).
 */
int swap_test_main(const char *name, void (*workload)(void *));

#endif
