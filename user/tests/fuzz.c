/*
 * fuzz - the in-guest system-call fuzzer (issue 13, item 2).
 *
 * Drives every system call pagoda implements with hostile arguments - 0, -1, unaligned,
 * huge and overflowing lengths, kernel-half addresses (direct map, image, kernel
 * stacks), MMIO-looking addresses, the top of the user half, pointers that straddle
 * mapped/unmapped and read-only/PROT_NONE boundaries, random 64-bit values - weighted
 * toward the memory and process calls; fuzzing children that fork, fuzz and exit; exec of
 * garbage and truncated files. Seeded and reproducible.
 *
 * Environment (the kernel command line's key=value words reach it through /init):
 *   FUZZ_SEEDS=1,2,5-8   seeds to run (default 1)
 *   FUZZ_CALLS=N         calls per seed by the top fuzzing process (default 250)
 *   FUZZ_BATCH=N         calls per batch (default 250): one fuzzing process per batch
 *   FUZZ_FIRST=B         start at batch B (to replay one batch: with FUZZ_CALLS=BATCH)
 *   FUZZ_TRACE=1         print every call before making it (replay of a failing batch)
 *   FUZZ_SKIP=MASK       leave out kinds of call (bit i: kinds[i] below)
 *
 * Each batch runs in a fresh child of this supervisor with a generator seeded from
 * (seed, batch), so `FUZZ_SEEDS=S FUZZ_FIRST=B FUZZ_CALLS=250 FUZZ_TRACE=1` replays the
 * calls of batch B of seed S. After each batch, once the fuzzing processes are reaped, the
 * supervisor checks on pagoda that the process count (sysinfo), MemFree and the slab
 * objects in use (/proc/slabinfo) are back near their baseline; under Linux
 * (qemu-riscv64) it only checks that the fuzzing process itself survived. Output:
 *   FUZZ seed S: N calls (M by children) in B batches, T ms[; MemFree, slab objects]
 *   FUZZ FAIL seed S batch B call I (nr, args of the last call): <what>
 *   FUZZ replay: <the environment that replays the batch>
 *   FUZZ TOTAL calls N (M by children) seeds K failures F      (exit 1 if F > 0)
 *
 * Under Linux the hostile set is narrowed where the host would be harmed or QEMU 7.2's
 * own memory or bugs reached (docs/user-programs.md): calls that change mappings stay
 * inside the fuzzer's arena, which is re-reserved PROT_NONE where unmapped; no
 * MAP_FIXED_NOREPLACE or file MAP_FIXED, no terabyte mmap/brk, no unreadable nanosleep
 * request; only the fuzzer's own file descriptors, files opened read-only, no random
 * ioctl or system-call numbers, prlimit never sets, kill targets only its own children.
 * On pagoda everything is open except calls that would legitimately end or
 * hang the fuzzer: exit, signals to itself or its supervisor, unbounded sleeps, blocking
 * reads of the console, and munmap/mprotect/madvise/MAP_FIXED over its own text, data,
 * heap and stack (the protected list, read from /proc/self/maps).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* ---- Addresses ---- */

#define USER_TOP 0x4000000000UL          /* end of the Sv39 user half */
#define KDIRECT 0xffffffc000000000UL     /* the kernel's direct map */
#define KSTACKS 0xffffffe000000000UL     /* kernel stacks */
#define KIMAGE 0xffffffff80000000UL      /* the kernel image */
#define STACK_ROOM (8 * MIB + PAGE_SIZE) /* stack growth room kept below the stack */

#define ARENA_PAGES 64 /* pages the memory calls work on */
#define EDGE_PAGES 8   /* the boundary pages (see setup_edges) */
#define SINK_SIZE (64 * 1024)
#define MAX_PROT 64
#define MAX_FDS 48
#define MAX_KIDS 8
#define MAX_MAPS 32
#define MAX_DEPTH 2

/* ---- State of one fuzzing process (inherited through fork, then reset) ---- */

struct range {
    uint64_t start, end;
};

static uint64_t rng;
static int on_pg;
static int trace;
static int trace_fd = 2;
static uint64_t cur_seed, cur_batch, cur_call;
static int depth;

static struct range prot_list[MAX_PROT]; /* never unmapped, reprotected or MAP_FIXED over */
static int nprot;
static uint8_t *arena;                   /* ARENA_PAGES pages; memory calls work here */
static uint8_t *edge;                    /* EDGE_PAGES pages of fixed shape */
static uint64_t initial_brk;
static uint8_t sink[SINK_SIZE] __attribute__((aligned(4096))); /* kernel may write here */
static int fds[MAX_FDS];
static int nfds;
static pid_t kids[MAX_KIDS];
static int nkids;
static struct range maps[MAX_MAPS]; /* mappings the fuzzer made that succeeded */
static int nmaps;

/* Shared with the supervisor: the progress of the batch, surviving the fuzzer's death. */
struct shared {
    uint64_t calls;       /* calls made by every fuzzing process of the batch */
    uint64_t child_calls; /* of those, by the fuzzing children */
    uint64_t index;       /* the top fuzzing process's current call */
    uint64_t nr;          /* and its number and arguments */
    uint64_t args[6];
};
static struct shared *shared;

/* ---- Random choices ---- */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t rnd(void)
{
    return xorshift64(&rng);
}

static uint64_t below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static int one_in(uint64_t n)
{
    return below(n) == 0;
}

#define PICK(array) ((array)[below(sizeof(array) / sizeof((array)[0]))])

/* ---- Raw system calls (the return value is the kernel's, -errno on failure) ---- */

static long sys6(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                 uint64_t a5)
{
    register long r0 asm("a0") = (long)a0;
    register long r1 asm("a1") = (long)a1;
    register long r2 asm("a2") = (long)a2;
    register long r3 asm("a3") = (long)a3;
    register long r4 asm("a4") = (long)a4;
    register long r5 asm("a5") = (long)a5;
    register long r7 asm("a7") = nr;
    asm volatile("ecall"
                 : "+r"(r0)
                 : "r"(r1), "r"(r2), "r"(r3), "r"(r4), "r"(r5), "r"(r7)
                 : "memory");
    return r0;
}

/*
 * clone whose child exits at once without touching memory (its stack pointer may be
 * anything the fuzzer passed): returns the child's pid to the parent, or -errno.
 */
static long raw_clone(uint64_t flags, uint64_t stack, uint64_t ptid, uint64_t tls,
                      uint64_t ctid)
{
    register long r0 asm("a0") = (long)flags;
    register long r1 asm("a1") = (long)stack;
    register long r2 asm("a2") = (long)ptid;
    register long r3 asm("a3") = (long)tls;
    register long r4 asm("a4") = (long)ctid;
    register long r7 asm("a7") = SYS_clone;
    asm volatile("ecall\n\t"
                 "bnez a0, 1f\n\t"
                 "li a7, %[exit]\n\t"
                 "ecall\n"
                 "1:"
                 : "+r"(r0), "+r"(r7)
                 : "r"(r1), "r"(r2), "r"(r3), "r"(r4), [exit] "i"(SYS_exit)
                 : "memory");
    return r0;
}

/*
 * fork as a bare system call: glibc's fork() runs its own bookkeeping (atfork handlers,
 * the robust list, the cached thread id, its locks), all of which the fuzzer may have
 * pointed at garbage by then. The child continues in C with its own copy of memory.
 */
static long bare_fork(void)
{
    return sys6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
}

/* ---- Output without allocating ---- */

__attribute__((format(printf, 2, 3))) static void say_fd(int fd, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    if (write(fd, line, (size_t)n) < 0)
        return;
}

/* ---- The protected list ---- */

static void protect(uint64_t start, uint64_t end)
{
    if (nprot < MAX_PROT)
        prot_list[nprot++] = (struct range){start & ~(PAGE_SIZE - 1), end};
}

/* True when [addr, addr + len), page-rounded as munmap would, touches a protected range.
 * Ranges the kernel must refuse (wrapping) count as touching nothing. */
static int hits_protected(uint64_t addr, uint64_t len)
{
    uint64_t start = addr & ~(PAGE_SIZE - 1);
    uint64_t end = addr + len;
    if (end < addr)
        return 0;
    if (len == 0)
        end = addr + 1;
    for (int i = 0; i < nprot; i++)
        if (start < prot_list[i].end && end > prot_list[i].start)
            return 1;
    return 0;
}

static int in_range(uint64_t addr, uint64_t len, uint64_t start, uint64_t end)
{
    return addr >= start && addr <= end && len <= end - addr;
}

/* Every mapping that exists now (text, data, heap, stack, shared page, sink) joins the
 * protected list; the stack keeps room to grow. */
static void protect_current_maps(void)
{
    char buf[4096];
    int fd = open("/proc/self/maps", O_RDONLY);
    CHECK(fd >= 0);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    uint64_t sp = (uint64_t)__builtin_frame_address(0);
    for (char *line = buf; *line;) {
        char *next = strchr(line, '\n');
        uint64_t start = strtoull(line, NULL, 16);
        char *dash = strchr(line, '-');
        uint64_t end = dash ? strtoull(dash + 1, NULL, 16) : start;
        if (start <= sp && sp < end)
            start = start > STACK_ROOM ? start - STACK_ROOM : 0;
        if (end > start)
            protect(start, end);
        if (!next)
            break;
        line = next + 1;
    }
}

/* ---- Hostile values ---- */

/* A kernel-half address: direct map, kernel stacks, image, or the top of memory. */
static uint64_t kernel_addr(void)
{
    static const uint64_t bases[] = {KDIRECT,       KDIRECT + 0x80000000UL,
                                     KDIRECT + 0x10000000UL, KSTACKS,
                                     KIMAGE,        0xfffffffffffff000UL,
                                     0xffffffc080200000UL, 0xffffffff80001000UL};
    uint64_t a = PICK(bases), b;
    switch (below(4)) {
    case 0:
        return a;
    case 1:
        b = a + below(1 << 24);
        break;
    case 2:
        b = a + below(256) * PAGE_SIZE;
        break;
    default:
        b = a - below(64);
        break;
    }
    /* Never wrap around into the user half. */
    return b >= KDIRECT - 64 ? b : a;
}

/* Device-looking and odd addresses: UART, PLIC, CLINT, RTC, RAM base, non-canonical. */
static uint64_t odd_addr(void)
{
    static const uint64_t odd[] = {
        0x10000000UL,         0x0c000000UL,         0x02000000UL,         0x101000UL,
        0x80000000UL,         0x80200000UL,         0x1000UL,             0x8000000000UL,
        0x0000800000000000UL, 0x7fffffffffffffffUL, 0x8000000000000000UL, 0xffff800000000000UL,
        USER_TOP,             USER_TOP - PAGE_SIZE, 0x3ffffff000UL,       0x10001000UL,
    };
    return PICK(odd);
}

/* A length: 0, small, page-ish, huge, overflowing, random. */
static uint64_t len_arg(void)
{
    switch (below(12)) {
    case 0:
        return 0;
    case 1:
        return 1 + below(16);
    case 2:
        return below(PAGE_SIZE);
    case 3:
        return PAGE_SIZE * (1 + below(8));
    case 4:
        return PAGE_SIZE * (1 + below(8)) + (below(3) - 1);
    case 5:
        return (uint64_t)-1 - below(PAGE_SIZE);
    case 6:
        return 1UL << (20 + below(44));
    case 7:
        return 0x8000000000000000UL + below(2) * PAGE_SIZE;
    case 8:
        return rnd();
    case 9:
        return USER_TOP - below(4) * PAGE_SIZE;
    case 10:
        return 0x7fffffffUL + below(3);
    default:
        return below(256);
    }
}

/* Where the edge pages straddle: the last bytes before each boundary. */
static uint64_t edge_addr(uint64_t size)
{
    /* Boundaries: RW|RO, RO|NONE, RW|hole, RW|hole. */
    static const int ends[] = {1, 2, 4, 6};
    uint64_t end = (uint64_t)edge + (uint64_t)PICK(ends) * PAGE_SIZE;
    uint64_t back = size > 1 ? 1 + below(size - 1) : below(16);
    return end - back;
}

/* A valid place for `size` bytes that is not the fuzzer's own state, or 0 if the sink
 * is too small (the kernel would write past it, into the fuzzer's state). */
static uint64_t sink_addr(uint64_t size)
{
    if (size > SINK_SIZE - 8)
        return 0;
    return (uint64_t)sink + below(SINK_SIZE - 8 - size + 1) / 8 * 8 + (one_in(4) ? below(8) : 0);
}

/* An address in the arena: page starts, unaligned, near page ends. */
static uint64_t arena_addr(void)
{
    uint64_t p = (uint64_t)arena + below(ARENA_PAGES) * PAGE_SIZE;
    switch (below(4)) {
    case 0:
    case 1:
        return p;
    case 2:
        return p + below(PAGE_SIZE);
    default:
        return p + PAGE_SIZE - 1 - below(16);
    }
}

/*
 * A pointer argument for a buffer of about `size` bytes. Kinds: NULL and low, kernel
 * half, device-looking, top of the user half, straddling the edge pages, the arena, a
 * mapping the fuzzer made, the sink (valid), random. Never the fuzzer's own state.
 */
static uint64_t ptr_arg(uint64_t size)
{
    for (;;) {
        uint64_t p;
        switch (below(12)) {
        case 0:
            p = below(3) * 8;
            break;
        case 1:
        case 2:
            p = kernel_addr();
            break;
        case 3:
            p = odd_addr();
            break;
        case 4:
            /* The last bytes of the stack (the exec path and its zeros): a buffer there
             * runs past the user half. */
            return USER_TOP - 1 - below(64);
        case 5:
        case 6:
            p = edge_addr(size);
            break;
        case 7:
            p = arena_addr();
            break;
        case 8:
            p = nmaps ? maps[below(nmaps)].start + (one_in(2) ? 0 : below(2 * PAGE_SIZE))
                      : arena_addr();
            break;
        case 9:
        case 10:
            p = sink_addr(size);
            if (p)
                return p;
            continue;
        default:
            p = rnd();
            break;
        }
        /* The whole buffer, as the kernel may write all of it. */
        if (!hits_protected(p, size ? size : 1))
            return p;
    }
}

/* A pointer that is certainly not readable or writable as a whole `size` bytes. */
static uint64_t bad_ptr(uint64_t size)
{
    switch (below(6)) {
    case 0:
        return below(3) * 8;
    case 1:
    case 2:
        return kernel_addr();
    case 3:
        return USER_TOP - (size > 1 ? below(size - 1) : 0);
    case 4:
        return 0x0000800000000000UL + below(1 << 20);
    default: {
        /* Straddle RO|NONE or RW|hole: never wholly accessible. */
        uint64_t end = (uint64_t)edge + (one_in(2) ? 2 : 4) * PAGE_SIZE;
        return end - (size > 1 ? 1 + below(size - 1) : 0);
    }
    }
}

/* A pointer whose very first byte cannot be read: for writes to the console, which must
 * print nothing (a partial write would put garbage before the harness's TEST lines). */
static uint64_t console_bad_ptr(void)
{
    switch (below(5)) {
    case 0:
        return below(3) * 8;
    case 1:
    case 2:
        return kernel_addr();
    case 3:
        return 0x0000800000000000UL + below(1 << 20);
    default:
        return (uint64_t)edge + (one_in(2) ? 2 : 4) * PAGE_SIZE + below(PAGE_SIZE);
    }
}

/* ---- File descriptors ---- */

static const char *const paths[] = {
    "/data/hello.txt", "/data/big.bin",      "/data/dir",         "/data/notelf",
    "/proc/self/maps", "/proc/self/status",  "/proc/meminfo",     "/proc/slabinfo",
    "/proc/vmstat",    "/proc/buddyinfo",    "/proc/1/status",    "/proc/1/maps",
    "/proc/self/exe",  "/",                  "/proc/self/status", "/data/dir/c",
    ".",               "..",                 "",                  "/data/hello.txt/x",
    "data/dir/a",      "/proc/99999/status", "/proc/self",        "/proc",
    "/nonexistent",    "/data/dir/",         "/data//dir/./b",    "/../../data/big.bin",
    "/proc/self/fd",   "/libexec/probe",     "/data/badelf/good", "/proc/0/maps",
};

/* A path argument: a known path, a very long one, or a hostile pointer. */
static uint64_t path_arg(void)
{
    static char long_path[6000];
    /* Long paths are rare: on pagoda each component costs a walk of the whole archive
     * (seconds for a long path, with interrupts off). */
    switch (one_in(4) ? below(8) : 1 + below(7)) {
    case 0: {
        size_t n = 1 + below(sizeof long_path - 1);
        memset(long_path, 'a', n);
        for (size_t i = 0; i < n; i += 1 + below(300))
            long_path[i] = '/';
        long_path[n] = '\0';
        return (uint64_t)long_path;
    }
    case 1:
        return bad_ptr(16);
    case 2: {
        /* A known path that ends right at a boundary: its NUL in the last byte of an RW
         * page followed by a hole or PROT_NONE, or cut off before its NUL. */
        const char *p = PICK(paths);
        size_t n = strlen(p) + 1;
        uint8_t *end = edge + (one_in(2) ? 4 : 6) * PAGE_SIZE;
        int cut = one_in(2);
        memcpy(end - n + cut, p, n - cut);
        return (uint64_t)(end - n + cut);
    }
    default:
        return (uint64_t)PICK(paths);
    }
}

static int is_protected_fd(uint64_t fd)
{
    return (int)fd == trace_fd;
}

/* A descriptor: one the fuzzer opened, or (on pagoda) any number at all. */
static uint64_t fd_arg(void)
{
    uint64_t fd;
    if (nfds && !one_in(on_pg ? 4 : 16))
        fd = (uint64_t)fds[below(nfds)];
    else if (on_pg)
        fd = one_in(4) ? rnd() : below(1100);
    else
        fd = one_in(2) ? (uint64_t)-1 : 4000 + below(100);
    return is_protected_fd(fd) ? (uint64_t)-1 : fd;
}

static void note_fd(long fd)
{
    if (fd < 0 || is_protected_fd((uint64_t)fd))
        return;
    for (int i = 0; i < nfds; i++)
        if (fds[i] == fd)
            return;
    if (nfds < MAX_FDS)
        fds[nfds++] = (int)fd;
    else
        close((int)fd);
}

static void forget_fd(uint64_t fd)
{
    for (int i = 0; i < nfds; i++)
        if ((uint64_t)fds[i] == fd) {
            fds[i] = fds[--nfds];
            return;
        }
}

/* ---- Children ---- */

static void note_kid(long pid)
{
    if (pid > 0 && nkids < MAX_KIDS)
        kids[nkids++] = (pid_t)pid;
}

static void forget_kid(long pid)
{
    for (int i = 0; i < nkids; i++)
        if (kids[i] == pid) {
            kids[i] = kids[--nkids];
            return;
        }
}

/* Reap every child (they all end on their own: nothing a fuzzer does blocks forever). */
static void reap_all(void)
{
    for (;;) {
        int status;
        long r = sys6(SYS_wait4, (uint64_t)-1, (uint64_t)&status, 0, 0, 0, 0);
        if (r == -EINTR)
            continue;
        if (r < 0)
            break;
    }
    nkids = 0;
}

/* ---- One call ---- */

static void record(long nr, const uint64_t a[6])
{
    if (depth == 0) {
        shared->index = cur_call;
        shared->nr = (uint64_t)nr;
        memcpy(shared->args, a, sizeof shared->args);
    }
    if (trace)
        say_fd(trace_fd,
               "fuzz: %llu ms seed %llu batch %llu pid %d call %llu: nr %ld (%#llx, %#llx, "
               "%#llx, %#llx, %#llx, %#llx)\n",
               (unsigned long long)(now_ns() / 1000000), (unsigned long long)cur_seed, (unsigned long long)cur_batch, getpid(),
               (unsigned long long)cur_call, nr, (unsigned long long)a[0],
               (unsigned long long)a[1], (unsigned long long)a[2], (unsigned long long)a[3],
               (unsigned long long)a[4], (unsigned long long)a[5]);
}

static long call(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                 uint64_t a5)
{
    uint64_t a[6] = {a0, a1, a2, a3, a4, a5};
    record(nr, a);
    long r = sys6(nr, a0, a1, a2, a3, a4, a5);
    __atomic_fetch_add(&shared->calls, 1, __ATOMIC_RELAXED);
    if (depth > 0)
        __atomic_fetch_add(&shared->child_calls, 1, __ATOMIC_RELAXED);
    if (trace)
        say_fd(trace_fd, "fuzz:   = %ld\n", r);
    return r;
}

static uint64_t prot_arg(void)
{
    if (on_pg && one_in(8))
        return rnd();
    return below(8) | (one_in(16) ? PROT_GROWSDOWN : 0);
}

static uint64_t mmap_flags(void)
{
    static const uint64_t types[] = {MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, 0, 0xf};
    uint64_t f = one_in(8) ? PICK(types) : (one_in(3) ? MAP_SHARED : MAP_PRIVATE);
    if (!one_in(4))
        f |= MAP_ANONYMOUS;
    if (one_in(4))
        f |= MAP_FIXED;
    if (one_in(8))
        f |= MAP_FIXED_NOREPLACE;
    if (one_in(6))
        f |= MAP_POPULATE;
    if (one_in(8))
        f |= MAP_NORESERVE;
    if (one_in(12))
        f |= MAP_GROWSDOWN;
    if (one_in(12))
        f |= MAP_STACK;
    if (on_pg && one_in(10))
        f |= rnd() & ~0xffUL;
    return f;
}

/* Address and length for a call that changes mappings: the arena mostly; on pagoda also
 * anything that avoids the protected list. */
static void mem_range(uint64_t *addr, uint64_t *len)
{
    for (;;) {
        uint64_t a, l;
        if (one_in(3))
            l = PAGE_SIZE * (1 + below(ARENA_PAGES / 4));
        else
            l = len_arg();
        switch (below(8)) {
        case 0:
            a = kernel_addr();
            break;
        case 1:
            a = odd_addr();
            break;
        case 2:
            a = nmaps ? maps[below(nmaps)].start : arena_addr();
            break;
        case 3:
            a = one_in(2) ? rnd() : rnd() & 0x3ffffff000UL;
            break;
        default:
            a = arena_addr();
            break;
        }
        if (hits_protected(a, l))
            continue;
        if (!on_pg) {
            /* Linux (QEMU): only inside the arena or refused outright by the first
             * checks (unaligned, empty): the emulator's own memory shares the space, and
             * QEMU 7.2 itself trips over ranges at the top of the address space. */
            uint64_t ar = (uint64_t)arena;
            int inside = in_range(a & ~(PAGE_SIZE - 1), ((a & (PAGE_SIZE - 1)) + l + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1),
                                  ar, ar + ARENA_PAGES * PAGE_SIZE);
            int refused = ((a & (PAGE_SIZE - 1)) || l == 0) && a < USER_TOP;
            if (!inside && !refused)
                continue;
        }
        *addr = a;
        *len = l;
        return;
    }
}

/* Records a mapping the fuzzer made; returns its slot, or -1. */
static int note_map(long r, uint64_t len)
{
    if (r < 0 || (uint64_t)r >= USER_TOP)
        return -1;
    struct range m = {(uint64_t)r, (uint64_t)r + len};
    int slot = nmaps < MAX_MAPS ? nmaps++ : (int)below(MAX_MAPS);
    maps[slot] = m;
    return slot;
}

/*
 * Under Linux (QEMU) the guest and the emulator share one address space: a page the
 * guest unmaps may next hold the emulator's own memory, which the fuzzer's later calls
 * on the arena would then clobber. So there, arena pages the fuzzer unmapped (or a failed
 * MAP_FIXED may have unmapped) are reserved again at once, PROT_NONE.
 */
static void rereserve(uint64_t a, uint64_t l)
{
    if (on_pg)
        return;
    uint64_t ar = (uint64_t)arena, end = ar + ARENA_PAGES * PAGE_SIZE;
    uint64_t start = a & ~(PAGE_SIZE - 1);
    uint64_t stop = (a + l + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (stop <= start || start >= end || stop <= ar)
        return;
    if (start < ar)
        start = ar;
    if (stop > end)
        stop = end;
    sys6(SYS_mmap, start, stop - start, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
         (uint64_t)-1, 0);
}

static void do_mmap(void)
{
    uint64_t addr, len, flags = mmap_flags();
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) || one_in(2)) {
        mem_range(&addr, &len);
    } else {
        addr = on_pg ? (one_in(2) ? 0 : ptr_arg(0)) : 0;
        len = one_in(2) ? PAGE_SIZE * (1 + below(32)) : len_arg();
    }
    /* MAP_POPULATE of a large range is issue 13's known stall: keep it small. */
    if ((flags & MAP_POPULATE) && len > 64 * PAGE_SIZE)
        len = PAGE_SIZE * (1 + below(64));
    if (!on_pg) {
        /* QEMU keeps per-page records of every guest mapping: a mapping of terabytes
         * takes it minutes. The kernel under test gets the huge lengths. */
        if (len > 64 * MIB && len < (uint64_t)-PAGE_SIZE)
            len = PAGE_SIZE * (1 + below(64));
        /* QEMU 7.2 maps MAP_FIXED_NOREPLACE outside the guest's space and leaves a
         * failed MAP_FIXED file mapping half done (its own later writes there crash it). */
        flags &= ~(uint64_t)(MAP_GROWSDOWN | MAP_FIXED_NOREPLACE);
        if (!(flags & MAP_ANONYMOUS))
            flags &= ~(uint64_t)MAP_FIXED;
        if (!(flags & MAP_FIXED))
            addr = 0;
    }
    /* The length may have changed since mem_range checked it (a wrapping length that
     * touched nothing becomes a small one that may): check the final range. */
    if ((flags & MAP_FIXED) && hits_protected(addr, len))
        return;
    uint64_t fd = (flags & MAP_ANONYMOUS) && !one_in(4) ? (uint64_t)-1 : fd_arg();
    static const uint64_t offs[] = {0, PAGE_SIZE, 1, 5 * PAGE_SIZE, (uint64_t)-PAGE_SIZE,
                                    1UL << 40, 0x7ffffffffffff000UL};
    uint64_t off = one_in(2) ? 0 : PICK(offs);
    long r = call(SYS_mmap, addr, len, prot_arg(), flags, fd, off);
    int slot = note_map(r, len);
    if (r < 0 && (flags & MAP_FIXED))
        rereserve(addr, len);
    /* The fuzzer does not keep what it maps: most mappings go at once. */
    if (slot >= 0 && !hits_protected((uint64_t)r, len) && one_in(2)) {
        call(SYS_munmap, (uint64_t)r, len, 0, 0, 0, 0);
        rereserve((uint64_t)r, len);
        maps[slot] = maps[--nmaps];
    }
}

/* mremap (pagoda only: QEMU moves guest ranges next to its own memory): a range of the
 * arena or a mapping, resized or moved, fixed targets clear of the fuzzer's own memory. */
static void do_mremap(void)
{
    static const uint64_t flags_of[] = {
        0, MREMAP_MAYMOVE, MREMAP_MAYMOVE | MREMAP_FIXED, MREMAP_MAYMOVE | 4 /* DONTUNMAP */,
        MREMAP_FIXED, 8};
    uint64_t a, l, na, nl;
    mem_range(&a, &l);
    mem_range(&na, &nl);
    uint64_t flags = one_in(8) ? rnd() : PICK(flags_of);
    uint64_t new_len = one_in(2) ? nl : l;
    if ((flags & MREMAP_FIXED) && hits_protected(na, new_len))
        return;
    note_map(call(SYS_mremap, a, l, new_len, flags, na, 0), new_len);
}

static void do_munmap(void)
{
    if (on_pg && one_in(2)) {
        do_mremap();
        return;
    }
    uint64_t a, l;
    mem_range(&a, &l);
    if (call(SYS_munmap, a, l, 0, 0, 0, 0) == 0)
        rereserve(a, l);
}

static void do_mprotect(void)
{
    uint64_t a, l;
    mem_range(&a, &l);
    call(SYS_mprotect, a, l, prot_arg(), 0, 0, 0);
}

static void do_madvise(void)
{
    static const uint64_t advice[] = {MADV_NORMAL,   MADV_RANDOM,   MADV_SEQUENTIAL,
                                      MADV_WILLNEED, MADV_DONTNEED, MADV_FREE,
                                      MADV_REMOVE,   MADV_DONTFORK, MADV_DOFORK,
                                      MADV_COLD,     MADV_PAGEOUT,  MADV_DONTNEED};
    uint64_t a, l;
    mem_range(&a, &l);
    uint64_t adv = on_pg && one_in(6) ? (one_in(2) ? rnd() : below(128)) : PICK(advice);
    call(SYS_madvise, a, l, adv, 0, 0, 0);
}

static void do_brk(void)
{
    uint64_t v;
    switch (below(6)) {
    case 0:
        v = 0;
        break;
    case 1:
        v = initial_brk + below(64 * PAGE_SIZE);
        break;
    case 2:
        v = initial_brk + (1UL << (20 + below(20)));
        break;
    case 3:
        v = kernel_addr();
        break;
    case 4:
        v = initial_brk;
        break;
    default:
        v = one_in(2) ? rnd() : (uint64_t)-1;
        break;
    }
    /* Below the starting break lies the fuzzer's own TLS (static glibc takes it with
     * sbrk): shrinking over it is legitimate and would kill the fuzzer. */
    if (v != 0 && v < initial_brk && v > initial_brk - (64 * MIB))
        v = initial_brk;
    /* As for mmap: QEMU takes minutes over a break terabytes away. */
    if (!on_pg && v > initial_brk + 64 * MIB && v < USER_TOP)
        v = initial_brk + below(64 * MIB);
    call(SYS_brk, v, 0, 0, 0, 0, 0);
}

/* ---- Process calls ---- */

static void fuzz_calls(uint64_t n);

static void do_fork_fuzz(void)
{
    if (depth >= MAX_DEPTH || nkids >= MAX_KIDS)
        return;
    uint64_t child_rng = rnd() | 1;
    uint64_t n = 10 + below(60);
    uint64_t a[6] = {SIGCHLD, 0, 0, 0, 0, 0};
    record(SYS_clone, a);
    long pid = bare_fork();
    __atomic_fetch_add(&shared->calls, 1, __ATOMIC_RELAXED);
    if (trace && pid != 0)
        say_fd(trace_fd, "fuzz:   = %ld\n", pid);
    if (pid == 0) {
        rng = child_rng;
        depth++;
        nkids = 0;
        fuzz_calls(n);
        reap_all();
        _exit(0);
    }
    note_kid(pid);
}

static void do_clone(void)
{
    if (nkids >= MAX_KIDS)
        return;
    static const uint64_t bits[] = {CLONE_VM,           CLONE_FS,           CLONE_FILES,
                                    CLONE_SIGHAND,      CLONE_VFORK,        CLONE_THREAD,
                                    CLONE_SETTLS,       CLONE_NEWNS,
                                    CLONE_PIDFD,        CLONE_CHILD_SETTID, CLONE_PARENT_SETTID,
                                    CLONE_CHILD_CLEARTID};
    uint64_t flags = one_in(4) ? below(65) : SIGCHLD;
    if (on_pg) {
        for (int i = 0; i < 3; i++)
            if (one_in(3))
                flags |= PICK(bits);
        if (one_in(10))
            flags = rnd();
        /* A sibling of the fuzzer would be its parent's child (the test runner's). */
        flags &= ~(uint64_t)CLONE_PARENT;
    } else {
        static const uint64_t safe[] = {CLONE_CHILD_SETTID, CLONE_PARENT_SETTID,
                                        CLONE_CHILD_CLEARTID};
        if (one_in(2))
            flags |= PICK(safe);
        flags = (flags & ~0xffUL) | SIGCHLD;
    }
    uint64_t stack = on_pg && one_in(3) ? ptr_arg(16) : 0;
    uint64_t ptid = ptr_arg(4), ctid = ptr_arg(4), tls = on_pg ? rnd() : 0;
    uint64_t a[6] = {flags, stack, ptid, tls, ctid, 0};
    record(SYS_clone, a);
    long r = raw_clone(flags, stack, ptid, tls, ctid);
    __atomic_fetch_add(&shared->calls, 1, __ATOMIC_RELAXED);
    if (trace)
        say_fd(trace_fd, "fuzz:   = %ld\n", r);
    /* A thread is part of the fuzzer: signalling it would signal the fuzzer. */
    if (!(flags & CLONE_THREAD))
        note_kid(r);
}

/* Files to execute: garbage, truncated and malformed ELF files, non-executables,
 * directories, missing ones, a real program. */
static const char *const exec_paths[] = {
    "/data/notelf",                "/data/hello.txt",          "/data/big.bin",
    "/data/dir",                   "/nonexistent",             "/data/badelf/trunc_ehdr",
    "/data/badelf/trunc_phdrs",    "/data/badelf/phoff_past_end", "/data/badelf/phnum_huge",
    "/data/badelf/phnum_zero",     "/data/badelf/phentsize_bad", "/data/badelf/load_past_eof",
    "/data/badelf/vaddr_kernel_half", "/data/badelf/memsz_huge", "/data/badelf/overlap",
    "/data/badelf/incongruent",    "/data/badelf/entry_unmapped", "/data/badelf/no_load",
    "/data/badelf/memsz_wrap",     "/data/badelf/entry_in_data", "/data/badelf/interp",
    "/data/badelf/class32",        "/libexec/probe",           "/data/badelf/good_tiny",
};

static void do_execve(void)
{
    static char *good_argv[] = {"probe", "exit", "0", NULL};
    static char *bad_elem_argv[4];
    static char *many[2048];
    static char big_arg[70000];
    uint64_t path = one_in(6) ? path_arg() : (uint64_t)PICK(exec_paths);
    uint64_t argv, envp = 0;
    switch (below(6)) {
    case 0:
        argv = (uint64_t)good_argv;
        break;
    case 1:
        bad_elem_argv[0] = "probe";
        bad_elem_argv[1] = (char *)bad_ptr(8);
        bad_elem_argv[2] = NULL;
        argv = (uint64_t)bad_elem_argv;
        break;
    case 2:
        argv = bad_ptr(8);
        break;
    case 3: {
        /* Many large strings: E2BIG territory. */
        memset(big_arg, 'x', sizeof big_arg - 1);
        size_t n = 1 + below(sizeof many / sizeof many[0] - 1);
        for (size_t i = 0; i < n; i++)
            many[i] = big_arg + below(sizeof big_arg - 1);
        many[n] = NULL;
        argv = (uint64_t)many;
        break;
    }
    case 4:
        argv = 0;
        break;
    default: {
        /* The array itself straddles a boundary. */
        uint64_t *end = (uint64_t *)(edge + 4 * PAGE_SIZE);
        end[-1] = (uint64_t)"probe";
        argv = (uint64_t)(end - 1);
        break;
    }
    }
    if (one_in(2))
        envp = one_in(2) ? bad_ptr(8) : (uint64_t)good_argv;
    /* In the fuzzer itself only when the call must fail before the point of no return
     * (a bad path or argv); otherwise in a child that exits if execve returns. */
    if (argv == 0 || one_in(3)) {
        /* A kernel-half argv fails whatever the path is. */
        if (one_in(2))
            path = bad_ptr(8);
        call(SYS_execve, path, kernel_addr(), envp, 0, 0, 0);
        return;
    }
    if (nkids >= MAX_KIDS)
        return;
    uint64_t a[6] = {path, argv, envp, 0, 0, 0};
    record(SYS_execve, a);
    long pid = bare_fork();
    __atomic_fetch_add(&shared->calls, 1, __ATOMIC_RELAXED);
    if (trace && pid != 0)
        say_fd(trace_fd, "fuzz:   = %ld\n", pid);
    if (pid == 0) {
        sys6(SYS_execve, path, argv, envp, 0, 0, 0);
        _exit(127);
    }
    note_kid(pid);
}

static void do_wait4(void)
{
    uint64_t pid;
    switch (below(5)) {
    case 0:
    case 1:
        pid = nkids ? (uint64_t)kids[below(nkids)] : (uint64_t)-1;
        break;
    case 2:
        pid = (uint64_t)-1;
        break;
    case 3:
        pid = one_in(2) ? 0 : (uint64_t)(int64_t)INT32_MIN;
        break;
    default:
        pid = on_pg ? rnd() : 0x7ffffff0;
        break;
    }
    uint64_t options = WNOHANG;
    /* Blocking only when a child exists to be waited for: the fuzzer's children end. */
    if (nkids && one_in(3))
        options = 0;
    if (one_in(6))
        options |= on_pg ? (rnd() & ~(uint64_t)WNOHANG) | (nkids ? 0 : WNOHANG)
                         : (uint64_t)PICK(((uint64_t[]){__WALL, __WCLONE, WUNTRACED, WCONTINUED, 0x12345678}));
    if (!nkids)
        options |= WNOHANG;
    long r = call(SYS_wait4, pid, ptr_arg(4), options, one_in(2) ? 0 : ptr_arg(144), 0, 0);
    if (r > 0)
        forget_kid(r);
    if (r == -ECHILD)
        nkids = 0;
}

static void do_kill(void)
{
    static const int harmless[] = {0, SIGCHLD, SIGURG, SIGWINCH, SIGCONT};
    uint64_t pid, sig = 0;
    switch (below(5)) {
    case 0:
    case 1:
        if (!nkids)
            return;
        pid = (uint64_t)kids[below(nkids)];
        do
            sig = below(65);
        while (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU);
        break;
    case 2:
        pid = (uint64_t)getpid();
        sig = (uint64_t)PICK(harmless);
        break;
    case 3:
        pid = one_in(2) ? 0x7ffffff0 : (uint64_t)INT32_MAX;
        sig = one_in(2) ? below(65) : rnd();
        break;
    default:
        /* Init (which refuses), groups that do not exist, INT_MIN: never the
         * fuzzer's own group or everyone (kill(0) and kill(-1) would end the run). */
        if (!on_pg)
            return;
        {
            static const uint64_t who[] = {1, (uint64_t)INT32_MIN, (uint64_t)-1000,
                                           (uint64_t)-0x7ffffff0};
            pid = PICK(who);
        }
        sig = one_in(2) ? below(65) : rnd();
        break;
    }
    switch (below(3)) {
    case 0:
        call(SYS_kill, pid, sig, 0, 0, 0, 0);
        break;
    case 1:
        call(SYS_tkill, pid, sig, 0, 0, 0, 0);
        break;
    default:
        call(SYS_tgkill, pid, pid, sig, 0, 0, 0);
        break;
    }
}

/* ---- File calls ---- */

static uint64_t dirfd_arg(void)
{
    return one_in(2) ? (uint64_t)AT_FDCWD : fd_arg();
}

static void do_openat(void)
{
    uint64_t flags;
    if (on_pg && one_in(3)) {
        flags = one_in(2) ? rnd() : below(0x400000);
    } else {
        static const uint64_t bits[] = {O_DIRECTORY, O_CLOEXEC, O_NOFOLLOW, O_NONBLOCK,
                                        O_NOCTTY,    O_PATH,    O_LARGEFILE, O_NOATIME};
        flags = O_RDONLY;
        for (int i = 0; i < 2; i++)
            if (one_in(2))
                flags |= PICK(bits);
        if (on_pg && one_in(4))
            flags |= PICK(((uint64_t[]){O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, 3}));
    }
    long r = call(SYS_openat, dirfd_arg(), path_arg(), flags, rnd() & 07777, 0, 0);
    note_fd(r);
}

static void do_close(void)
{
    uint64_t fd = fd_arg();
    call(SYS_close, fd, 0, 0, 0, 0, 0);
    forget_fd(fd);
}

/* An iovec array of up to `max` entries with hostile bases and lengths, in the sink or
 * straddling an edge; returns its address and sets *count (sometimes hostile too). */
static uint64_t iov_arg(uint64_t *count)
{
    uint64_t n = below(8) + 1;
    if (one_in(4))
        n = PICK(((uint64_t[]){0, 1024, 1025, (uint64_t)-1, 1UL << 32, 4096}));
    struct iovec *v = (struct iovec *)(sink + SINK_SIZE - 8 * sizeof(struct iovec));
    int room = 8;
    if (one_in(6)) {
        /* The array crosses into a hole: only its first entry is readable. */
        v = (struct iovec *)(edge + 4 * PAGE_SIZE - sizeof(struct iovec));
        room = 1;
    }
    for (int i = 0; i < room; i++) {
        uint64_t len = len_arg();
        v[i].iov_base = (void *)ptr_arg(len);
        v[i].iov_len = len;
    }
    *count = n;
    if (one_in(10))
        return bad_ptr(16);
    return (uint64_t)v;
}

static void do_read(void)
{
    uint64_t len = len_arg();
    switch (below(4)) {
    case 0:
        call(SYS_read, fd_arg(), ptr_arg(len), len, 0, 0, 0);
        break;
    case 1: {
        static const uint64_t offs[] = {0, 1, 4096, 20000, (uint64_t)-1, 1UL << 62};
        call(SYS_pread64, fd_arg(), ptr_arg(len), len, one_in(2) ? below(30000) : PICK(offs),
             0, 0);
        break;
    }
    case 2: {
        uint64_t n, v = iov_arg(&n);
        call(SYS_readv, fd_arg(), v, n, 0, 0, 0);
        break;
    }
    default:
        call(SYS_getdents64, fd_arg(), ptr_arg(len), len, 0, 0, 0);
        break;
    }
}

static void do_write(void)
{
    uint64_t len = len_arg();
    /* To the console only from memory that cannot be read (no garbage on the console). */
    int console = one_in(2);
    uint64_t fd = console ? (uint64_t)trace_fd : fd_arg();
    uint64_t buf = console ? console_bad_ptr() : ptr_arg(len);
    if (console && len == 0)
        len = 1;
    if (one_in(3) && !console) {
        uint64_t n, v = iov_arg(&n);
        call(SYS_writev, fd, v, n, 0, 0, 0);
    } else if (one_in(3)) {
        struct iovec *v = (struct iovec *)sink;
        uint64_t n = 1 + below(4);
        for (uint64_t i = 0; i < n; i++) {
            v[i].iov_base = (void *)(console ? console_bad_ptr() : bad_ptr(16));
            v[i].iov_len = 1 + below(64);
        }
        call(SYS_writev, fd, (uint64_t)v, n, 0, 0, 0);
    } else {
        call(SYS_write, fd, buf, len, 0, 0, 0);
    }
}

static void do_fs_misc(void)
{
    switch (below(12)) {
    case 0:
        call(SYS_lseek, fd_arg(), one_in(2) ? below(30000) : rnd(), below(6), 0, 0, 0);
        break;
    case 1:
        call(SYS_newfstatat, dirfd_arg(), path_arg(), ptr_arg(128),
             PICK(((uint64_t[]){0, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, AT_NO_AUTOMOUNT, 0x12345})),
             0, 0);
        break;
    case 2:
        call(SYS_fstat, fd_arg(), ptr_arg(128), 0, 0, 0, 0);
        break;
    case 3: {
        uint64_t len = len_arg();
        call(SYS_readlinkat, dirfd_arg(), path_arg(), ptr_arg(len), len, 0, 0);
        break;
    }
    case 4: {
        static const uint64_t safe[] = {0x5401 /* TCGETS */, 0x5413 /* TIOCGWINSZ */,
                                        0x541b /* FIONREAD */, 0};
        uint64_t fd = fd_arg();
        uint64_t req = on_pg && one_in(2) ? rnd() : PICK(safe);
        call(SYS_ioctl, fd, req, ptr_arg(64), 0, 0, 0);
        if (one_in(2))
            call(SYS_ioctl, (uint64_t)trace_fd, PICK(safe), bad_ptr(64), 0, 0, 0);
        break;
    }
    case 5: {
        long r = call(SYS_dup, fd_arg(), 0, 0, 0, 0, 0);
        note_fd(r);
        break;
    }
    case 6: {
        /* Under Linux only over the fuzzer's own descriptors (QEMU has its own). */
        if (!on_pg && !nfds)
            return;
        uint64_t to = on_pg ? (one_in(3) ? rnd() : below(1100)) : (uint64_t)fds[below(nfds)];
        if (is_protected_fd(to))
            return;
        long r = call(SYS_dup3, fd_arg(), to, one_in(2) ? 0 : (one_in(2) ? O_CLOEXEC : rnd()), 0, 0, 0);
        note_fd(r);
        break;
    }
    case 7: {
        static const uint64_t cmds[] = {F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL,
                                        F_SETFL};
        uint64_t cmd = on_pg && one_in(3) ? (one_in(2) ? rnd() : below(1100)) : PICK(cmds);
        uint64_t arg = one_in(2) ? below(2000) : rnd();
        long r = call(SYS_fcntl, fd_arg(), cmd, arg, 0, 0, 0);
        if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
            note_fd(r);
        break;
    }
    case 8: {
        uint64_t len = len_arg();
        call(SYS_getcwd, ptr_arg(len), len, 0, 0, 0, 0);
        break;
    }
    case 9: {
        static const char *const dirs[] = {"/", "/proc/self", "/proc", "/data/dir", "/data/dir/",
                                           "/data/hello.txt", "/nonexistent", ".."};
        call(SYS_chdir, one_in(3) ? path_arg() : (uint64_t)PICK(dirs), 0, 0, 0, 0, 0);
        break;
    }
    case 10:
        call(SYS_faccessat, dirfd_arg(), path_arg(), one_in(2) ? below(8) : rnd(), 0, 0, 0);
        break;
    default:
        if (one_in(3)) {
            do_close();
        } else if (nfds > MAX_FDS / 2) {
            uint64_t fd = (uint64_t)fds[below(nfds)];
            call(SYS_close, fd, 0, 0, 0, 0, 0);
            forget_fd(fd);
        } else {
            do_openat();
        }
        break;
    }
}

/* ---- Pipes, poll and signal state ---- */

/*
 * A pipe, used and closed within the call: hostile writes (with the read end open, so no
 * SIGPIPE) and reads (non-blocking, or blocking only for what is in the pipe), ppoll with
 * a zero or invalid timeout (never NULL: that waits for ever), then both ends closed. Its
 * descriptors never join the pool: a blocking read of an empty pipe would hang.
 */
static void do_pipe(void)
{
    switch (below(4)) {
    case 0: {
        /* Hostile arguments only. */
        static const uint64_t flags[] = {0, O_CLOEXEC, O_NONBLOCK, O_DIRECT, 0x12345678};
        uint64_t p = on_pg ? bad_ptr(8) : (one_in(2) ? 0 : bad_ptr(8));
        call(SYS_pipe2, p, on_pg && one_in(3) ? rnd() : PICK(flags), 0, 0, 0, 0);
        return;
    }
    case 1: {
        uint64_t set = one_in(2) ? (uint64_t)(sink + 64) : ptr_arg(8);
        call(SYS_rt_sigpending, set, one_in(6) ? rnd() : 8, 0, 0, 0, 0);
        return;
    }
    case 2:
        /* Returns only when a signal arrives: an unreadable mask or a wrong size only. */
        if (on_pg)
            call(SYS_rt_sigsuspend, one_in(2) ? bad_ptr(8) : (uint64_t)(sink + 64),
                 one_in(2) ? 0 : 9 + below(100), 0, 0, 0, 0);
        return;
    default:
        break;
    }
    int pfd[2];
    uint64_t fl = O_NONBLOCK | (one_in(2) ? O_CLOEXEC : 0);
    if (call(SYS_pipe2, (uint64_t)pfd, fl, 0, 0, 0, 0) != 0)
        return;
    for (int i = 0; i < 4; i++) {
        uint64_t len = len_arg();
        switch (below(5)) {
        case 0:
            call(SYS_write, (uint64_t)pfd[1], ptr_arg(len), len, 0, 0, 0);
            break;
        case 1:
            call(SYS_read, (uint64_t)pfd[0], ptr_arg(len), len, 0, 0, 0);
            break;
        case 2: {
            uint64_t n, v = iov_arg(&n);
            call(one_in(2) ? SYS_writev : SYS_readv, (uint64_t)pfd[one_in(2)], v, n, 0, 0,
                 0);
            break;
        }
        case 3: {
            /* ppoll on both ends and a hostile descriptor, zero or unreadable timeout. */
            static struct timespec zero;
            struct pollfd_k {
                int fd;
                short events, revents;
            } *pf = (struct pollfd_k *)(sink + 256);
            pf[0] = (struct pollfd_k){pfd[0], (short)rnd(), 0};
            pf[1] = (struct pollfd_k){pfd[1], (short)rnd(), 0};
            pf[2] = (struct pollfd_k){(int)fd_arg(), (short)rnd(), 0};
            uint64_t fds = one_in(4) ? ptr_arg(24) : (uint64_t)pf;
            uint64_t n = one_in(4) ? len_arg() : 1 + below(3);
            uint64_t tmo = on_pg && one_in(3) ? bad_ptr(16) : (uint64_t)&zero;
            /* bad_ptr may give NULL: no timeout, a wait for ever (seed 304 hung so). */
            if (tmo == 0)
                tmo = (uint64_t)&zero;
            call(SYS_ppoll, fds, n, tmo, one_in(2) ? 0 : ptr_arg(8), one_in(4) ? rnd() : 8, 0);
            break;
        }
        default:
            call(SYS_fcntl, (uint64_t)pfd[one_in(2)], one_in(2) ? F_GETFL : F_GETFD, 0, 0, 0,
                 0);
            break;
        }
    }
    call(SYS_close, (uint64_t)pfd[1], 0, 0, 0, 0, 0);
    call(SYS_close, (uint64_t)pfd[0], 0, 0, 0, 0, 0);
}

/* ---- Time and system calls ---- */

/* A timespec pointer for a sleep: a short valid one, an invalid one, or one that cannot
 * be read whole (never a readable garbage one: it could sleep for ever). */
static uint64_t sleep_ts(int bad_ok)
{
    static struct timespec ts[8];
    struct timespec *t = &ts[below(8)];
    switch (below(bad_ok ? 6 : 4)) {
    case 0:
        *t = (struct timespec){0, (long)below(500000)};
        return (uint64_t)t;
    case 1:
        *t = (struct timespec){0, 1000000000L + (long)below(5)};
        return (uint64_t)t;
    case 2:
        *t = (struct timespec){-1 - (long)below(100), 0};
        return (uint64_t)t;
    case 3:
        *t = (struct timespec){0, -1 - (long)below(100)};
        return (uint64_t)t;
    default:
        return bad_ptr(sizeof(struct timespec));
    }
}

static void do_time(void)
{
    static const uint64_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                                      CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW,
                                      CLOCK_REALTIME_COARSE, CLOCK_BOOTTIME, 12345,
                                      (uint64_t)-1, (uint64_t)-6, 11};
    uint64_t clk = one_in(5) ? rnd() : PICK(clocks);
    switch (below(6)) {
    case 0:
        /* QEMU 7.2's nanosleep ignores a failed read of the request and sleeps for
         * whatever its stack held (hours): no unreadable request under Linux. */
        call(SYS_nanosleep, sleep_ts(on_pg), ptr_arg(16), 0, 0, 0, 0);
        break;
    case 1: {
        /* Absolute sleeps use a time in the past (or an invalid one): they end at once. */
        uint64_t flags = one_in(2) ? TIMER_ABSTIME : (one_in(2) ? 0 : rnd());
        if (!on_pg)
            flags &= TIMER_ABSTIME;
        uint64_t ts = sleep_ts(1);
        /* Linux sleeps on a CPU-time clock until the (sleeping) process has used that
         * much CPU time: for ever. Wall clocks and invalid ids only. */
        static const uint64_t sleep_clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME,
                                                CLOCK_TAI, 12345, (uint64_t)-1};
        clk = on_pg && one_in(4) ? clk : PICK(sleep_clocks);
        call(SYS_clock_nanosleep, clk, flags, ts, ptr_arg(16), 0, 0);
        break;
    }
    case 2:
        call(SYS_clock_gettime, clk, ptr_arg(16), 0, 0, 0, 0);
        break;
    case 3:
        call(SYS_clock_getres, clk, ptr_arg(16), 0, 0, 0, 0);
        break;
    case 4:
        call(SYS_gettimeofday, ptr_arg(16), ptr_arg(8), 0, 0, 0, 0);
        break;
    default:
        call(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
        break;
    }
}

static void do_system(void)
{
    switch (below(12)) {
    case 0:
        call(SYS_uname, ptr_arg(390), 0, 0, 0, 0, 0);
        break;
    case 1: {
        uint64_t len = len_arg();
        uint64_t buf = ptr_arg(len);
        /* A valid buffer is written for its whole length: bounded, to spare the memory. */
        if (len > 256 * 1024)
            len = below(256 * 1024);
        uint64_t flags = one_in(2) ? below(8) : rnd();
        call(SYS_getrandom, buf, len, flags, 0, 0, 0);
        break;
    }
    case 2:
        call(SYS_sysinfo, ptr_arg(112), 0, 0, 0, 0, 0);
        break;
    case 3: {
        /* Signal actions: only SIG_DFL/SIG_IGN (with any flags and mask), as signals are
         * delivered: a random handler would run at a random address. */
        static uint64_t act[4];
        uint64_t sig = one_in(4) ? rnd() : below(66);
        uint64_t a;
        if (one_in(2)) {
            act[0] = below(2);
            act[1] = on_pg ? rnd() : 0;
            act[2] = on_pg ? rnd() : 0;
            act[3] = 0;
            a = (uint64_t)act;
            if (sig == SIGCHLD && !on_pg)
                act[0] = 0;
        } else {
            a = one_in(2) ? 0 : bad_ptr(32);
        }
        call(SYS_rt_sigaction, sig, a, ptr_arg(32), one_in(6) ? rnd() : 8, 0, 0);
        break;
    }
    case 4: {
        uint64_t set = one_in(2) ? (uint64_t)(sink + 64) : ptr_arg(8);
        call(SYS_rt_sigprocmask, one_in(4) ? rnd() : below(4), one_in(3) ? 0 : set,
             ptr_arg(8), one_in(6) ? rnd() : 8, 0, 0);
        break;
    }
    case 5: {
        static uint64_t ss[3];
        ss[0] = (uint64_t)sink;
        ss[1] = below(4);
        ss[2] = len_arg();
        call(SYS_sigaltstack, one_in(2) ? (uint64_t)ss : ptr_arg(24), ptr_arg(24), 0, 0, 0,
             0);
        break;
    }
    case 6: {
        uint64_t res = one_in(4) ? rnd() : below(20);
        /* Limits are never set (they would take effect, on pagoda as under Linux): a
         * new limit is absent or a bad pointer. */
        uint64_t newp = one_in(2) ? 0 : bad_ptr(16);
        uint64_t pid = on_pg ? (one_in(3) ? rnd() : below(3)) : 0;
        call(SYS_prlimit64, pid, res, newp, ptr_arg(16), 0, 0);
        break;
    }
    case 7:
        call(SYS_getrlimit, one_in(4) ? rnd() : below(20), ptr_arg(16), 0, 0, 0, 0);
        break;
    case 8: {
        static const long ids[] = {SYS_getpid, SYS_getppid, SYS_gettid, SYS_getuid,
                                   SYS_geteuid, SYS_getgid, SYS_getegid, SYS_umask};
        call(PICK(ids), rnd() & 0777, 0, 0, 0, 0, 0);
        break;
    }
    case 9:
        call(SYS_set_tid_address, ptr_arg(4), 0, 0, 0, 0, 0);
        break;
    case 10:
        call(SYS_set_robust_list, ptr_arg(24), one_in(2) ? 24 : len_arg(), 0, 0, 0, 0);
        break;
    default:
        if (on_pg) {
            /* pid 1 only: EPERM for everyone else. Then the calls pagoda lacks. */
            if (one_in(4)) {
                call(SYS_reboot, 0xfee1dead, 672274793, one_in(2) ? 0x4321fedc : rnd(), 0, 0,
                     0);
            } else {
                /* Any number but those that end the fuzzer, block, or act on its
                 * memory, descriptors or relatives with random arguments. */
                static const uint64_t unsafe[] = {
                    SYS_exit,     SYS_exit_group, SYS_clone,    SYS_execve,   SYS_kill,
                    SYS_tkill,    SYS_tgkill,     SYS_munmap,   SYS_mremap,   SYS_mprotect,
                    SYS_madvise,
                    SYS_mmap,     SYS_brk,        SYS_read,     SYS_readv,    SYS_pread64,
                    SYS_write,    SYS_writev,     SYS_nanosleep, SYS_clock_nanosleep,
                    SYS_wait4,    SYS_dup3,       SYS_close,    SYS_reboot,   SYS_rt_sigreturn,
                    SYS_fcntl,    SYS_dup,        SYS_pipe2,    SYS_ppoll,    SYS_rt_sigsuspend,
                    SYS_rt_sigaction, SYS_sigaltstack, SYS_rt_sigtimedwait,
                    /* Block (a futex word, descriptor sets, children), send SIGALRM
                     * later, or make tasks. */
                    SYS_futex, SYS_pselect6, SYS_waitid, SYS_setitimer, SYS_clone3,
                };
                uint64_t nr;
                int ok;
                do {
                    nr = one_in(8) ? rnd() : below(600);
                    ok = 1;
                    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++)
                        ok &= nr != unsafe[i];
                } while (!ok);
                call((long)nr, rnd(), rnd(), rnd(), rnd(), rnd(), rnd());
            }
        } else {
            call(SYS_getpid, 0, 0, 0, 0, 0, 0);
        }
        break;
    }
}

/* ---- The loop ---- */

static void restore_holes(void);

/* The kinds of call, by weight (out of 100). FUZZ_SKIP=mask leaves kinds out (bit i:
 * kind i), for narrowing down a failure. */
static const struct {
    void (*fn)(void);
    int weight;
} kinds[] = {
    {do_mmap, 14},   {do_munmap, 8},     {do_mprotect, 8}, {do_madvise, 6}, {do_brk, 4},
    {do_fork_fuzz, 4}, {do_clone, 4},    {do_execve, 3},   {do_wait4, 5},   {do_kill, 3},
    {do_read, 12},   {do_write, 5},      {do_fs_misc, 8},  {do_time, 5},    {do_system, 9},
    {do_pipe, 2},
};
static uint64_t skip_mask;

static void one_call(void)
{
    cur_call++;
    restore_holes();
    uint64_t w = below(100);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (w < (uint64_t)kinds[i].weight) {
            if (!(skip_mask >> i & 1))
                kinds[i].fn();
            return;
        }
        w -= (uint64_t)kinds[i].weight;
    }
}

static void fuzz_calls(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        one_call();
}

/* ---- Setting up a fuzzing process ---- */

/*
 * The edge pages, a fixed shape the pointers straddle:
 *   0 RW | 1 RO | 2 PROT_NONE | 3 RW | 4 hole | 5 RW | 6 hole | 7 PROT_NONE
 * They are on the protected list (the memory calls leave them alone), but a mapping
 * without MAP_FIXED may land in a hole: restore_holes() unmaps the holes again before
 * every call (a timespec straddling a filled hole could read as a sleep of hours).
 */
static void setup_edges(void)
{
    edge = mmap(NULL, EDGE_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(edge != MAP_FAILED);
    memset(edge + PAGE_SIZE, 'A', PAGE_SIZE);
    CHECK_OK(mprotect(edge + PAGE_SIZE, PAGE_SIZE, PROT_READ));
    CHECK_OK(mprotect(edge + 2 * PAGE_SIZE, PAGE_SIZE, PROT_NONE));
    CHECK_OK(mprotect(edge + 7 * PAGE_SIZE, PAGE_SIZE, PROT_NONE));
    /* Under Linux (QEMU) a hole could come to hold the emulator's own memory (see
     * rereserve): PROT_NONE pages stand in for the holes there. */
    if (on_pg) {
        CHECK_OK(munmap(edge + 4 * PAGE_SIZE, PAGE_SIZE));
        CHECK_OK(munmap(edge + 6 * PAGE_SIZE, PAGE_SIZE));
    } else {
        CHECK_OK(mprotect(edge + 4 * PAGE_SIZE, PAGE_SIZE, PROT_NONE));
        CHECK_OK(mprotect(edge + 6 * PAGE_SIZE, PAGE_SIZE, PROT_NONE));
    }
}

static void restore_holes(void)
{
    if (!on_pg)
        return;
    sys6(SYS_munmap, (uint64_t)edge + 4 * PAGE_SIZE, PAGE_SIZE, 0, 0, 0, 0);
    sys6(SYS_munmap, (uint64_t)edge + 6 * PAGE_SIZE, PAGE_SIZE, 0, 0, 0, 0);
}

/* The arena: 64 pages of mixed protections, some touched, a few holes. */
static void setup_arena(void)
{
    arena = mmap(NULL, ARENA_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(arena != MAP_FAILED);
    for (int i = 0; i < ARENA_PAGES; i++) {
        switch (below(6)) {
        case 0:
            arena[i * PAGE_SIZE] = (uint8_t)i;
            break;
        case 1:
            mprotect(arena + i * PAGE_SIZE, PAGE_SIZE, PROT_READ);
            break;
        case 2:
            mprotect(arena + i * PAGE_SIZE, PAGE_SIZE, PROT_NONE);
            break;
        case 3:
            if (i > 0 && on_pg)
                munmap(arena + i * PAGE_SIZE, PAGE_SIZE);
            break;
        default:
            break;
        }
    }
}

/* The body of the fuzzing process of one batch. */
static _Noreturn void fuzz_batch(uint64_t seed, uint64_t batch, uint64_t ncalls)
{
    cur_seed = seed;
    cur_batch = batch;
    cur_call = batch * ncalls;
    rng = splitmix(splitmix(seed) ^ batch) | 1;
    /* The console stays reachable through trace_fd only; fds 0-2 become a file, so no
     * fuzzed read blocks on the console and no fuzzed write prints garbage. */
    trace_fd = fcntl(2, F_DUPFD_CLOEXEC, 900);
    CHECK(trace_fd >= 0);
    int file = open(DATA_HELLO_PATH, O_RDONLY);
    CHECK(file >= 0);
    for (int fd = 0; fd < 3; fd++)
        CHECK(dup3(file, fd, 0) == fd);
    close(file);
    initial_brk = (uint64_t)sbrk(0);
    setup_edges();
    protect((uint64_t)edge, (uint64_t)edge + EDGE_PAGES * PAGE_SIZE);
    protect_current_maps();
    setup_arena();
    /* A few open descriptors of each kind to start with. */
    /* Not "/" (the fuzzer may open it): on pagoda one getdents64 of it takes seconds. */
    static const char *const start_files[] = {"/data/big.bin", "/data/dir", "/proc/self/maps",
                                              "/proc/meminfo", "/proc"};
    for (size_t i = 0; i < sizeof start_files / sizeof start_files[0]; i++)
        note_fd(open(start_files[i], O_RDONLY));
    note_fd(0);
    note_fd(1);
    note_fd(2);
    if (trace) {
        say_fd(trace_fd, "fuzz: arena %p edge %p sink %p shared %p brk %#llx\n", arena,
               edge, sink, shared, (unsigned long long)initial_brk);
        for (int i = 0; i < nprot; i++)
            say_fd(trace_fd, "fuzz: protected %#llx-%#llx\n",
                   (unsigned long long)prot_list[i].start, (unsigned long long)prot_list[i].end);
    }
    fuzz_calls(ncalls);
    reap_all();
    _exit(0);
}

/* ---- The supervisor ---- */

static long procs_now(void)
{
    struct sysinfo si;
    return sysinfo(&si) == 0 ? si.procs : -1;
}

#define MAX_CLASSES 64
static long class_base[MAX_CLASSES], class_now[MAX_CLASSES], class_size[MAX_CLASSES];
static long class_first[MAX_CLASSES], first_slab = -1;
static int nclasses;

/* Objects in use over every size class of /proc/slabinfo, or -1; per class in
 * class_now[] (nclasses of them). */
static long slab_objects(void)
{
    char buf[8192];
    int fd = open("/proc/slabinfo", O_RDONLY);
    if (fd < 0)
        return -1;
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    long total = 0;
    nclasses = 0;
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "kmalloc-", 8) != 0)
            continue;
        char *p = line;
        while (*p && *p != ' ')
            p++;
        long n = strtol(p, NULL, 10);
        if (nclasses < MAX_CLASSES) {
            class_size[nclasses] = strtol(line + 8, NULL, 10);
            class_now[nclasses++] = n;
        }
        total += n;
    }
    return total;
}

static int failures;

/* Prints the Name/State/PPid of every process but init and this one (pids up to 2^16). */
static void list_processes(void)
{
    long found = 0, want = procs_now() - 2;
    for (int pid = 2; pid < 65536 && found < want; pid++) {
        if (pid == getpid())
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/status", pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        for (char *c = buf; *c; c++)
            if (*c == '\n' || *c == '\t')
                *c = ' ';
        say_fd(1, "FUZZ left: %s\n", buf);
        found++;
    }
}

__attribute__((format(printf, 3, 4))) static void fail(uint64_t seed, uint64_t batch,
                                                        const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say_fd(1,
           "FUZZ FAIL seed %llu batch %llu call %llu (nr %llu args %#llx %#llx %#llx %#llx "
           "%#llx %#llx): %s\n",
           (unsigned long long)seed, (unsigned long long)batch,
           (unsigned long long)shared->index, (unsigned long long)shared->nr,
           (unsigned long long)shared->args[0], (unsigned long long)shared->args[1],
           (unsigned long long)shared->args[2], (unsigned long long)shared->args[3],
           (unsigned long long)shared->args[4], (unsigned long long)shared->args[5], msg);
    say_fd(1, "FUZZ replay: FUZZ_SEEDS=%llu FUZZ_FIRST=%llu FUZZ_CALLS=<batch> FUZZ_TRACE=1\n",
           (unsigned long long)seed, (unsigned long long)batch);
    failures++;
}

/* Baselines (pagoda): taken after the first batch, when the kernel's caches (pooled
 * kernel stacks, heap slabs) have been filled once. */
static long base_free = -1, base_slab = -1, base_procs = -1;
#define FREE_SLACK_KB 1024 /* pooled kernel stacks and page-table caches */
#define SLAB_SLACK 256

/* Runs one batch in a child and checks what it leaves behind. */
static void run_batch(uint64_t seed, uint64_t batch, uint64_t ncalls)
{
    memset(shared, 0, sizeof *shared);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        fuzz_batch(seed, batch, ncalls);
    uint64_t start = now_ns();
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0) {
            fail(seed, batch, "waitpid: %s", errno_name(errno));
            return;
        }
        if (now_ns() - start > 120ULL * 1000 * 1000 * 1000) {
            fail(seed, batch, "hang: the fuzzing process did not finish in 120 s");
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!exited_with(status, 0))
        fail(seed, batch, "the fuzzing process ended: %s", describe_status(status));
    if (!on_pg)
        return;
    /* Orphans of a fuzzing process that died are init's to reap, and one of them may be
     * inside a system call that takes pagoda seconds (a getdents64 of a large directory):
     * a process still there after 60 s is stuck. */
    long procs = -1, mfree = -1, slab = -1;
    for (int tries = 0; tries < 6000; tries++) {
        procs = procs_now();
        if (procs == base_procs)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* Then up to 2 s for the memory counters to settle (frees on other harts). */
    for (int tries = 0; tries < 200; tries++) {
        mfree = meminfo_kb("MemFree");
        slab = slab_objects();
        if (base_free < 0 ||
            (mfree >= base_free - FREE_SLACK_KB && slab <= base_slab + SLAB_SLACK))
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (base_free < 0) {
        base_free = mfree;
        base_slab = first_slab = slab;
        memcpy(class_base, class_now, sizeof class_base);
        memcpy(class_first, class_now, sizeof class_first);
    }
    if (procs != base_procs) {
        fail(seed, batch, "%ld processes after the batch, %ld before", procs, base_procs);
        list_processes();
    }
    if (mfree < base_free - FREE_SLACK_KB)
        fail(seed, batch, "MemFree %ld kB, %ld kB below the baseline %ld kB", mfree,
             base_free - mfree, base_free);
    if (slab > base_slab + SLAB_SLACK) {
        fail(seed, batch, "%ld slab objects in use, baseline %ld", slab, base_slab);
        for (int c = 0; c < nclasses; c++)
            if (class_now[c] != class_base[c])
                say_fd(1, "FUZZ slab kmalloc-%ld: %ld objects at the baseline, %ld now\n",
                       class_size[c], class_base[c], class_now[c]);
        /* Reported once: the next batches are measured from here. */
        base_slab = slab;
        memcpy(class_base, class_now, sizeof class_base);
    }
}

/* Parses "1,2,5-8" into seeds[]; returns how many. */
static size_t parse_seeds(const char *s, uint64_t *seeds, size_t max)
{
    size_t n = 0;
    while (*s && n < max) {
        char *end;
        uint64_t a = strtoull(s, &end, 0), b = a;
        if (*end == '-')
            b = strtoull(end + 1, &end, 0);
        for (uint64_t x = a; x <= b && n < max; x++)
            seeds[n++] = x;
        s = *end ? end + 1 : end;
    }
    return n;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

int main(int argc, char **argv)
{
    /* Configured by the environment only. Started any other way than as .../fuzz
     * without arguments (by a fuzzed execve of /proc/self/exe), it does nothing. */
    size_t len0 = argc >= 1 && argv[0] ? strlen(argv[0]) : 0;
    if (argc != 1 || len0 < 4 || strcmp(argv[0] + len0 - 4, "fuzz") != 0)
        return 0;
    on_pg = on_pagoda();
    trace = (int)env_u64("FUZZ_TRACE", 0);
    skip_mask = env_u64("FUZZ_SKIP", 0);
    uint64_t seeds[256];
    const char *seed_text = getenv("FUZZ_SEEDS");
    size_t nseeds = parse_seeds(seed_text && *seed_text ? seed_text : "1", seeds, 256);
    uint64_t calls = env_u64("FUZZ_CALLS", 250);
    uint64_t batch_calls = env_u64("FUZZ_BATCH", 250);
    uint64_t first = env_u64("FUZZ_FIRST", 0);
    CHECK(nseeds > 0 && batch_calls > 0);

    shared = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    base_procs = procs_now();
    long free0 = on_pg ? meminfo_kb("MemFree") : -1;

    uint64_t total = 0, total_children = 0;
    for (size_t s = 0; s < nseeds; s++) {
        uint64_t batches = (calls + batch_calls - 1) / batch_calls, done = 0, by_kids = 0;
        uint64_t t0 = now_ns();
        for (uint64_t b = first; b < first + batches; b++) {
            run_batch(seeds[s], b, batch_calls);
            done += shared->calls;
            by_kids += shared->child_calls;
        }
        total += done;
        total_children += by_kids;
        say_fd(1, "FUZZ seed %llu: %llu calls (%llu by children) in %llu batches, %llu ms",
               (unsigned long long)seeds[s], (unsigned long long)done,
               (unsigned long long)by_kids, (unsigned long long)batches,
               (unsigned long long)((now_ns() - t0) / 1000000));
        if (on_pg)
            say_fd(1, "; MemFree %ld kB, slab objects %ld", meminfo_kb("MemFree"),
                   slab_objects());
        say_fd(1, "\n");
    }
    if (on_pg)
        say_fd(1, "FUZZ memory: MemFree %ld kB at start, %ld kB after the first batch, %ld kB "
                  "at the end; slab objects %ld after the first batch, %ld at the end\n",
               free0, base_free, meminfo_kb("MemFree"), first_slab, slab_objects());
    if (on_pg && first_slab >= 0) {
        slab_objects();
        for (int c = 0; c < nclasses; c++)
            if (class_now[c] != class_first[c])
                say_fd(1, "FUZZ slab kmalloc-%ld: %ld objects after the first batch, %ld at "
                          "the end\n",
                       class_size[c], class_first[c], class_now[c]);
    }
    say_fd(1, "FUZZ TOTAL calls %llu (%llu by children) seeds %zu failures %d\n",
           (unsigned long long)total, (unsigned long long)total_children, nseeds, failures);
    return failures ? 1 : 0;
}
