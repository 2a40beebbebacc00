/*
 * pipe_basic - pipes with Linux's semantics: data in order, end of file once every
 * write end is closed, EPIPE and SIGPIPE with no reader, O_NONBLOCK (EAGAIN on an empty
 * read and a full write; F_GETFL/F_SETFL), the 64 KiB capacity, atomic writes of up to
 * PIPE_BUF bytes from two writers, blocking reads and writes between processes, a
 * three-stage pipeline, poll on pipes (POLLIN, POLLOUT, POLLHUP, POLLNVAL, timeouts), and every descriptor and frame back afterwards.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define CAPACITY 65536
#define STREAM (1024 * 1024)

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Writes all of buf (write may return short counts). */
static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            _exit(10);
        p += n;
        len -= (size_t)n;
    }
}

static uint8_t stream_byte(size_t i)
{
    return (uint8_t)(i * 7 + (i >> 11));
}

static void basics(void)
{
    int p[2];
    CHECK_OK(pipe2(p, 0));
    struct stat st;
    CHECK_OK(fstat(p[0], &st));
    CHECK(S_ISFIFO(st.st_mode));
    CHECK_ERR(lseek(p[0], 0, SEEK_SET), ESPIPE);
    CHECK_EQ(write(p[1], "hello", 5), 5);
    CHECK_EQ(write(p[1], ", pipe", 6), 6);
    char buf[64] = {0};
    CHECK_EQ(read(p[0], buf, 3), 3);
    CHECK_EQ(memcmp(buf, "hel", 3), 0);
    CHECK_EQ(read(p[0], buf, sizeof buf), 8);
    CHECK_EQ(memcmp(buf, "lo, pipe", 8), 0);
    /* The wrong end. */
    CHECK_ERR(write(p[0], "x", 1), EBADF);
    CHECK_ERR(read(p[1], buf, 1), EBADF);
    /* End of file once the only write end is closed. */
    CHECK_EQ(write(p[1], "z", 1), 1);
    CHECK_OK(close(p[1]));
    CHECK_EQ(read(p[0], buf, sizeof buf), 1);
    CHECK_EQ(read(p[0], buf, sizeof buf), 0);
    CHECK_OK(close(p[0]));
    CHECK_ERR(pipe2(p, O_APPEND), EINVAL);
    CHECK_ERR(syscall(SYS_pipe2, (void *)8, 0), EFAULT);
}

static void nonblocking(void)
{
    int p[2];
    CHECK_OK(pipe2(p, O_NONBLOCK | O_CLOEXEC));
    CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
    char buf[4096];
    CHECK_ERR(read(p[0], buf, sizeof buf), EAGAIN);
    /* Fill to capacity: the next write of any size finds no room. */
    memset(buf, 'a', sizeof buf);
    size_t total = 0;
    for (;;) {
        ssize_t n = write(p[1], buf, sizeof buf);
        if (n < 0) {
            CHECK_EQ(errno, EAGAIN);
            break;
        }
        total += (size_t)n;
        CHECK(total <= CAPACITY);
    }
    CHECK_EQ(total, CAPACITY);
    CHECK_ERR(write(p[1], buf, 1), EAGAIN);
    /* Clear O_NONBLOCK on the read end: reads of what is there still work. */
    CHECK_OK(fcntl(p[0], F_SETFL, 0));
    CHECK_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    CHECK_EQ(read(p[0], buf, sizeof buf), (long)sizeof buf);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
}

static void broken_pipe(void)
{
    /* Writing with no reader: SIGPIPE ends the writer ... */
    int p[2];
    CHECK_OK(pipe2(p, 0));
    CHECK_OK(close(p[0]));
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        close(2);
        write(p[1], "x", 1);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_SIGNALED(status, SIGPIPE);
    /* ... or, with SIGPIPE ignored, the write fails with EPIPE. */
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    CHECK_ERR(write(p[1], "x", 1), EPIPE);
    CHECK(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    CHECK_OK(close(p[1]));
}

static void between_processes(void)
{
    /* A blocked reader wakes when the writer, later, writes; a blocked writer wakes as
     * the reader drains a megabyte through the 64 KiB pipe. */
    int p[2];
    CHECK_OK(pipe2(p, 0));
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        close(p[0]);
        sleep_ms(50);
        static uint8_t out[STREAM];
        for (size_t i = 0; i < STREAM; i++)
            out[i] = stream_byte(i);
        for (size_t off = 0; off < STREAM; off += 1000)
            write_all(p[1], out + off, off + 1000 <= STREAM ? 1000 : STREAM - off);
        _exit(0);
    }
    CHECK_OK(close(p[1]));
    static uint8_t in[4096];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(p[0], in, sizeof in);
        CHECK(n >= 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (in[i] != stream_byte(got + (size_t)i))
                check_fail(__FILE__, __LINE__, "byte %zu differs", got + (size_t)i);
        got += (size_t)n;
    }
    CHECK_EQ(got, STREAM);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    CHECK_OK(close(p[0]));
}

static void atomic_writes(void)
{
    /* Two writers of PIPE_BUF-sized blocks: no block is ever split by the other's. */
    int p[2];
    CHECK_OK(pipe2(p, 0));
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = CHECK_OK(fork());
        if (kids[k] == 0) {
            close(p[0]);
            char block[4096];
            memset(block, 'A' + k, sizeof block);
            for (int i = 0; i < 64; i++)
                if (write(p[1], block, sizeof block) != (ssize_t)sizeof block)
                    _exit(3);
            _exit(0);
        }
    }
    CHECK_OK(close(p[1]));
    char block[4096];
    int blocks = 0;
    size_t fill = 0;
    for (;;) {
        ssize_t n = read(p[0], block + fill, sizeof block - fill);
        CHECK(n >= 0);
        if (n == 0)
            break;
        fill += (size_t)n;
        if (fill == sizeof block) {
            for (size_t i = 1; i < sizeof block; i++)
                CHECK_EQ(block[i], block[0]);
            blocks++;
            fill = 0;
        }
    }
    CHECK_EQ(fill, 0);
    CHECK_EQ(blocks, 128);
    for (int k = 0; k < 2; k++) {
        int status;
        CHECK_EQ(waitpid(kids[k], &status, 0), kids[k]);
        CHECK_EXITED(status, 0);
    }
    CHECK_OK(close(p[0]));
}

/* Stage of the pipeline: copies stdin to stdout, lowercase letters made uppercase. */
static void upcase(void)
{
    char buf[512];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z')
                buf[i] -= 32;
        write_all(1, buf, (size_t)n);
    }
    _exit(n == 0 ? 0 : 4);
}

static void pipeline(void)
{
    /* producer | upcase | this process, stages joined with dup3 onto fds 0 and 1. */
    int a[2], b[2];
    CHECK_OK(pipe2(a, O_CLOEXEC));
    CHECK_OK(pipe2(b, O_CLOEXEC));
    pid_t producer = CHECK_OK(fork());
    if (producer == 0) {
        for (int i = 0; i < 1000; i++)
            write_all(a[1], "pagoda pipes\n", 13);
        _exit(0);
    }
    pid_t middle = CHECK_OK(fork());
    if (middle == 0) {
        if (dup3(a[0], 0, 0) < 0 || dup3(b[1], 1, 0) < 0)
            _exit(5);
        close(a[1]);
        close(b[0]);
        upcase();
    }
    CHECK_OK(close(a[0]));
    CHECK_OK(close(a[1]));
    CHECK_OK(close(b[1]));
    char buf[13 * 10];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(b[0], buf, sizeof buf);
        CHECK(n >= 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            CHECK_EQ(buf[i], "PAGODA PIPES\n"[(got + (size_t)i) % 13]);
        got += (size_t)n;
    }
    CHECK_EQ(got, 13 * 1000);
    int status;
    CHECK_EQ(waitpid(producer, &status, 0), producer);
    CHECK_EXITED(status, 0);
    CHECK_EQ(waitpid(middle, &status, 0), middle);
    CHECK_EXITED(status, 0);
    CHECK_OK(close(b[0]));
}

static void polling(void)
{
    int p[2];
    CHECK_OK(pipe2(p, 0));
    struct pollfd fds[2] = {{.fd = p[0], .events = POLLIN}, {.fd = p[1], .events = POLLOUT}};
    /* Empty: only the write end is ready. */
    CHECK_EQ(poll(fds, 2, 0), 1);
    CHECK_EQ(fds[0].revents, 0);
    CHECK_EQ(fds[1].revents, POLLOUT);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(poll(fds, 2, 0), 2);
    CHECK_EQ(fds[0].revents, POLLIN);
    /* A timeout with nothing ready waits about that long. */
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1);
    uint64_t t0 = now_ns();
    CHECK_EQ(poll(fds, 1, 30), 0);
    CHECK(now_ns() - t0 >= 25 * 1000 * 1000);
    /* A writer arriving later wakes the poller. */
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        sleep_ms(30);
        write(p[1], "y", 1);
        _exit(0);
    }
    CHECK_EQ(poll(fds, 1, 5000), 1);
    CHECK_EQ(fds[0].revents, POLLIN);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    /* Every writer gone: POLLHUP (after the data). */
    CHECK_OK(close(p[1]));
    CHECK_EQ(poll(fds, 1, 0), 1);
    CHECK_EQ(fds[0].revents, POLLIN | POLLHUP);
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK_EQ(poll(fds, 1, 0), 1);
    CHECK_EQ(fds[0].revents, POLLHUP);
    /* A closed descriptor: POLLNVAL; a negative one is skipped. */
    struct pollfd bad[2] = {{.fd = p[1], .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    CHECK_EQ(poll(bad, 2, 0), 1);
    CHECK_EQ(bad[0].revents, POLLNVAL);
    CHECK_EQ(bad[1].revents, 0);
    CHECK_OK(close(p[0]));
}

int main(void)
{
    basics();
    long baseline = meminfo_kb("MemFree");
    nonblocking();
    broken_pipe();
    between_processes();
    atomic_writes();
    pipeline();
    polling();
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
