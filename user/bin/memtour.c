/*
 * /bin/memtour - a guided tour of pagoda's memory manager, step by step.
 *
 *   memtour            every step, without pauses
 *   memtour -i         wait for Enter between steps (when standard input is a terminal)
 *   memtour STEP...    only the steps numbered (1-5), e.g. `memtour 1 3` (make run's demo)
 *
 * Each step says in plain words what it will do and what to look for, does it, shows
 * the evidence (BusyBox's free and pmap run on this process, lines of /proc/self/status
 * and /proc/vmstat) and then checks its own claims: the tour is also a test. Steps:
 *
 *   1 demand paging   map 64 MiB: VmRSS unchanged; write 10 pages: VmRSS +40 kB, 10 faults
 *   2 the zero page   read 16 MiB never written: VmRSS barely moves (one shared zero
 *                     page); one write then takes a frame of its own (+4 kB)
 *   3 copy-on-write   write 16 MiB, fork: the child shares every page; its first write
 *                     copies one page, writing everything copies 16 MiB
 *   4 swap            only with swap on: write more than free memory, watch pages go
 *                     out (pswpout, VmSwap), read every page back intact (pswpin)
 *   5 huge pages      write 16 MiB in huge pages: 8 faults, AnonHugePages 16 MiB; mprotect
 *                     of one page splits one of them (thp_split_pmd), every byte kept
 *
 * Each step ends with one line `memtour: step N NAME: PASS`, `FAIL (...)` or
 * `SKIPPED (why)`; the exit status is 0 when no step failed (tests/memtour_run checks
 * it). Claims about pagoda's own counters are checked on pagoda only; elsewhere (Linux
 * user-mode emulation, where /proc describes QEMU) they are shown as not checked.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "swaptest.h"

extern char **environ;

/* Step 5: 16 MiB in huge pages. */
#define HUGE_AREA (16 * MIB)
#define HUGE_SIZE (2 * MIB)
/* Step 1: a 64 MiB mapping of which 10 pages are written. */
#define DEMAND_AREA (64 * MIB)
#define DEMAND_TOUCHED 10
/* Steps 2 and 3: 16 MiB read (zero page), 16 MiB written then shared by fork. */
#define ZERO_AREA (16 * MIB)
#define COW_AREA (16 * MIB)
/* How far VmRSS may move beyond the pages a step touches (the tour's own stack). */
#define RSS_SLACK_KB 16
/* How far a fault or copy counter may run ahead of the pages a step touches. */
#define FAULT_SLACK 4
/* How much MemFree may drop at fork, against the 16 MiB a copying fork would take. */
#define FORK_COST_MAX_KB 2048
/* How far MemFree may drift from the expected change (kernel caches, other processes). */
#define FREE_SLACK_KB 512

static int pagoda;
static int failures;    /* failed claims of the current step */
static int steps_failed;
static int steps_passed;
static int steps_skipped;
static int interactive;
static int chosen[6]; /* chosen[n]: run step n (all when none is named) */

/* Print and flush at once: the BusyBox tools write to the same descriptor. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/*
 * One claim of the tour: `ok` says whether it held. With `pagoda_only`, the claim is
 * about pagoda's counters and is only checked there.
 */
__attribute__((format(printf, 3, 4))) static void claim(int pagoda_only, int ok, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (pagoda_only && !pagoda) {
        say("  (not on pagoda: not checked) %s\n", text);
        return;
    }
    if (ok) {
        say("  ok: %s\n", text);
    } else {
        say("  NOT AS EXPECTED: %s\n", text);
        failures++;
    }
}

static long status_value(const char *key)
{
    return proc_field_kb("/proc/self/status", key);
}

/* A counter as text: its value, or "n/a" when this kernel does not have it. */
static const char *num(long v)
{
    static char bufs[8][24];
    static int next;
    char *b = bufs[next++ % 8];
    if (v < 0)
        snprintf(b, sizeof bufs[0], "n/a");
    else
        snprintf(b, sizeof bufs[0], "%ld", v);
    return b;
}

/* The change of a counter from `a` to `b`, as text ("n/a" when either is missing). */
static const char *change(long a, long b)
{
    return num(a < 0 || b < 0 ? -1 : b - a);
}

static void begin_step(int n, const char *title, const char *explanation)
{
    if (interactive && steps_passed + steps_failed + steps_skipped > 0) {
        say("\n(press Enter for step %d)", n);
        char c;
        while (read(0, &c, 1) == 1 && c != '\n')
            ;
    }
    failures = 0;
    say("\n=== Step %d: %s ===\n%s\n", n, title, explanation);
}

static void end_step(int n, const char *name)
{
    if (failures == 0) {
        steps_passed++;
        say("memtour: step %d %s: PASS\n", n, name);
    } else {
        steps_failed++;
        say("memtour: step %d %s: FAIL (%d claims not as expected)\n", n, name, failures);
    }
}

static void skip_step(int n, const char *name, const char *why)
{
    steps_skipped++;
    say("memtour: step %d %s: SKIPPED (%s)\n", n, name, why);
}

/* Output of the tools, kept off the stack (read into, then printed). */
static char tool_out[32768];

/*
 * Runs a BusyBox tool (argv[0] a path) with posix_spawn, which does not mark this
 * process's pages copy-on-write as fork would, and prints its output indented. With
 * `filter`, only the first line, the column headings, the totals and the lines holding
 * `filter` are printed.
 */
static void tool(char *const argv[], const char *filter)
{
    say("  $");
    for (int i = 0; argv[i]; i++)
        say(" %s", i == 0 && strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[i]);
    say("\n");
    if (access(argv[0], X_OK) != 0) {
        say("    (%s is not in this initramfs: BusyBox was not built)\n", argv[0]);
        return;
    }
    int fds[2];
    if (pipe(fds) != 0) {
        say("    (pipe failed)\n");
        return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid;
    int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], tool_out + len, sizeof tool_out - 1 - len)) > 0)
        len += (size_t)n;
    close(fds[0]);
    tool_out[len] = '\0';
    if (err != 0) {
        say("    (cannot run %s: error %d)\n", argv[0], err);
        return;
    }
    int status;
    waitpid(pid, &status, 0);
    int shown = 0, lines = 0;
    for (char *line = tool_out; *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        int first = lines++ == 0;
        if (!filter || first || strstr(line, filter) || strncmp(line, "Address", 7) == 0 ||
            strncmp(line, "total", 5) == 0 || strncmp(line, "mapped", 6) == 0) {
            say("    %s\n", line);
            shown += !first && filter && strstr(line, filter);
        }
        if (!end)
            break;
        line = end + 1;
    }
    if (filter && shown == 0)
        say("    (no line for address %s%s)\n", filter,
            pagoda ? "" : ": not on pagoda, /proc/PID/smaps describes QEMU");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        say("    (%s ended with %s)\n", argv[0], describe_status(status));
}

static void free_tool(void)
{
    char *argv[] = {"/usr/bin/free", "-k", NULL};
    tool(argv, NULL);
}

/* BusyBox pmap -x on this process, showing the area at `p` only. */
static void pmap_tool(const void *p)
{
    char pid[16], addr[24];
    snprintf(pid, sizeof pid, "%d", getpid());
    snprintf(addr, sizeof addr, "%016lx", (unsigned long)p);
    char *argv[] = {"/usr/bin/pmap", "-x", pid, NULL};
    tool(argv, addr);
}

/* The Rss (or Swap) line of the area starting at `p` in /proc/self/smaps, in kB, or -1. */
static long smaps_of(const void *p, const char *key)
{
    int fd = open("/proc/self/smaps", O_RDONLY);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, tool_out + len, sizeof tool_out - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    tool_out[len] = '\0';
    char start[24];
    snprintf(start, sizeof start, "%lx-", (unsigned long)p);
    size_t klen = strlen(key);
    int in_area = 0;
    for (char *line = tool_out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, start, strlen(start)) == 0)
            in_area = 1;
        else if (in_area && strncmp(line, key, klen) == 0 && line[klen] == ':')
            return strtol(line + klen + 1, NULL, 10);
        else if (in_area && strchr("0123456789abcdef", line[0]) && strchr(line, '-') &&
                 strchr(line, '-') < strchr(line, ' '))
            break; /* the next area */
    }
    return -1;
}

/*
 * A private anonymous mapping in 4 KiB pages: steps 1-4 show the 4 KiB mechanisms, so
 * they ask for no huge pages (madvise MADV_NOHUGEPAGE); step 5 shows huge pages.
 */
static void *map_private(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || madvise(p, len, MADV_NOHUGEPAGE) != 0) {
        say("memtour: mmap of %zu MiB failed\n", len / MIB);
        exit(1);
    }
    return p;
}

static void demand_paging(void)
{
    begin_step(1, "demand paging",
               "mmap asks for 64 MiB of address space (in 4 KiB pages: madvise\n"
               "MADV_NOHUGEPAGE; step 5 shows huge pages). pagoda gives no memory yet: a page\n"
               "gets a frame only when it is first touched, through a page fault. Look for:\n"
               "VmRSS (resident memory) unchanged by the mmap, then +40 kB after writing one\n"
               "byte in each of 10 pages, and 10 more page faults.");
    free_tool();
    long rss0 = status_value("VmRSS");
    uint8_t *p = map_private(DEMAND_AREA);
    long rss1 = status_value("VmRSS");
    long faults1 = status_value("MinorFaults");
    long pgfault1 = vmstat_value("pgfault");
    for (int i = 0; i < DEMAND_TOUCHED; i++)
        p[(size_t)i * (DEMAND_AREA / DEMAND_TOUCHED / PAGE_SIZE) * PAGE_SIZE] = (uint8_t)(i + 1);
    long faults2 = status_value("MinorFaults");
    long pgfault2 = vmstat_value("pgfault");
    long rss2 = status_value("VmRSS");
    long area_rss = smaps_of(p, "Rss");
    say("  VmRSS: %s kB before the mmap, %s kB after it, %s kB after writing 10 pages\n",
        num(rss0), num(rss1), num(rss2));
    say("  MinorFaults (this process, /proc/self/status): %s -> %s\n", num(faults1),
        num(faults2));
    say("  pgfault (the whole system, /proc/vmstat): %s -> %s\n", num(pgfault1), num(pgfault2));
    say("  Rss of the 64 MiB area (/proc/self/smaps): %s kB\n", num(area_rss));
    pmap_tool(p);
    say("  (pmap's Kbytes is the area's size; its PSS and Dirty columns are 0 on pagoda,\n"
        "  whose smaps reports Rss and Swap only)\n");
    claim(1, rss1 - rss0 <= RSS_SLACK_KB, "mapping 64 MiB moved VmRSS by %ld kB (at most %d)",
          rss1 - rss0, RSS_SLACK_KB);
    claim(1, rss2 - rss1 >= 40 && rss2 - rss1 <= 40 + RSS_SLACK_KB,
          "writing 10 pages added %ld kB to VmRSS (40 expected, up to %d more)", rss2 - rss1,
          RSS_SLACK_KB);
    claim(1, faults2 - faults1 >= DEMAND_TOUCHED && faults2 - faults1 <= DEMAND_TOUCHED + FAULT_SLACK,
          "writing 10 pages took %s page faults (10 expected, up to %d more)",
          change(faults1, faults2), FAULT_SLACK);
    claim(1, area_rss == 40, "the area itself holds %s kB (10 pages)", num(area_rss));
    int intact = 1;
    for (int i = 0; i < DEMAND_TOUCHED; i++)
        intact &= p[(size_t)i * (DEMAND_AREA / DEMAND_TOUCHED / PAGE_SIZE) * PAGE_SIZE] == i + 1;
    claim(0, intact, "the 10 written bytes read back");
    munmap(p, DEMAND_AREA);
    end_step(1, "demand-paging");
}

static void zero_page(void)
{
    begin_step(2, "the zero page",
               "Reading memory that was never written needs no frame of its own: pagoda maps\n"
               "one shared page of zeros, read-only, wherever such memory is read. Look for:\n"
               "reading 16 MiB (4096 pages) moves VmRSS by almost nothing while ZeroPageMaps\n"
               "grows by 4096; then one write to such a page gives it a frame of its own (a\n"
               "zero-page upgrade): VmRSS +4 kB.");
    volatile uint8_t *z = map_private(ZERO_AREA);
    long rss0 = status_value("VmRSS");
    long maps0 = status_value("ZeroPageMaps");
    unsigned sum = 0;
    for (size_t off = 0; off < ZERO_AREA; off += PAGE_SIZE)
        sum += z[off + 100];
    long maps1 = status_value("ZeroPageMaps");
    long rss1 = status_value("VmRSS");
    long upgrades1 = vmstat_value("zero_page_upgrades");
    z[ZERO_AREA / 2] = 1;
    long upgrades2 = vmstat_value("zero_page_upgrades");
    long rss2 = status_value("VmRSS");
    long area_rss = smaps_of((const void *)z, "Rss");
    say("  VmRSS: %s kB before reading, %s kB after reading 4096 pages, %s kB after writing one\n",
        num(rss0), num(rss1), num(rss2));
    say("  ZeroPageMaps (this process): %s -> %s\n", num(maps0), num(maps1));
    say("  zero_page_upgrades (the whole system, /proc/vmstat): %s -> %s\n", num(upgrades1),
        num(upgrades2));
    say("  Rss of the 16 MiB area (/proc/self/smaps): %s kB\n", num(area_rss));
    claim(0, sum == 0, "every byte read is zero");
    claim(1, rss1 - rss0 <= RSS_SLACK_KB, "reading 16 MiB moved VmRSS by %ld kB (at most %d)",
          rss1 - rss0, RSS_SLACK_KB);
    claim(1, maps1 - maps0 >= 4096 && maps1 - maps0 <= 4096 + FAULT_SLACK,
          "ZeroPageMaps grew by %s (4096 expected)", change(maps0, maps1));
    claim(1, rss2 - rss1 >= 4 && rss2 - rss1 <= 4 + RSS_SLACK_KB,
          "one write added %ld kB to VmRSS (4 expected)", rss2 - rss1);
    claim(1, upgrades2 - upgrades1 >= 1 && upgrades2 - upgrades1 <= 1 + FAULT_SLACK,
          "zero_page_upgrades grew by %s (1 expected)", change(upgrades1, upgrades2));
    claim(1, area_rss == 4, "the area itself holds %s kB (the one written page)", num(area_rss));
    munmap((void *)z, ZERO_AREA);
    end_step(2, "zero-page");
}

/* MemFree, read twice (the first read lets the kernel give back its caches). */
static long mem_free(void)
{
    (void)meminfo_kb("MemFree");
    return meminfo_kb("MemFree");
}

/* The child of step 3: shows that it shares the parent's pages until it writes them. */
static void cow_child(uint8_t *q, long free_before_fork)
{
    long free0 = mem_free();
    long rss0 = status_value("VmRSS");
    int same = 1;
    for (size_t off = 0; off < COW_AREA; off += PAGE_SIZE)
        same &= q[off] == (uint8_t)(off / PAGE_SIZE + 7);
    say("  [child %d] forked: MemFree %s kB before the fork, %s kB now; my VmRSS %s kB\n",
        getpid(), num(free_before_fork), num(free0), num(rss0));
    claim(0, same, "the child sees the parent's 16 MiB");
    claim(1, free_before_fork - free0 <= FORK_COST_MAX_KB,
          "the fork took %ld kB of memory (page tables, a kernel stack), not 16 MiB",
          free_before_fork - free0);
    claim(1, rss0 >= (long)(COW_AREA / 1024),
          "the child's VmRSS (%ld kB) counts the 16 MiB it shares, as on Linux", rss0);

    /* Measured after the prints: the child's first writes to its own stack and stdio
     * buffers copy those pages too. */
    long free1a = mem_free();
    long copies0 = status_value("CowCopies");
    q[0] = 0xaa;
    long copies1 = status_value("CowCopies");
    long free1 = mem_free();
    say("  [child] wrote 1 byte: CowCopies %s -> %s, MemFree %s -> %s kB\n", num(copies0),
        num(copies1), num(free1a), num(free1));
    claim(1, copies1 - copies0 >= 1 && copies1 - copies0 <= 1 + FAULT_SLACK,
          "one write copied %s page(s) (1 expected)", change(copies0, copies1));

    for (size_t off = 0; off < COW_AREA; off += PAGE_SIZE)
        q[off] = 0xbb;
    long copies2 = status_value("CowCopies");
    long free2 = mem_free();
    say("  [child] wrote every page: CowCopies %s -> %s, MemFree %s -> %s kB\n", num(copies1),
        num(copies2), num(free1), num(free2));
    free_tool();
    long pages = (long)(COW_AREA / PAGE_SIZE);
    claim(1, copies2 - copies1 >= pages - 1 && copies2 - copies1 <= pages - 1 + FAULT_SLACK,
          "writing the rest copied %s pages (%ld expected)", change(copies1, copies2), pages - 1);
    claim(1, free1 - free2 >= 16384 - 4 - FREE_SLACK_KB && free1 - free2 <= 16384 + FREE_SLACK_KB,
          "free memory dropped by %ld kB (16 MiB = 16384 kB expected)", free1 - free2);
}

static void copy_on_write(void)
{
    begin_step(3, "copy-on-write",
               "fork does not copy memory. Parent and child share every page, write-protected;\n"
               "the first write to a shared page by either one copies that page (a COW copy).\n"
               "Look for: free memory barely moves at the fork although 16 MiB were written\n"
               "before it; the child's first write copies 1 page (CowCopies +1); writing all\n"
               "16 MiB copies 4096 pages and free memory drops by 16 MiB. After the child\n"
               "exits, the parent's next write takes its page back without copying\n"
               "(CowTakeovers +1).");
    uint8_t *q = map_private(COW_AREA);
    for (size_t off = 0; off < COW_AREA; off += PAGE_SIZE)
        q[off] = (uint8_t)(off / PAGE_SIZE + 7);
    say("  the parent wrote 16 MiB\n");
    free_tool();
    long free0 = mem_free();
    pid_t pid = fork();
    if (pid < 0) {
        claim(0, 0, "fork failed");
        end_step(3, "copy-on-write");
        return;
    }
    if (pid == 0) {
        cow_child(q, free0);
        fflush(stdout);
        _exit(failures);
    }
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status))
        claim(0, 0, "the child %s", describe_status(status));
    else
        failures += WEXITSTATUS(status); /* its claims, already printed */

    int same = 1;
    for (size_t off = 0; off < COW_AREA; off += PAGE_SIZE)
        same &= q[off] == (uint8_t)(off / PAGE_SIZE + 7);
    claim(0, same, "the parent still sees its own data (the child's writes went to copies)");
    long free1 = -1;
    for (int tries = 0; tries < 200; tries++) {
        free1 = mem_free();
        if (free1 >= free0 - FREE_SLACK_KB)
            break;
        usleep(10000);
    }
    say("  [parent] the child exited: MemFree %s kB (%s before the fork)\n", num(free1),
        num(free0));
    claim(1, free1 >= free0 - FREE_SLACK_KB, "the child's 16 MiB of copies came back");
    long copies0 = status_value("CowCopies"), takeovers0 = status_value("CowTakeovers");
    q[PAGE_SIZE] = 1;
    long copies1 = status_value("CowCopies"), takeovers1 = status_value("CowTakeovers");
    say("  [parent] wrote 1 byte: CowCopies %s -> %s, CowTakeovers %s -> %s\n", num(copies0),
        num(copies1), num(takeovers0), num(takeovers1));
    claim(1, takeovers1 - takeovers0 >= 1 && copies1 == copies0,
          "the parent's write took its page over (%s takeovers, %s copies)",
          change(takeovers0, takeovers1), change(copies0, copies1));
    munmap(q, COW_AREA);
    end_step(3, "copy-on-write");
}

/* The swap step prints its progress every 32 MiB. */
#define PROGRESS_PAGES (32 * MIB / PAGE_SIZE)

/* The 8 words of page `page` the swap step writes (every 512 bytes). */
static uint64_t swap_value(size_t page, size_t i)
{
    return swap_word(page, i, 1);
}

static void swap_step(void)
{
    const char *explanation =
        "When memory runs short, pagoda writes pages not used lately to the swap disk\n"
        "and frees their frames (pswpout counts pages written); VmSwap is this process's\n"
        "share out there. Touching such a page reads it back (a major fault; pswpin).\n"
        "This step writes more than the free memory, then reads every page back.\n"
        "Look for: Swap used in free, pswpout and VmSwap grow, every page reads back\n"
        "intact, pswpin and pgmajfault grow.";
    if (!pagoda) {
        begin_step(4, "swap under pressure", explanation);
        skip_step(4, "swap", "not on pagoda: this would push the host into swap");
        return;
    }
    long swap_total = meminfo_kb("SwapTotal");
    if (swap_total <= 0) {
        begin_step(4, "swap under pressure", explanation);
        say("  Swap is off (SwapTotal 0 in /proc/meminfo). To see this step, boot with a\n"
            "  disk formatted by mkswap: `make run` attaches build/swap.img; tools/qemu.py\n"
            "  boot(..., swap_mib=256) in the tests; `swapon /dev/vda` turns it on again.\n");
        skip_step(4, "swap", "swap is off: boot with a swap disk");
        return;
    }
    begin_step(4, "swap under pressure", explanation);
    long total = meminfo_kb("MemTotal"), free0 = mem_free();
    long swap_free = meminfo_kb("SwapFree");
    /* More than free memory by a quarter of RAM: enough to force swapping, small
     * enough to stay a few hundred MiB of disk traffic on a 128-256 MiB machine. */
    long want_kb = free0 + total / 4;
    if (swap_free < total / 2) {
        say("  SwapFree is %ld kB: not enough room for this step (%ld kB wanted)\n", swap_free,
            total / 2);
        skip_step(4, "swap", "too little free swap");
        return;
    }
    size_t len = (size_t)want_kb * 1024 / PAGE_SIZE * PAGE_SIZE;
    size_t pages = len / PAGE_SIZE;
    say("  MemTotal %ld kB, MemFree %ld kB, SwapTotal %ld kB: writing %zu MiB\n", total, free0,
        swap_total, len / MIB);
    free_tool();
    long out0 = vmstat_value("pswpout"), in0 = vmstat_value("pswpin");
    long maj0 = vmstat_value("pgmajfault"), vmswap0 = status_value("VmSwap");
    uint64_t t0 = now_ns();
    uint8_t *s = map_private(len);
    say("  writing, MiB done:");
    for (size_t pg = 0; pg < pages; pg++) {
        for (size_t i = 0; i < 8; i++)
            ((uint64_t *)(s + pg * PAGE_SIZE))[i * 64] = swap_value(pg, i);
        if ((pg + 1) % PROGRESS_PAGES == 0)
            say(" %zu", (pg + 1) * PAGE_SIZE / MIB);
    }
    say("\n");
    uint64_t t1 = now_ns();
    long out1 = vmstat_value("pswpout"), vmswap1 = status_value("VmSwap");
    say("  written in %.1f s: pswpout %s -> %s, VmSwap %s -> %s kB\n", (double)(t1 - t0) / 1e9,
        num(out0), num(out1), num(vmswap0), num(vmswap1));
    free_tool();
    pmap_tool(s);
    claim(1, out1 > out0, "pages went out to swap (pswpout +%ld)", out1 - out0);
    claim(1, vmswap1 > 0, "this process has %ld kB in swap (VmSwap)", vmswap1);

    size_t bad = 0;
    say("  reading back, MiB done:");
    for (size_t pg = 0; pg < pages; pg++) {
        for (size_t i = 0; i < 8; i++)
            bad += ((uint64_t *)(s + pg * PAGE_SIZE))[i * 64] != swap_value(pg, i);
        if ((pg + 1) % PROGRESS_PAGES == 0)
            say(" %zu", (pg + 1) * PAGE_SIZE / MIB);
    }
    say("\n");
    uint64_t t2 = now_ns();
    long in2 = vmstat_value("pswpin"), maj2 = vmstat_value("pgmajfault");
    long out2 = vmstat_value("pswpout"), vmswap2 = status_value("VmSwap");
    say("  read back in %.1f s: pswpin %s -> %s, pgmajfault %s -> %s, pswpout %s, VmSwap %s kB\n",
        (double)(t2 - t1) / 1e9, num(in0), num(in2), num(maj0), num(maj2), num(out2),
        num(vmswap2));
    say("  (read-ahead: a fault reads up to 7 neighbouring slots too, so pswpin, the pages\n"
        "  read, runs ahead of pgmajfault; pages read in push others out: pswpout grows)\n");
    claim(0, bad == 0, "every page read back intact (%zu of %zu words wrong)", bad, pages * 8);
    claim(1, in2 > in0, "pages came back from swap (pswpin +%ld)", in2 - in0);
    claim(1, maj2 > maj0, "reading them took major faults (pgmajfault +%ld)", maj2 - maj0);
    munmap(s, len);
    long vmswap3 = status_value("VmSwap");
    say("  unmapped: VmSwap %s kB\n", num(vmswap3));
    free_tool();
    /* The tour's own pages (stack, buffers) may have gone out too: up to 1 MiB of them. */
    claim(1, vmswap3 <= vmswap0 + 1024, "munmap let go of the area's swap (VmSwap %ld kB)",
          vmswap3);
    end_step(4, "swap");
}

/* Step 5: huge pages. */
static void huge_pages(void)
{
    if (pagoda && swap_enabled()) {
        skip_step(5, "huge-pages",
                  "swap is on: pagoda maps 4 KiB pages only while swap is on, so that\n"
                  "  reclaim can take them (docs/huge-pages.md); boot without a swap disk");
        return;
    }
    begin_step(5, "huge pages",
               "A 2 MiB range of private memory touched for the first time can get one 2 MiB\n"
               "page (one Sv39 leaf, one fault) instead of 512 pages of 4 KiB (512 faults).\n"
               "This step maps 16 MiB at a 2 MiB boundary, asks for huge pages (madvise\n"
               "MADV_HUGEPAGE, as `thp=madvise` needs) and writes every 4 KiB page of it.\n"
               "Look for: 8 faults instead of 4096, AnonHugePages 16384 kB in smaps and\n"
               "thp_fault_alloc +8 in /proc/vmstat. Then mprotect of one 4 KiB page in the\n"
               "middle splits that huge page back into 512 entries (thp_split_pmd +1,\n"
               "AnonHugePages 14336 kB), keeping every byte.");
    uint8_t *raw = mmap(NULL, HUGE_AREA + HUGE_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        claim(0, 0, "mmap of %d MiB failed", (int)((HUGE_AREA + HUGE_SIZE) / MIB));
        end_step(5, "huge-pages");
        return;
    }
    uint8_t *p = (uint8_t *)(((uintptr_t)raw + HUGE_SIZE - 1) & ~(uintptr_t)(HUGE_SIZE - 1));
    claim(0, madvise(p, HUGE_AREA, MADV_HUGEPAGE) == 0, "madvise(MADV_HUGEPAGE) succeeded");
    long faults0 = status_value("MinorFaults");
    long alloc0 = vmstat_value("thp_fault_alloc");
    for (size_t off = 0; off < HUGE_AREA; off += PAGE_SIZE)
        p[off] = (uint8_t)(off / PAGE_SIZE);
    long faults1 = status_value("MinorFaults");
    long alloc1 = vmstat_value("thp_fault_alloc");
    long huge1 = smaps_of(p, "AnonHugePages");
    say("  MinorFaults: %s -> %s for 4096 pages written\n", num(faults0), num(faults1));
    say("  thp_fault_alloc (/proc/vmstat): %s -> %s\n", num(alloc0), num(alloc1));
    say("  AnonHugePages of the area (/proc/self/smaps): %s kB\n", num(huge1));
    claim(1, faults1 - faults0 >= 8 && faults1 - faults0 <= 8 + FAULT_SLACK,
          "writing 16 MiB took %ld faults (8 huge pages)", faults1 - faults0);
    claim(1, alloc1 - alloc0 == 8, "8 huge pages were allocated (thp_fault_alloc +%ld)",
          alloc1 - alloc0);
    claim(1, huge1 == 16384, "the area is all huge pages (AnonHugePages %s kB)", num(huge1));
    long split0 = vmstat_value("thp_split_pmd");
    uint8_t *middle = p + 5 * MIB + 3 * PAGE_SIZE;
    claim(0, mprotect(middle, PAGE_SIZE, PROT_READ) == 0, "mprotect of one page succeeded");
    long split1 = vmstat_value("thp_split_pmd");
    long huge2 = smaps_of(p, "AnonHugePages") + smaps_of(middle + PAGE_SIZE, "AnonHugePages");
    say("  after mprotect of one page: thp_split_pmd %s -> %s, AnonHugePages %s kB\n",
        num(split0), num(split1), num(huge2));
    pmap_tool(p);
    claim(1, split1 - split0 == 1, "one huge page was split (thp_split_pmd +%ld)", split1 - split0);
    claim(1, huge2 == 14336, "7 huge pages remain (AnonHugePages %s kB)", num(huge2));
    int intact = 1;
    for (size_t off = 0; off < HUGE_AREA; off += PAGE_SIZE)
        intact &= p[off] == (uint8_t)(off / PAGE_SIZE);
    claim(0, intact, "every page kept its byte through the split");
    munmap(raw, HUGE_AREA + HUGE_SIZE);
    end_step(5, "huge-pages");
}

int main(int argc, char **argv)
{
    int named = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-i") == 0) {
            interactive = isatty(0);
        } else if (argv[i][0] >= '1' && argv[i][0] <= '5' && argv[i][1] == '\0') {
            chosen[argv[i][0] - '0'] = 1;
            named = 1;
        } else {
            fprintf(stderr, "usage: memtour [-i] [STEP...]   (-i: wait for Enter between "
                            "steps; STEP: 1-5, default all)\n");
            return 2;
        }
    }
    for (int n = 1; n <= 5 && !named; n++)
        chosen[n] = 1;
    pagoda = on_pagoda();
    say("A tour of pagoda's memory manager. Each step says what it will do and what to\n"
        "look for, does it, shows the evidence (BusyBox free and pmap on this process,\n"
        "/proc/self/status, /proc/vmstat: BusyBox has no vmstat applet, so the counters\n"
        "vmstat would read are printed from /proc/vmstat) and checks it.\n");
    if (!pagoda)
        say("Not on pagoda: /proc describes another kernel, pagoda's counters are not checked.\n");

    if (chosen[1])
        demand_paging();
    if (chosen[2])
        zero_page();
    if (chosen[3])
        copy_on_write();
    if (chosen[4])
        swap_step();
    if (chosen[5])
        huge_pages();

    say("\nNot in this tour: shared page tables (not in pagoda yet).\n"
        "Read more: docs/virtual-memory.md (demand paging, the zero page, copy-on-write),\n"
        "docs/swap.md (swap and reclaim), docs/huge-pages.md (huge pages),\n"
        "docs/page-tables.md (the Sv39 tables).\n");
    if (named)
        say("The whole tour, swap included: /bin/memtour (-i: pause between steps).\n");
    say("memtour: %d steps passed, %d failed, %d skipped\n", steps_passed, steps_failed,
        steps_skipped);
    return steps_failed ? 1 : 0;
}
