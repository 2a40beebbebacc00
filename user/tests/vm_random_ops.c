/*
 * vm_random_ops - 10,000 random mmap / munmap / mprotect / madvise(DONTNEED) / write
 * operations (fixed seed) on a 256-page window, checked against a model of every
 * page's state: mapped or not, protection, contents. Contents and mapped-ness are
 * checked continuously; protections periodically by children that must survive
 * (reads and writes that are allowed) or die of SIGSEGV (those that are not). On
 * pagoda MemFree is back to its baseline at the end.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define WINDOW 256
#define OPS 10000
#define MAX_RUN 16
#define SWEEP_EVERY 250
#define FAULT_CHECK_EVERY 1000

enum state { UNMAPPED = -1, NONE = PROT_NONE, RO = PROT_READ, RW = PROT_READ | PROT_WRITE };

static uint8_t *win;
static int state[WINDOW];
static uint8_t value[WINDOW]; /* the byte at both ends of the page */
static uint64_t seed = 0x1234abcd;

static uint8_t *page(size_t i)
{
    return win + i * PAGE_SIZE;
}

static size_t rnd(size_t n)
{
    return (size_t)(xorshift64(&seed) % n);
}

/* Check page i against the model without risking a fault. */
static void check_page(size_t i, int op)
{
    if (state[i] == RO || state[i] == RW) {
        if (page(i)[0] != value[i] || page(i)[PAGE_SIZE - 1] != value[i])
            check_fail(__FILE__, __LINE__, "op %d: page %zu holds %u/%u, model says %u", op,
                       i, page(i)[0], page(i)[PAGE_SIZE - 1], value[i]);
    }
}

/* Check mapped-ness of page i: mprotect to the model's protection succeeds on a mapped
 * page (changing nothing) and fails with ENOMEM on a hole. */
static void check_mapped(size_t i, int op)
{
    int r = mprotect(page(i), PAGE_SIZE, state[i] == UNMAPPED ? PROT_READ : state[i]);
    if (state[i] == UNMAPPED ? (r != -1 || errno != ENOMEM) : r != 0)
        check_fail(__FILE__, __LINE__, "op %d: page %zu: mprotect gave %d (%s), model: %d",
                   op, i, r, errno_name(errno), state[i]);
}

static void read_byte(void *p)
{
    (void)*(volatile uint8_t *)p;
}

static void write_byte(void *p)
{
    *(volatile uint8_t *)p = 0x5a;
}

/* A child reads every readable page and writes every writable one (its own copies). */
static void access_all(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < WINDOW; i++) {
        if (state[i] == RO || state[i] == RW)
            if (page(i)[0] != value[i])
                _exit(2);
        if (state[i] == RW) {
            page(i)[100] = (uint8_t)(value[i] + 1);
            if (page(i)[100] != (uint8_t)(value[i] + 1))
                _exit(3);
        }
    }
}

/* Up to three random pages in state `s`: a forbidden access must kill a child. */
static void check_faults(int s, void (*access)(void *), int op)
{
    for (int tries = 0, done = 0; tries < 64 && done < 3; tries++) {
        size_t i = rnd(WINDOW);
        if (state[i] != s)
            continue;
        done++;
        int status = run_faulting_child(access, page(i) + rnd(PAGE_SIZE));
        if (!killed_by(status, SIGSEGV))
            check_fail(__FILE__, __LINE__, "op %d: page %zu (state %d): child %s, expected SIGSEGV",
                       op, i, s, describe_status(status));
    }
}

/* True when every page of [first, first + n) is mapped. */
static int all_mapped(size_t first, size_t n)
{
    for (size_t i = first; i < first + n; i++)
        if (state[i] == UNMAPPED)
            return 0;
    return 1;
}

int main(void)
{
    static const int prots[] = {NONE, RO, RW};
    long free0 = meminfo_kb("MemFree");
    win = mmap(NULL, WINDOW * PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(win != MAP_FAILED);
    for (size_t i = 0; i < WINDOW; i++)
        state[i] = NONE;
    int counts[5] = {0};

    for (int op = 0; op < OPS; op++) {
        size_t first = rnd(WINDOW);
        size_t n = 1 + rnd(MAX_RUN);
        if (first + n > WINDOW)
            n = WINDOW - first;
        size_t kind = rnd(100);
        if (kind < 25) { /* map fresh zero pages */
            int prot = prots[rnd(3)];
            void *got = mmap(page(first), n * PAGE_SIZE, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            if (got != page(first))
                check_fail(__FILE__, __LINE__, "op %d: mmap fixed at page %zu gave %p", op, first, got);
            for (size_t i = first; i < first + n; i++) {
                state[i] = prot;
                value[i] = 0;
            }
            counts[0]++;
        } else if (kind < 40) { /* unmap (holes included: always fine) */
            CHECK_OK(munmap(page(first), n * PAGE_SIZE));
            for (size_t i = first; i < first + n; i++)
                state[i] = UNMAPPED;
            counts[1]++;
        } else if (kind < 65) { /* change protection */
            int prot = prots[rnd(3)];
            if (all_mapped(first, n)) {
                CHECK_OK(mprotect(page(first), n * PAGE_SIZE, prot));
                for (size_t i = first; i < first + n; i++)
                    state[i] = prot;
            } else if (state[first] == UNMAPPED) {
                /* Starts in a hole: ENOMEM and nothing changed. (A range with a hole
                 * further on is left out: Linux changes the part before the hole.) */
                CHECK_ERR(mprotect(page(first), n * PAGE_SIZE, prot), ENOMEM);
            }
            counts[2]++;
        } else if (kind < 90) { /* write a page (if allowed) */
            size_t i = first;
            if (state[i] == RW) {
                uint8_t v = (uint8_t)(1 + rnd(255));
                page(i)[0] = v;
                page(i)[PAGE_SIZE - 1] = v;
                value[i] = v;
            }
            counts[3]++;
        } else { /* drop pages: private anonymous memory reads back as zeros */
            if (all_mapped(first, n)) {
                CHECK_OK(madvise(page(first), n * PAGE_SIZE, MADV_DONTNEED));
                for (size_t i = first; i < first + n; i++)
                    value[i] = 0;
            }
            counts[4]++;
        }
        /* The touched pages and their neighbours. */
        size_t lo = first ? first - 1 : 0, hi = first + n < WINDOW ? first + n + 1 : WINDOW;
        for (size_t i = lo; i < hi; i++) {
            check_page(i, op);
            check_mapped(i, op);
        }
        if (op % SWEEP_EVERY == SWEEP_EVERY - 1)
            for (size_t i = 0; i < WINDOW; i++) {
                check_page(i, op);
                check_mapped(i, op);
            }
        if (op % FAULT_CHECK_EVERY == FAULT_CHECK_EVERY - 1) {
            int status = run_in_child(access_all, NULL);
            if (!exited_with(status, 0))
                check_fail(__FILE__, __LINE__, "op %d: allowed accesses: child %s", op,
                           describe_status(status));
            check_faults(NONE, read_byte, op);
            check_faults(RO, write_byte, op);
            check_faults(UNMAPPED, read_byte, op);
        }
    }
    for (int k = 0; k < 5; k++)
        CHECK(counts[k] > OPS / 20);
    CHECK_OK(munmap(win, WINDOW * PAGE_SIZE));
    CHECK_MEMFREE_BACK(free0);
    return 0;
}
