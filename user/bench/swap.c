/*
 * bench/swap - swapping, in busy instructions: guest time minus the time the harts were
 * idle (waiting for the disk), from /proc/stat's idle column, so that what is measured is
 * the work the kernel did (faults, reclaim, I/O set-up), not the disk's latency. Under
 * `-icount shift=0,sleep=off` one guest nanosecond is one instruction while a hart runs
 * (an idle hart's clock jumps ahead, which is why idle time is taken out); /proc/stat counts
 * in hundredths of a second (10^7 instructions), far below the phases' lengths.
 *
 * On a machine with a swap disk (`/dev/vda`, formatted by mkswap; the program enables it
 * with swapon if it is not on yet, making the node from /proc/partitions on Linux):
 *   swap_write       writing a 2x RAM working set once, per page
 *   swap_read_seq    reading it back in address order, per page
 *   swap_random      random reads over the first 1.5x RAM of it, per touch
 *   swap_munmap      unmapping the 2x RAM region (mostly in swap), per page
 * each with the pages read and written and the major faults per page (or touch) beside
 * it, from /proc/vmstat. Without a swap disk it reports nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bench.h"
#include "swaptest.h"

#define DISK "/dev/vda"
/* /proc/stat's unit (USER_HZ) in nanoseconds. */
#define NS_PER_TICK 10000000ULL

/* Idle time of all harts so far, in ns: the `cpu` line's idle and iowait (Linux counts
 * an idle hart with a task waiting for the disk as iowait). */
static uint64_t idle_ns(void)
{
    char buf[256];
    int fd = CHECK_OK(open("/proc/stat", O_RDONLY));
    ssize_t n = CHECK_OK(read(fd, buf, sizeof buf - 1));
    close(fd);
    buf[n] = 0;
    unsigned long long user, nice, sys, idle, iowait;
    CHECK_EQ(sscanf(buf, "cpu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait), 5);
    return (idle + iowait) * NS_PER_TICK;
}

struct mark {
    uint64_t now, idle;
    long in, out, maj;
};

static struct mark mark(void)
{
    struct mark m = {now_ns(), idle_ns(), vmstat_value("pswpin"), vmstat_value("pswpout"),
                     vmstat_value("pgmajfault")};
    return m;
}

static void report(const char *name, struct mark a, struct mark b, uint64_t ops)
{
    uint64_t idle = b.idle - a.idle, all = b.now - a.now;
    char key[64];
    bench_report(name, all > idle ? all - idle : 0, ops);
    snprintf(key, sizeof key, "%s_pages_in", name);
    printf("BENCH %s %.3f pages\n", key, (double)(b.in - a.in) / (double)ops);
    snprintf(key, sizeof key, "%s_pages_out", name);
    printf("BENCH %s %.3f pages\n", key, (double)(b.out - a.out) / (double)ops);
    snprintf(key, sizeof key, "%s_majflt", name);
    printf("BENCH %s %.3f faults\n", key, (double)(b.maj - a.maj) / (double)ops);
}

/* Makes /dev/vda from /proc/partitions if the system has no node for it (Linux booted
 * on an initramfs has no devtmpfs here). */
static void make_disk_node(void)
{
    struct stat st;
    if (stat(DISK, &st) == 0)
        return;
    FILE *f = fopen("/proc/partitions", "r");
    if (!f)
        return;
    char line[128], name[32];
    unsigned major, minor;
    unsigned long long blocks;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%u %u %llu %31s", &major, &minor, &blocks, name) == 4 &&
            strcmp(name, "vda") == 0)
            mknod(DISK, S_IFBLK | 0600, makedev(major, minor));
    fclose(f);
}

static int swap_on(void)
{
    if (access("/proc/stat", R_OK) != 0)
        mount("proc", "/proc", "proc", 0, NULL);
    if (meminfo_kb("SwapTotal") > 0)
        return 1;
    make_disk_node();
    return swapon(DISK, 0) == 0 && meminfo_kb("SwapTotal") > 0;
}

int main(void)
{
    if (!swap_on()) {
        printf("bench/swap: no swap disk: nothing to measure\n");
        return 0;
    }
    size_t ram = (size_t)meminfo_kb("MemTotal") / 4;
    size_t pages = 2 * ram, random_span = 3 * ram / 2;
    uint8_t *m = map_anon(pages * PAGE_SIZE);

    struct mark a = mark();
    for (size_t pg = 0; pg < pages; pg++)
        swap_fill(m + pg * PAGE_SIZE, pg, 1);
    struct mark b = mark();
    report("swap_write", a, b, pages);

    a = mark();
    for (size_t pg = 0; pg < pages; pg++)
        if (*(volatile uint64_t *)(m + pg * PAGE_SIZE) != swap_word(pg, 0, 1))
            CHECK(!"page content");
    b = mark();
    report("swap_read_seq", a, b, pages);

    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    a = mark();
    for (size_t n = 0; n < random_span; n++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        size_t pg = rng % random_span;
        if (*(volatile uint64_t *)(m + pg * PAGE_SIZE) != swap_word(pg, 0, 1))
            CHECK(!"page content");
    }
    b = mark();
    report("swap_random", a, b, random_span);

    a = mark();
    CHECK_OK(munmap(m, pages * PAGE_SIZE));
    b = mark();
    report("swap_munmap", a, b, pages);
    return 0;
}
