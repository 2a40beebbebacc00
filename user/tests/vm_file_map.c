/*
 * vm_file_map - mmap of the read-only /data/big.bin: at page offsets the content
 * matches read(); bytes past the end of the file in its last page are zeros and a page
 * wholly past the end raises SIGBUS; private writes are private (the file and other
 * mappings do not see them); mappings outlive close() and are inherited by fork;
 * PROT_WRITE with MAP_SHARED needs a writable descriptor, also via mprotect.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Number of pages the file covers (the last one partly). */
#define FILE_PAGES ((DATA_BIG_SIZE + PAGE_SIZE - 1) / PAGE_SIZE)

/* Fail unless `len` bytes at `p` are the file's bytes from offset `off`. */
static void check_content(const uint8_t *p, size_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != data_byte(off + i))
            check_fail(__FILE__, __LINE__, "byte %zu of the mapping (file offset %zu) is %u, "
                       "expected %u", i, off + i, p[i], data_byte(off + i));
}

/* read() of `len` bytes at offset `off`, through lseek + read (the file offset moves). */
static ssize_t read_at(int fd, void *buf, size_t len, off_t off)
{
    if (lseek(fd, off, SEEK_SET) != off)
        return -1;
    return read(fd, buf, len);
}

static void read_byte(void *p)
{
    (void)*(volatile uint8_t *)p;
}

static void write_byte(void *p)
{
    *(volatile uint8_t *)p = 1;
}

int main(void)
{
    int fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));

    /* The whole file, then windows at each page offset: the same bytes as read(). */
    uint8_t *all = mmap(NULL, DATA_BIG_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(all != MAP_FAILED);
    check_content(all, 0, DATA_BIG_SIZE);
    static uint8_t via_read[DATA_BIG_SIZE];
    CHECK_EQ(read_at(fd, via_read, DATA_BIG_SIZE, 0), DATA_BIG_SIZE);
    CHECK(memcmp(all, via_read, DATA_BIG_SIZE) == 0);
    for (size_t pg = 0; pg < FILE_PAGES; pg++) {
        uint8_t *w = mmap(NULL, 2 * PAGE_SIZE, PROT_READ, MAP_PRIVATE, fd, (off_t)(pg * PAGE_SIZE));
        CHECK(w != MAP_FAILED);
        size_t avail = DATA_BIG_SIZE - pg * PAGE_SIZE;
        check_content(w, pg * PAGE_SIZE, avail < PAGE_SIZE ? avail : PAGE_SIZE);
        CHECK_OK(munmap(w, 2 * PAGE_SIZE));
    }

    /* The tail of the last page, past the end of the file, reads as zeros... */
    for (size_t i = DATA_BIG_SIZE; i < FILE_PAGES * PAGE_SIZE; i++)
        CHECK_EQ(all[i], 0);
    /* ... and a mapped page wholly past the end raises SIGBUS. */
    uint8_t *over = mmap(NULL, (FILE_PAGES + 2) * PAGE_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(over != MAP_FAILED);
    CHECK_EQ(over[DATA_BIG_SIZE - 1], data_byte(DATA_BIG_SIZE - 1));
    CHECK_SIGNALED(run_faulting_child(read_byte, over + FILE_PAGES * PAGE_SIZE), SIGBUS);
    CHECK_SIGNALED(run_faulting_child(read_byte, over + (FILE_PAGES + 1) * PAGE_SIZE + 9), SIGBUS);
    CHECK_OK(munmap(over, (FILE_PAGES + 2) * PAGE_SIZE));
    /* An offset past the end maps fine, and faults on access. */
    uint8_t *beyond = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE, fd, (off_t)(FILE_PAGES + 3) * PAGE_SIZE);
    CHECK(beyond != MAP_FAILED);
    CHECK_SIGNALED(run_faulting_child(read_byte, beyond), SIGBUS);
    CHECK_OK(munmap(beyond, PAGE_SIZE));

    /* Private writable mapping of the read-only file: writes stay private. */
    uint8_t *priv = mmap(NULL, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, PAGE_SIZE);
    CHECK(priv != MAP_FAILED);
    check_content(priv, PAGE_SIZE, 3 * PAGE_SIZE);
    memset(priv + PAGE_SIZE, 0xee, PAGE_SIZE);
    CHECK_EQ(priv[2 * PAGE_SIZE - 1], 0xee);
    check_content(priv, PAGE_SIZE, PAGE_SIZE);
    check_content(priv + 2 * PAGE_SIZE, 3 * PAGE_SIZE, PAGE_SIZE);
    check_content(all + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PAGE_SIZE); /* other mapping */
    uint8_t page[PAGE_SIZE];
    CHECK_EQ(read_at(fd, page, PAGE_SIZE, 2 * PAGE_SIZE), PAGE_SIZE); /* the file */
    check_content(page, 2 * PAGE_SIZE, PAGE_SIZE);

    /* Inherited by fork: the child sees the private copy and the file pages; its writes
     * stay in the child. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (priv[PAGE_SIZE] != 0xee || priv[0] != data_byte(PAGE_SIZE) || all[5] != data_byte(5))
            _exit(2);
        priv[0] = (uint8_t)~priv[0];
        priv[PAGE_SIZE] = 0;
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    CHECK_EQ(priv[0], data_byte(PAGE_SIZE));
    CHECK_EQ(priv[PAGE_SIZE], 0xee);

    /* The mapping outlives the descriptor. */
    uint8_t *shared = mmap(NULL, 2 * PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(shared != MAP_FAILED);
    CHECK_OK(close(fd));
    check_content(shared, 0, 2 * PAGE_SIZE);
    check_content(all, 0, PAGE_SIZE);

    /* Writing a shared mapping of a read-only file: refused, by mmap and by mprotect;
     * a write to the PROT_READ mapping faults. */
    fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    CHECK_ERR(mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EACCES);
    CHECK_ERR(mprotect(shared, PAGE_SIZE, PROT_READ | PROT_WRITE), EACCES);
    CHECK_SIGNALED(run_faulting_child(write_byte, shared), SIGSEGV);
    CHECK_SIGNALED(run_faulting_child(write_byte, all), SIGSEGV);
    /* A private read-only mapping may become writable (copy on write). */
    CHECK_OK(mprotect(all, PAGE_SIZE, PROT_READ | PROT_WRITE));
    all[0] = (uint8_t)~data_byte(0);
    CHECK_EQ(shared[0], data_byte(0));
    CHECK_ERR(mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE, fd, 1), EINVAL);
    CHECK_OK(close(fd));

    CHECK_OK(munmap(all, DATA_BIG_SIZE));
    CHECK_OK(munmap(priv, 3 * PAGE_SIZE));
    CHECK_OK(munmap(shared, 2 * PAGE_SIZE));
    return 0;
}
