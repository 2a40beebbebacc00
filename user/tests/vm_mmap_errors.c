/*
 * vm_mmap_errors - the argument errors of mmap, munmap, mprotect and madvise, with the
 * errno values Linux gives. Where QEMU's user mode differs from Linux 6.1 the real-Linux
 * value is asserted on pagoda only (CHECK_ERR_LINUX; see docs/user-programs.md).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define USER_END 0x4000000000UL /* end of the Sv39 user half (Linux's TASK_SIZE) */

int main(void)
{
    uint8_t *area = map_anon(4 * PAGE_SIZE);

    /* mmap */
    CHECK_ERR(mmap(NULL, 0, RW, ANON, -1, 0), EINVAL);                       /* length 0 */
    CHECK_ERR(mmap(area + 100, PAGE_SIZE, RW, ANON | MAP_FIXED, -1, 0), EINVAL); /* misaligned */
    CHECK_ERR(mmap(NULL, PAGE_SIZE, RW, MAP_ANONYMOUS, -1, 0), EINVAL);      /* no type */
    /* An unknown mapping type (MAP_PRIVATE | MAP_SHARED is MAP_SHARED_VALIDATE: valid). */
    CHECK_ERR(mmap(NULL, PAGE_SIZE, RW, 0x0f | MAP_ANONYMOUS, -1, 0), EINVAL);
    CHECK_ERR(mmap(NULL, 1UL << 62, RW, ANON, -1, 0), ENOMEM);              /* too big */
    CHECK_ERR(mmap(NULL, -PAGE_SIZE, RW, ANON, -1, 0), ENOMEM);             /* wraps */
    CHECK_ERR(mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE, -1, 0), EBADF);  /* file, no fd */
    CHECK_ERR(mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE, 999, 0), EBADF);
    int fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    CHECK_ERR(mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE, fd, 100), EINVAL); /* offset */
    CHECK_ERR(mmap(NULL, PAGE_SIZE, RW, MAP_SHARED, fd, 0), EACCES);         /* O_RDONLY */
    CHECK_OK(close(fd));
    int dir = CHECK_OK(open("/data", O_RDONLY | O_DIRECTORY));
    CHECK_ERR(mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE, dir, 0), ENODEV);
    CHECK_OK(close(dir));
    /* Beyond the Sv39 user half: Linux with Sv39 has TASK_SIZE 0x40_0000_0000 and says
     * ENOMEM; QEMU's user mode has a larger address space and maps these. */
    CHECK_ERR_LINUX(mmap((void *)(USER_END - PAGE_SIZE), 2 * PAGE_SIZE, RW, ANON | MAP_FIXED, -1, 0), ENOMEM);
    CHECK_ERR_LINUX(mmap((void *)USER_END, PAGE_SIZE, RW, ANON | MAP_FIXED, -1, 0), ENOMEM);
    CHECK_ERR(mmap((void *)0xffffffc000000000UL, PAGE_SIZE, RW, ANON | MAP_FIXED, -1, 0), ENOMEM);
    CHECK_ERR_LINUX(mmap(NULL, USER_END, RW, ANON | MAP_NORESERVE, -1, 0), ENOMEM);
    /* The last page below the user end is fine. */
    void *top = mmap((void *)(USER_END - 64 * PAGE_SIZE), PAGE_SIZE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0);
    if (on_pagoda())
        CHECK_EQ(top, USER_END - 64 * PAGE_SIZE);
    if (top != MAP_FAILED)
        CHECK_OK(munmap(top, PAGE_SIZE));

    /* munmap */
    CHECK_ERR(munmap(area + 1, PAGE_SIZE), EINVAL);
    CHECK_ERR(munmap(area, 0), EINVAL);
    CHECK_ERR(munmap((void *)0xffffffc000000000UL, PAGE_SIZE), EINVAL);
    /* Unmapping nothing is fine; so is a length that is not a page multiple. */
    CHECK_OK(munmap((void *)0x2000000000UL, PAGE_SIZE));
    CHECK_OK(munmap(area + 3 * PAGE_SIZE, 100));
    CHECK_ERR(mprotect(area + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ), ENOMEM);

    /* mprotect */
    CHECK_ERR(mprotect((void *)0x2000000000UL, PAGE_SIZE, PROT_READ), ENOMEM); /* unmapped */
    CHECK_ERR(mprotect(area + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ), ENOMEM); /* runs past */
    CHECK_ERR(mprotect(area + 1, PAGE_SIZE, PROT_READ), EINVAL);
    CHECK_ERR(mprotect(area, PAGE_SIZE, 0x100), EINVAL); /* unknown bit */
    CHECK_OK_LINUX(mprotect(area, 0, PROT_READ)); /* QEMU: ENOMEM */
    CHECK_OK(mprotect(area, 100, PROT_READ)); /* rounded up to the page */
    CHECK_OK(mprotect(area, PAGE_SIZE, RW));

    /* madvise (QEMU ignores unknown advice and unmapped ranges; Linux does not) */
    CHECK_ERR(madvise(area + 1, PAGE_SIZE, MADV_DONTNEED), EINVAL);
    CHECK_ERR_LINUX(madvise(area, PAGE_SIZE, 12345), EINVAL);
    CHECK_ERR_LINUX(madvise((void *)0x2000000000UL, PAGE_SIZE, MADV_DONTNEED), ENOMEM);
    CHECK_ERR_LINUX(madvise(area + 2 * PAGE_SIZE, 2 * PAGE_SIZE, MADV_NORMAL), ENOMEM);
    CHECK_OK(madvise(area, 0, MADV_DONTNEED));
    CHECK_OK(madvise(area, 3 * PAGE_SIZE, MADV_NORMAL));
    CHECK_OK(madvise(area, 3 * PAGE_SIZE, MADV_WILLNEED));

    CHECK_OK(munmap(area, 3 * PAGE_SIZE));
    return 0;
}
