/*
 * tmpfs_mmap - MAP_SHARED mappings of tmpfs files are the file: a store through a
 * mapping is what read() sees and what other mappings (in this process and in a child)
 * see, write() is seen by the mappings; msync checks its arguments; an access past the
 * end of the file, or past a new end after ftruncate, is SIGBUS; a file unlinked while
 * mapped lives on in the mapping; MAP_PRIVATE copies; the descriptor's access mode
 * limits the mapping; memfd_create makes such a file with no name. Run on /dev/shm, a
 * tmpfs under Linux (the reference) too.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char path[64];

/* Touches (reads) the byte at `arg`: for children that must die of SIGBUS. */
static void read_byte(void *arg)
{
    (void)*(volatile uint8_t *)arg;
}

/* Stores to the byte at `arg`. */
static void write_byte(void *arg)
{
    *(volatile uint8_t *)arg = 1;
}

static void coherence(void)
{
    int fd = CHECK_OK(open(path, O_RDWR | O_CREAT | O_EXCL, 0600));
    CHECK_OK(ftruncate(fd, 3 * PAGE_SIZE));
    uint8_t *a = mmap(NULL, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(a != MAP_FAILED);
    uint8_t *b = mmap(NULL, 3 * PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(b != MAP_FAILED);
    CHECK(a[5] == 0 && b[PAGE_SIZE + 7] == 0);

    /* Stores through a mapping: read() and the other mapping see them. */
    memcpy(a + PAGE_SIZE - 3, "across", 6);
    char buf[16];
    CHECK_EQ(pread(fd, buf, 6, PAGE_SIZE - 3), 6);
    CHECK(memcmp(buf, "across", 6) == 0);
    CHECK(memcmp(b + PAGE_SIZE - 3, "across", 6) == 0);

    /* write() is seen by the mappings. */
    CHECK_EQ(pwrite(fd, "written", 7, 2 * PAGE_SIZE + 100), 7);
    CHECK(memcmp(a + 2 * PAGE_SIZE + 100, "written", 7) == 0);
    CHECK(memcmp(b + 2 * PAGE_SIZE + 100, "written", 7) == 0);

    /* msync: nothing to write back, arguments checked. */
    CHECK_OK(msync(a, 3 * PAGE_SIZE, MS_SYNC));
    CHECK_OK(msync(a, PAGE_SIZE, MS_ASYNC | MS_INVALIDATE));
    CHECK_ERR(msync(a + 1, PAGE_SIZE, MS_SYNC), EINVAL);
    CHECK_ERR(msync(a, PAGE_SIZE, MS_SYNC | MS_ASYNC), EINVAL);
    CHECK_ERR(msync(a, PAGE_SIZE, 0x100), EINVAL);

    /* A child's stores through its mapping (inherited) reach the parent. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        strcpy((char *)a + 10, "from the child");
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    CHECK(strcmp((char *)b + 10, "from the child") == 0);
    CHECK_EQ(pread(fd, buf, 14, 10), 14);
    CHECK(memcmp(buf, "from the child", 14) == 0);

    /* A second open of the file in another process, mapped there, sees the same. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd2 = open(path, O_RDWR);
        uint8_t *c = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
        if (c == MAP_FAILED || strcmp((char *)c + 10, "from the child") != 0)
            _exit(2);
        c[0] = 'Q';
        _exit(0);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    CHECK_EQ(a[0], 'Q');

    /* MAP_PRIVATE: a copy; its stores stay private. */
    uint8_t *p = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(p[0], 'Q');
    p[0] = 'P';
    CHECK_EQ(a[0], 'Q');
    CHECK_EQ(pread(fd, buf, 1, 0), 1);
    CHECK_EQ(buf[0], 'Q');
    CHECK_OK(munmap(p, PAGE_SIZE));

    CHECK_OK(close(fd));
    CHECK_OK(munmap(a, 3 * PAGE_SIZE));
    CHECK_OK(munmap(b, 3 * PAGE_SIZE));
    CHECK_OK(unlink(path));
}

static void bus_errors(void)
{
    int fd = CHECK_OK(open(path, O_RDWR | O_CREAT | O_EXCL, 0600));
    CHECK_OK(ftruncate(fd, PAGE_SIZE + 10));
    uint8_t *a = mmap(NULL, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(a != MAP_FAILED);
    a[PAGE_SIZE + 9] = 'e';
    a[PAGE_SIZE + 100] = 0; /* past the end, inside its last page: allowed */
    CHECK_SIGNALED(run_faulting_child(read_byte, a + 2 * PAGE_SIZE), SIGBUS);
    CHECK_SIGNALED(run_faulting_child(write_byte, a + 3 * PAGE_SIZE), SIGBUS);

    /* Shrunk while mapped: the page past the new end is gone from the mapping. */
    CHECK_OK(ftruncate(fd, 10));
    CHECK_SIGNALED(run_faulting_child(read_byte, a + PAGE_SIZE), SIGBUS);
    /* Grown again: the page is back, as zeros. */
    CHECK_OK(ftruncate(fd, 2 * PAGE_SIZE));
    CHECK_EQ(a[PAGE_SIZE + 9], 0);
    a[2 * PAGE_SIZE - 1] = 'z';
    char c;
    CHECK_EQ(pread(fd, &c, 1, 2 * PAGE_SIZE - 1), 1);
    CHECK_EQ(c, 'z');

    /* Unlinked while mapped and closed: the mapping still holds the file. */
    CHECK_OK(unlink(path));
    CHECK_OK(close(fd));
    a[0] = 'u';
    CHECK_EQ(a[0], 'u');
    CHECK_EQ(a[2 * PAGE_SIZE - 1], 'z');
    CHECK_OK(munmap(a, 4 * PAGE_SIZE));
}

static void access_modes(void)
{
    int fd = CHECK_OK(open(path, O_RDWR | O_CREAT | O_EXCL, 0600));
    CHECK_OK(ftruncate(fd, PAGE_SIZE));
    CHECK_OK(close(fd));
    fd = CHECK_OK(open(path, O_RDONLY));
    CHECK_ERR(mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EACCES);
    uint8_t *r = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(r != MAP_FAILED);
    CHECK_ERR(mprotect(r, PAGE_SIZE, PROT_READ | PROT_WRITE), EACCES);
    CHECK_OK(munmap(r, PAGE_SIZE));
    CHECK_OK(close(fd));
    fd = CHECK_OK(open(path, O_WRONLY));
    CHECK_ERR(mmap(NULL, PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0), EACCES);
    CHECK_OK(close(fd));
    CHECK_OK(unlink(path));
}

static void memfd(void)
{
    int fd = CHECK_OK(memfd_create("pagoda-test", MFD_CLOEXEC));
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(write(fd, "memfd data", 10), 10);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_size, 10);
    CHECK_EQ(st.st_nlink, 0);
    CHECK_OK(ftruncate(fd, 2 * PAGE_SIZE));
    uint8_t *m = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    CHECK(memcmp(m, "memfd data", 10) == 0);
    m[PAGE_SIZE] = 'M';
    char c;
    CHECK_EQ(pread(fd, &c, 1, PAGE_SIZE), 1);
    CHECK_EQ(c, 'M');
    char link[64], want[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    long n = CHECK_OK(readlink(link, want, sizeof want - 1));
    want[n] = 0;
    CHECK(strcmp(want, "/memfd:pagoda-test (deleted)") == 0);
    CHECK_ERR(memfd_create("x", 0x100), EINVAL);
    CHECK_OK(munmap(m, 2 * PAGE_SIZE));
    CHECK_OK(close(fd));
}

int main(void)
{
    snprintf(path, sizeof path, "/dev/shm/tmpfs_mmap.%d", (int)getpid());
    long shmem_before = meminfo_kb("Shmem");
    for (int round = 0; round < 2; round++) {
        coherence();
        bus_errors();
        access_modes();
        memfd();
    }
    if (on_pagoda())
        CHECK_EQ(meminfo_kb("Shmem"), shmem_before);
    return 0;
}
