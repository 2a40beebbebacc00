/*
 * vm_brk - the program break: brk(0) reports it, growing gives zeroed read-write
 * memory, shrinking unmaps (the pages fault and come back as zeros), requests below
 * the start or into another mapping fail by returning the old break, and a child's
 * heap is its own copy.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static uintptr_t brk_call(uintptr_t addr)
{
    return (uintptr_t)syscall(SYS_brk, addr);
}

static void write_byte(void *p)
{
    *(volatile uint8_t *)p = 1;
}

int main(void)
{
    uintptr_t start = brk_call(0);
    CHECK(start != 0);
    CHECK_EQ(brk_call(0), start);
    uintptr_t base = (start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);

    /* Grow by 1 MiB: all of it zeroed and writable. */
    uintptr_t top = base + MIB;
    CHECK_EQ(brk_call(top), top);
    CHECK_EQ(brk_call(0), top);
    uint8_t *heap = (uint8_t *)base;
    for (size_t off = 0; off < MIB; off += 256)
        CHECK_EQ(heap[off], 0);
    memset(heap, 0x5c, MIB);

    /* A child sees the heap, and its writes stay its own. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (heap[MIB - 1] != 0x5c || brk_call(0) != top)
            _exit(2);
        memset(heap, 0x11, MIB);
        brk_call(base); /* shrinking in the child does not shrink the parent */
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    CHECK_EQ(heap[0], 0x5c);
    CHECK_EQ(brk_call(0), top);

    /* Shrink by half: the upper half faults (Linux unmaps it; QEMU's user mode keeps
     * it mapped), the lower half keeps its contents. */
    uintptr_t half = base + MIB / 2;
    CHECK_EQ(brk_call(half), half);
    if (on_pagoda()) {
        CHECK_SIGNALED(run_faulting_child(write_byte, (void *)half), SIGSEGV);
        CHECK_SIGNALED(run_faulting_child(write_byte, (void *)(top - 1)), SIGSEGV);
    }
    CHECK_EQ(heap[MIB / 2 - 1], 0x5c);
    /* Grow back: the re-grown part is zeros again. */
    CHECK_EQ(brk_call(top), top);
    CHECK_EQ(heap[MIB / 2], 0);
    CHECK_EQ(heap[MIB - 1], 0);
    CHECK_EQ(heap[MIB / 2 - 1], 0x5c);

    /* A break that is not page-aligned: reported as asked, memory to the page end. */
    CHECK_EQ(brk_call(top + 100), top + 100);
    CHECK_EQ(brk_call(0), top + 100);
    heap[MIB + 100] = 1;
    heap[MIB + PAGE_SIZE - 1] = 1;
    CHECK_EQ(brk_call(top), top);

    /* Below the initial break (here: below the program itself): refused, the break
     * stays. (Where exactly the initial break was is not known here: glibc's start-up
     * already moved it.) */
    CHECK_EQ(brk_call(0x1000), top);
    CHECK_EQ(brk_call(0), top);

    /* Never into another mapping: put one 256 KiB above the break, then ask past it. */
    uint8_t *wall = mmap((void *)(top + 256 * 1024), PAGE_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK_EQ(wall, top + 256 * 1024);
    wall[0] = 0x99;
    CHECK_EQ(brk_call(top + 512 * 1024), top);
    CHECK_EQ(brk_call((uintptr_t)wall + PAGE_SIZE), top);
    CHECK_EQ(brk_call(0), top);
    /* Up to well below it is fine. */
    CHECK_EQ(brk_call(top + 128 * 1024), top + 128 * 1024);
    CHECK_EQ(wall[0], 0x99);
    CHECK_EQ(brk_call(top), top);
    CHECK_OK(munmap(wall, PAGE_SIZE));
    /* With the mapping gone the same request succeeds. */
    CHECK_EQ(brk_call(top + 512 * 1024), top + 512 * 1024);
    heap[MIB + 300 * 1024] = 3;

    /* Back to where we started; malloc (which uses brk) still works after. */
    CHECK_EQ(brk_call(start), start);
    char *m = malloc(200000);
    CHECK(m != NULL);
    memset(m, 1, 200000);
    free(m);
    return 0;
}
