/*
 * tlb_shootdown - a change to the page table reaches the other harts before the call
 * returns: a thread spins reading (or writing) a page on one hart while another thread
 * unmaps (or write-protects) it on another hart; the spinner must fault at its next
 * access after munmap/mprotect returned, not some iterations later through a stale TLB
 * entry. Run on two or more harts (one hart has nothing to shoot down: the test says so
 * and passes). `make test` also boots pagoda with tlb=noremote, a kernel that skips the
 * remote half of every flush, and requires this test to FAIL there (QEMU keeps a
 * hart's TLB entries until that hart flushes or switches tables).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

/* Rounds per kind: one stale read is enough to fail; many rounds make a broken
 * kernel fail even if the spinner is sometimes preempted at the wrong moment. */
#define ROUNDS 20
/* Accesses a spinner makes before the page is changed (its TLB entry is warm). */
#define WARM 2000

static volatile char *page;
static volatile long accesses;
static volatile long at_fault;
static volatile int faulted, spinning, writer;
static sigjmp_buf jump;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    at_fault = accesses;
    faulted = 1;
    siglongjmp(jump, 1);
}

static void *spinner(void *arg)
{
    (void)arg;
    if (sigsetjmp(jump, 1))
        return NULL;
    spinning = 1;
    for (;;) {
        if (writer)
            *page = (char)accesses;
        else
            (void)*page;
        accesses++;
    }
}

/* One round; returns how many accesses the spinner made after the change returned
 * (at most 1 on a kernel that shoots down: one access may have completed before the
 * flush and been counted after). */
static long round_(int write_kind)
{
    page = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    page[0] = 1;
    accesses = 0;
    faulted = 0;
    spinning = 0;
    writer = write_kind;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, spinner, NULL), 0);
    uint64_t t0 = now_ns();
    while (accesses < WARM && now_ns() - t0 < WAIT_LIMIT_NS)
        ;
    CHECK(accesses >= WARM);
    /* The spinner runs on another hart right now: its count moves while we spin. */
    long a = accesses;
    while (accesses == a && now_ns() - t0 < WAIT_LIMIT_NS)
        ;
    if (write_kind)
        CHECK_OK(mprotect((void *)page, PAGE_SIZE, PROT_READ));
    else
        CHECK_OK(munmap((void *)page, PAGE_SIZE));
    long after = accesses;
    while (!faulted && now_ns() - t0 < WAIT_LIMIT_NS)
        ;
    CHECK(faulted);
    CHECK_EQ(pthread_join(t, NULL), 0);
    if (write_kind)
        CHECK_OK(munmap((void *)page, PAGE_SIZE));
    return at_fault - after;
}

int main(void)
{
    cpu_set_t set;
    CHECK_OK(sched_getaffinity(0, sizeof set, &set));
    if (CPU_COUNT(&set) < 2) {
        printf("tlb_shootdown: one hart, nothing to shoot down: SKIPPED\n");
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    CHECK_OK(sigaction(SIGSEGV, &sa, NULL));
    for (int kind = 0; kind < 2; kind++) {
        long worst = 0;
        for (int i = 0; i < ROUNDS; i++) {
            long late = round_(kind);
            if (late > worst)
                worst = late;
        }
        if (worst > 1)
            check_fail(__FILE__, __LINE__, "%s: the spinner made %ld accesses after %s returned",
                       kind ? "mprotect" : "munmap", worst, kind ? "mprotect" : "munmap");
    }
    return 0;
}
