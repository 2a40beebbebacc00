/*
 * priv_zero - the kernel stays private (issue 13, item 4): no uninitialised kernel memory
 * reaches user space.
 *
 *   - fresh memory is all zero, after a child has filled and freed as much as it holds:
 *     anonymous private and shared pages, MAP_POPULATE, the break (also after shrinking
 *     and growing it again), madvise(MADV_DONTNEED), stack growth, and the tail of a file
 *     page past the end of the file;
 *   - /proc files are text only, and no byte past what read() returned is written, in
 *     one read or in small pieces;
 *   - padding in returned structures is zero (stat, sysinfo, stack_t, utsname, rusage);
 *     getdents64 records hold nothing but their fields, name, NUL and padding;
 *   - no call writes past the length it reports (getcwd, readlinkat, getrandom, read).
 *
 * Under QEMU's user mode (the Linux check) some structures are converted field by field
 * into the caller's buffer, so their padding keeps the caller's bytes: there a padding
 * byte may be zero or the caller's fill; on pagoda it must be zero, as on Linux.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define FILL 0xa5
#define DIRTY_SIZE (32 * MIB)

/* Fails unless every byte of [p, p + len) is zero. */
static void check_zero(const char *what, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != 0)
            check_fail(__FILE__, __LINE__, "%s: byte %zu is %#x, expected 0", what, i, p[i]);
}

/* Padding: zero on pagoda; zero or the caller's fill under QEMU. */
static void check_pad(const char *what, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != 0 && (on_pagoda() || p[i] != FILL))
            check_fail(__FILE__, __LINE__, "%s: padding byte %zu is %#x", what, i, p[i]);
}

/* Fails unless [p, p + len) still holds the fill. */
static void check_fill(const char *what, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != FILL)
            check_fail(__FILE__, __LINE__, "%s: byte %zu past the end was written (%#x)", what,
                       i, p[i]);
}

/* A child fills most of memory with a pattern and exits: its frames go back dirty. */
static void dirty_memory(void *arg)
{
    (void)arg;
    uint8_t *p = map_anon(DIRTY_SIZE);
    memset(p, FILL, DIRTY_SIZE);
    uint8_t *q = sbrk(4 * MIB);
    CHECK(q != (void *)-1);
    memset(q, FILL, 4 * MIB);
}

static void fresh_anon(void)
{
    CHECK_EXITED(run_in_child(dirty_memory, NULL), 0);
    /* Write first (a fresh frame, not the zero page), then look at the rest. */
    uint8_t *p = map_anon(DIRTY_SIZE);
    for (size_t off = 0; off < DIRTY_SIZE; off += PAGE_SIZE) {
        p[off] = 1;
        check_zero("fresh anonymous page", p + off + 1, PAGE_SIZE - 1);
    }
    CHECK_OK(munmap(p, DIRTY_SIZE));

    CHECK_EXITED(run_in_child(dirty_memory, NULL), 0);
    p = mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
             -1, 0);
    CHECK(p != MAP_FAILED);
    check_zero("MAP_POPULATE page", p, 4 * MIB);
    CHECK_OK(munmap(p, 4 * MIB));

    p = mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    for (size_t off = 0; off < 4 * MIB; off += PAGE_SIZE) {
        p[off] = 1;
        check_zero("fresh shared anonymous page", p + off + 1, PAGE_SIZE - 1);
    }
    /* MADV_DONTNEED of private memory: zero again afterwards. */
    uint8_t *q = map_anon(MIB);
    memset(q, FILL, MIB);
    CHECK_OK(madvise(q, MIB, MADV_DONTNEED));
    check_zero("private page after MADV_DONTNEED", q, MIB);
    CHECK_OK(munmap(q, MIB));
    CHECK_OK(munmap(p, 4 * MIB));
}

static void fresh_brk(void)
{
    uint64_t start = (uint64_t)syscall(SYS_brk, 0);
    uint64_t end = start + 2 * MIB;
    CHECK_EQ(syscall(SYS_brk, end), end);
    check_zero("grown break", (uint8_t *)start, 2 * MIB);
    memset((uint8_t *)start, FILL, 2 * MIB);
    /* Shrink and grow back: the released pages come back zero (Linux unmaps them). */
    CHECK_EQ(syscall(SYS_brk, start), start);
    CHECK_EQ(syscall(SYS_brk, end), end);
    check_zero("break grown again", (uint8_t *)start, 2 * MIB);
    CHECK_EQ(syscall(SYS_brk, start), start);
}

/* Reads the stack far below the stack pointer: pages never used, grown on demand. */
static void deep_stack(void *arg)
{
    (void)arg;
    uint64_t sp;
    asm volatile("mv %0, sp" : "=r"(sp));
    volatile uint8_t *low = (volatile uint8_t *)((sp - 2 * MIB) & ~(PAGE_SIZE - 1));
    volatile uint8_t *high = (volatile uint8_t *)((sp - 256 * 1024) & ~(PAGE_SIZE - 1));
    for (volatile uint8_t *q = high - 1; q >= low; q--)
        if (*q != 0)
            check_fail(__FILE__, __LINE__, "stack byte %p (sp %#llx) is %#x", (void *)q,
                       (unsigned long long)sp, *q);
}

static void file_tail(void)
{
    int fd = CHECK_OK(open(DATA_HELLO_PATH, O_RDONLY));
    uint8_t *p = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    size_t n = strlen(DATA_HELLO_TEXT);
    CHECK(memcmp(p, DATA_HELLO_TEXT, n) == 0);
    check_zero("file page past the end of the file", p + n, PAGE_SIZE - n);
    CHECK_OK(munmap(p, PAGE_SIZE));
    CHECK_OK(close(fd));
}

static int is_text(uint8_t c)
{
    return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t';
}

/* Reads the whole of `path` in pieces of `piece` bytes into a filled buffer. */
static void proc_file(const char *path, size_t piece)
{
    static uint8_t buf[64 * 1024];
    memset(buf, FILL, sizeof buf);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        check_fail(__FILE__, __LINE__, "open %s: %s", path, errno_name(errno));
    size_t len = 0;
    for (;;) {
        size_t want = piece;
        if (want > sizeof buf - len)
            want = sizeof buf - len;
        if (want == 0)
            break;
        ssize_t n = read(fd, buf + len, want);
        CHECK(n >= 0);
        if (n == 0)
            break;
        CHECK((size_t)n <= want);
        /* Nothing past what read() reported. */
        check_fill(path, buf + len + n, want - (size_t)n);
        len += (size_t)n;
    }
    CHECK(len > 0);
    for (size_t i = 0; i < len; i++)
        if (!is_text(buf[i]))
            check_fail(__FILE__, __LINE__, "%s (pieces of %zu): byte %zu of %zu is %#x", path,
                       piece, i, len, buf[i]);
    check_fill(path, buf + len, sizeof buf - len);
    /* Reading at the end gives 0 and writes nothing. */
    uint8_t tail[64];
    memset(tail, FILL, sizeof tail);
    CHECK_EQ(read(fd, tail, sizeof tail), 0);
    check_fill(path, tail, sizeof tail);
    CHECK_EQ(pread(fd, tail, sizeof tail, 1 << 30), 0);
    check_fill(path, tail, sizeof tail);
    CHECK_OK(close(fd));
}

static void proc_files(void)
{
    static const char *const files[] = {"/proc/meminfo",     "/proc/self/status",
                                        "/proc/self/maps",   "/proc/vmstat",
                                        "/proc/slabinfo",    "/proc/buddyinfo",
                                        "/proc/1/status"};
    static const size_t pieces[] = {65536, 4096, 100, 7, 1};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++)
        for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++)
            proc_file(files[f], pieces[p]);
}

/* struct stat of the Linux generic ABI (asm-generic/stat.h), byte offsets of padding. */
static void stat_padding(void)
{
    uint8_t st[128 + 64] __attribute__((aligned(8)));
    static const char *const paths[] = {DATA_HELLO_PATH, DATA_DIR_PATH, "/proc/meminfo",
                                        "/proc/self/maps", "/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        memset(st, FILL, sizeof st);
        CHECK_OK(syscall(SYS_newfstatat, AT_FDCWD, paths[i], st, 0));
        check_pad("stat __pad1", st + 40, 8);
        check_pad("stat __pad2", st + 60, 4);
        check_pad("stat __unused4/5", st + 120, 8);
        check_fill("stat", st + 128, 64);
        int fd = CHECK_OK(open(paths[i], O_RDONLY));
        memset(st, FILL, sizeof st);
        CHECK_OK(syscall(SYS_fstat, fd, st));
        check_pad("fstat __pad1", st + 40, 8);
        check_pad("fstat __pad2", st + 60, 4);
        check_pad("fstat __unused4/5", st + 120, 8);
        check_fill("fstat", st + 128, 64);
        CHECK_OK(close(fd));
    }
}

static void struct_padding(void)
{
    /* struct sysinfo: 2 bytes `pad` and 4 of alignment after procs; 4 at the end. */
    uint8_t si[112 + 16] __attribute__((aligned(8)));
    CHECK_EQ(sizeof(struct sysinfo), 112);
    memset(si, FILL, sizeof si);
    CHECK_OK(syscall(SYS_sysinfo, si));
    check_pad("sysinfo pad", si + 82, 6);
    check_pad("sysinfo _f", si + 108, 4);
    check_fill("sysinfo", si + 112, 16);

    /* stack_t: 4 bytes after ss_flags. */
    uint8_t ss[24 + 8] __attribute__((aligned(8)));
    memset(ss, FILL, sizeof ss);
    CHECK_OK(syscall(SYS_sigaltstack, NULL, ss));
    check_pad("stack_t", ss + 12, 4);
    check_fill("stack_t", ss + 24, 8);

    /* utsname: every field NUL-padded to 65 bytes. */
    uint8_t u[sizeof(struct utsname) + 16];
    memset(u, FILL, sizeof u);
    CHECK_OK(syscall(SYS_uname, u));
    for (size_t f = 0; f < 6; f++) {
        const uint8_t *field = u + f * 65;
        size_t n = strnlen((const char *)field, 65);
        CHECK(n < 65);
        for (size_t i = 0; i < n; i++)
            CHECK(is_text(field[i]));
        check_pad("utsname field", field + n, 65 - n);
    }
    check_fill("utsname", u + sizeof(struct utsname), 16);

    /* rusage from wait4: all zero on pagoda (it keeps no usage); filled either way. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(0);
    uint8_t ru[sizeof(struct rusage) + 16] __attribute__((aligned(8)));
    memset(ru, FILL, sizeof ru);
    int status;
    CHECK_EQ(wait4(pid, &status, 0, (struct rusage *)ru), pid);
    if (on_pagoda())
        check_zero("rusage", ru, sizeof(struct rusage));
    check_fill("rusage", ru + sizeof(struct rusage), 16);
}

/* getdents64 records: fields, name, NUL, then padding (zero or untouched) to d_reclen. */
static void dirents(void)
{
    /* Small directories only: listing a large one is slow on pagoda (getdents64 walks
     * the whole archive for every entry: /tests takes tens of seconds). */
    static const char *const dirs[] = {DATA_DIR_PATH, "/proc"};
    static uint8_t buf[16384] __attribute__((aligned(8)));
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        int fd = CHECK_OK(open(dirs[d], O_RDONLY | O_DIRECTORY));
        for (;;) {
            memset(buf, FILL, sizeof buf);
            long n = CHECK_OK(syscall(SYS_getdents64, fd, buf, 700));
            if (n == 0)
                break;
            check_fill("getdents64", buf + n, sizeof buf - (size_t)n);
            for (long off = 0; off < n;) {
                uint16_t reclen;
                memcpy(&reclen, buf + off + 16, 2);
                CHECK(reclen >= 20 && reclen % 8 == 0 && off + reclen <= n);
                const uint8_t *name = buf + off + 19;
                size_t len = strnlen((const char *)name, reclen - 19);
                CHECK(len > 0 && len < (size_t)reclen - 19);
                for (size_t i = 0; i < len; i++)
                    CHECK(is_text(name[i]));
                const uint8_t *pad = name + len + 1;
                for (const uint8_t *q = pad; q < buf + off + reclen; q++)
                    if (*q != 0 && *q != FILL)
                        check_fail(__FILE__, __LINE__, "%s: dirent padding byte %#x", dirs[d],
                                   *q);
                off += reclen;
            }
        }
        CHECK_OK(close(fd));
    }
}

/* Calls that report a length write no further. */
static void exact_lengths(void)
{
    uint8_t buf[512];
    memset(buf, FILL, sizeof buf);
    long n = CHECK_OK(syscall(SYS_getcwd, buf, sizeof buf));
    (void)n;
    size_t len = strlen((char *)buf) + 1;
    check_fill("getcwd", buf + len, sizeof buf - len);

    memset(buf, FILL, sizeof buf);
    n = CHECK_OK(syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", buf, sizeof buf));
    CHECK(n > 0);
    check_fill("readlinkat", buf + n, sizeof buf - (size_t)n);
    memset(buf, FILL, sizeof buf);
    CHECK_EQ(syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", buf, 3), 3);
    check_fill("readlinkat (short)", buf + 3, sizeof buf - 3);

    memset(buf, FILL, sizeof buf);
    CHECK_EQ(syscall(SYS_getrandom, buf, 100, 0), 100);
    check_fill("getrandom", buf + 100, sizeof buf - 100);

    int fd = CHECK_OK(open(DATA_HELLO_PATH, O_RDONLY));
    memset(buf, FILL, sizeof buf);
    CHECK_EQ(read(fd, buf, sizeof buf), (long)strlen(DATA_HELLO_TEXT));
    check_fill("read", buf + strlen(DATA_HELLO_TEXT), sizeof buf - strlen(DATA_HELLO_TEXT));
    CHECK_OK(close(fd));
}

int main(void)
{
    fresh_anon();
    fresh_brk();
    CHECK_EXITED(run_in_child(deep_stack, NULL), 0);
    file_tail();
    proc_files();
    stat_padding();
    struct_padding();
    dirents();
    exact_lengths();
    return 0;
}
