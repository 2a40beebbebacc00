/*
 * vm_prot - page protections are enforced per page: PROT_NONE and PROT_READ pages kill
 * a writing (or, for PROT_NONE, reading) child with SIGSEGV; mprotect and munmap of
 * one page in the middle of a 1 MiB area split it with the neighbours unaffected;
 * first and last pages of an area work and the page past the end faults; contents
 * survive protection changes; a child inherits protections.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define AREA (1 * MIB)
#define NPAGES (AREA / PAGE_SIZE)

static void read_byte(void *p)
{
    (void)*(volatile uint8_t *)p;
}

static void write_byte(void *p)
{
    *(volatile uint8_t *)p = 0xee;
}

/* Expect a child reading / writing at p to survive (ok) or die of SIGSEGV. */
#define READ_OK(p) CHECK_EXITED(run_in_child(read_byte, (void *)(p)), 0)
#define WRITE_OK(p) CHECK_EXITED(run_in_child(write_byte, (void *)(p)), 0)
#define READ_FAULTS(p) CHECK_SIGNALED(run_faulting_child(read_byte, (void *)(p)), SIGSEGV)
#define WRITE_FAULTS(p) CHECK_SIGNALED(run_faulting_child(write_byte, (void *)(p)), SIGSEGV)

int main(void)
{
    /* PROT_NONE from the start: no access at all. */
    uint8_t *none = mmap(NULL, 2 * PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(none != MAP_FAILED);
    READ_FAULTS(none);
    WRITE_FAULTS(none + PAGE_SIZE + 5);
    CHECK_OK(mprotect(none, 2 * PAGE_SIZE, PROT_READ));
    READ_OK(none);
    CHECK_EQ(none[PAGE_SIZE], 0);
    WRITE_FAULTS(none);
    CHECK_OK(munmap(none, 2 * PAGE_SIZE));

    /* A 1 MiB area with one page more mapped and then unmapped past its end, so the
     * page after the last one is certainly a hole. */
    uint8_t *a = map_anon(AREA + PAGE_SIZE);
    CHECK_OK(munmap(a + AREA, PAGE_SIZE));
    for (size_t i = 0; i < NPAGES; i++)
        memset(a + i * PAGE_SIZE, (int)(i & 0xff), PAGE_SIZE);
    uint8_t *mid = a + (NPAGES / 2) * PAGE_SIZE;

    /* Boundaries: first and last bytes work, the byte past the end faults. */
    WRITE_OK(a);
    WRITE_OK(a + AREA - 1);
    READ_FAULTS(a + AREA);
    WRITE_FAULTS(a + AREA);

    /* mprotect one page in the middle to read-only. */
    CHECK_OK(mprotect(mid, PAGE_SIZE, PROT_READ));
    WRITE_FAULTS(mid);
    WRITE_FAULTS(mid + PAGE_SIZE - 1);
    READ_OK(mid);
    WRITE_OK(mid - 1);
    WRITE_OK(mid + PAGE_SIZE);
    WRITE_OK(a);
    WRITE_OK(a + AREA - 1);
    CHECK_EQ(mid[0], NPAGES / 2);
    /* Splitting again inside the split: the read-only page's neighbours to PROT_NONE. */
    CHECK_OK(mprotect(mid - PAGE_SIZE, PAGE_SIZE, PROT_NONE));
    CHECK_OK(mprotect(mid + PAGE_SIZE, PAGE_SIZE, PROT_NONE));
    READ_FAULTS(mid - 1);
    READ_FAULTS(mid + PAGE_SIZE);
    READ_OK(mid);
    WRITE_OK(mid - PAGE_SIZE - 1);
    WRITE_OK(mid + 2 * PAGE_SIZE);
    /* Back to read-write in one call across the pieces: contents preserved. */
    CHECK_OK(mprotect(a, AREA, PROT_READ | PROT_WRITE));
    for (size_t i = 0; i < NPAGES; i++)
        CHECK_EQ(a[i * PAGE_SIZE + 7], i & 0xff);
    WRITE_OK(mid);
    mid[0] = 0x42;
    CHECK_EQ(mid[0], 0x42);

    /* munmap one page in the middle: a hole with working neighbours. */
    CHECK_OK(munmap(mid, PAGE_SIZE));
    READ_FAULTS(mid);
    WRITE_FAULTS(mid + 100);
    WRITE_OK(mid - 1);
    WRITE_OK(mid + PAGE_SIZE);
    CHECK_EQ(mid[-1], (NPAGES / 2 - 1) & 0xff);
    CHECK_EQ(mid[PAGE_SIZE], (NPAGES / 2 + 1) & 0xff);
    CHECK_ERR(mprotect(a, AREA, PROT_READ), ENOMEM);
    /* Fill the hole again: fresh zeros, then the whole area is one range again. */
    CHECK_EQ(mmap(mid, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), mid);
    CHECK_EQ(mid[0], 0);
    CHECK_OK(mprotect(a, AREA, PROT_READ));
    WRITE_FAULTS(a);
    WRITE_FAULTS(mid);
    WRITE_FAULTS(a + AREA - 1);
    READ_OK(a + AREA - 1);

    /* Protections are inherited by a child, and its mprotect does not change ours. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (mprotect(a, AREA, PROT_READ | PROT_WRITE) != 0)
            _exit(2);
        a[0] = 1;
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    WRITE_FAULTS(a);
    CHECK_EQ(a[0], 0);

    /* PROT_NONE keeps the contents: back to readable, they are all there. */
    CHECK_OK(mprotect(a, AREA, PROT_NONE));
    READ_FAULTS(a + 3 * PAGE_SIZE);
    /* The kernel cannot reach a PROT_NONE page either, populated or not: a system call
     * that copies to or from it fails with EFAULT (pagoda keeps such a page as a
     * supervisor execute-only leaf: regression test for that encoding). */
    CHECK_ERR(write(1, a + 3 * PAGE_SIZE, 8), EFAULT);
    CHECK_ERR(syscall(SYS_getrandom, a + 3 * PAGE_SIZE, 8, 0), EFAULT);
    CHECK_ERR(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, a + 5 * PAGE_SIZE), EFAULT);
    CHECK_OK(mprotect(a, AREA, PROT_READ));
    CHECK_EQ(a[3 * PAGE_SIZE], 3);
    CHECK_OK(munmap(a, AREA));
    READ_FAULTS(a);
    return 0;
}
