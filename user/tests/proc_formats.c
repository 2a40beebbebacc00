/*
 * proc_formats - /proc as procps-style tools read it, and the small system calls they
 * use: /proc and /proc/self listed; /proc/self/stat (44+ fields), statm, status,
 * cmdline, comm, smaps, maps with file names, fd/; /proc/sys (with a chdir into it); /proc/stat, uptime, loadavg, cpuinfo, mounts; getgroups,
 * getresuid/getresgid, capget, personality, getrusage, prctl(PR_SET_NAME/PR_GET_NAME),
 * setrlimit within the hard limit. Under Linux user-mode emulation QEMU fakes some of
 * /proc/self (stat's later fields, comm): those values are checked on pagoda only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/capability.h>

#include "check.h"

/* The whole of `path` (NUL-terminated) in `buf`; its length. */
static long slurp(const char *path, char *buf, size_t size)
{
    int fd = CHECK_OK(open(path, O_RDONLY));
    long n = 0, r;
    while ((r = read(fd, buf + n, size - 1 - n)) > 0)
        n += r;
    CHECK_OK(r);
    buf[n] = 0;
    CHECK_OK(close(fd));
    return n;
}

/* Whether directory `dir` lists `name`. */
static int lists(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int found = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        found |= strcmp(e->d_name, name) == 0;
    CHECK_OK(closedir(d));
    return found;
}

static void check_pid_stat(char *argv0)
{
    char buf[4096];
    slurp("/proc/self/stat", buf, sizeof buf);
    /* "pid (comm) state ...": the fields after the comm's closing parenthesis. */
    CHECK_EQ(atoi(buf), getpid());
    char *close = strrchr(buf, ')');
    CHECK(close != NULL);
    char *fields[64];
    int n = 0;
    for (char *t = strtok(close + 2, " \n"); t && n < 64; t = strtok(NULL, " \n"))
        fields[n++] = t;
    CHECK(n + 2 >= 44);
    if (!on_pagoda())
        return;
    /* Field k (1-based, as proc(5) counts) is fields[k - 3]. */
    CHECK(strcmp(fields[0], "R") == 0);
    CHECK_EQ(atol(fields[4 - 3]), getppid());
    CHECK_EQ(atol(fields[5 - 3]), getpgrp());
    CHECK_EQ(atol(fields[6 - 3]), getsid(0));
    CHECK_EQ(atol(fields[20 - 3]), 1);                   /* num_threads */
    CHECK(strtoul(fields[23 - 3], NULL, 10) > 0);        /* vsize */
    CHECK(atol(fields[24 - 3]) > 0);                     /* rss */
    CHECK(strstr(buf, "(proc_formats)") != NULL);
    (void)argv0;
}

static void check_files(char **argv)
{
    char buf[8192], path[64];
    CHECK(lists("/proc", "self"));
    snprintf(path, sizeof path, "%d", getpid());
    CHECK(lists("/proc", path));
    CHECK(lists("/proc/self", "stat"));
    CHECK(lists("/proc/self", "maps"));

    slurp("/proc/self/statm", buf, sizeof buf);
    long size, resident;
    CHECK_EQ(sscanf(buf, "%ld %ld", &size, &resident), 2);
    CHECK(size >= resident && resident > 0);

    slurp("/proc/self/status", buf, sizeof buf);
    CHECK(strstr(buf, "\nPid:\t") != NULL);
    CHECK(strstr(buf, "\nUid:\t0\t0\t0\t0\n") != NULL);
    if (on_pagoda())
        CHECK(strstr(buf, "\nState:\tR (running)\n") != NULL);

    long n = slurp("/proc/self/cmdline", buf, sizeof buf);
    CHECK_EQ(n, (long)strlen(argv[0]) + 1);
    CHECK(strcmp(buf, argv[0]) == 0);

    slurp("/proc/uptime", buf, sizeof buf);
    double up, idle;
    CHECK_EQ(sscanf(buf, "%lf %lf", &up, &idle), 2);
    CHECK(up > 0 && idle >= 0);

    slurp("/proc/loadavg", buf, sizeof buf);
    double l1, l5, l15;
    int running, total, last;
    CHECK_EQ(sscanf(buf, "%lf %lf %lf %d/%d %d", &l1, &l5, &l15, &running, &total, &last), 6);
    CHECK(running >= 1 && total >= running && last >= 1);

    slurp("/proc/stat", buf, sizeof buf);
    CHECK(strncmp(buf, "cpu ", 4) == 0);
    CHECK(strstr(buf, "\nbtime ") != NULL);
    CHECK(strstr(buf, "\nprocesses ") != NULL);

    slurp("/proc/cpuinfo", buf, sizeof buf);
    int cpus = 0;
    for (char *p = buf; (p = strstr(p, "processor")) != NULL; p++)
        cpus++;
    CHECK_EQ(cpus, sysconf(_SC_NPROCESSORS_ONLN));

    slurp("/proc/mounts", buf, sizeof buf);
    CHECK(strstr(buf, " /proc proc ") != NULL);

    /* smaps: 10 pages touched in a fresh 6 GiB mapping are 40 kB of Rss (on pagoda its
     * 1.5 million pages are counted over several reads: one read may look up only
     * 2^20 pages). */
    size_t len = 6144 * MIB;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(m != MAP_FAILED);
    CHECK_OK(madvise(m, len, MADV_NOHUGEPAGE)); /* 4 KiB pages: 10 touches, 40 kB */
    for (int i = 0; i < 10; i++)
        m[i * (len / 10)] = 1;
    static char smaps[1 << 16];
    slurp("/proc/self/smaps", smaps, sizeof smaps);
    char head[32];
    snprintf(head, sizeof head, "%lx-", (unsigned long)m);
    char *area = strstr(smaps, head);
    CHECK(area != NULL);
    char *rss = strstr(area, "\nRss:");
    CHECK(rss != NULL);
    CHECK_EQ(atol(rss + 5), 40);
    CHECK_OK(munmap(m, len));
}

/* /proc/self/maps names what is mapped as Linux does: the program's text by its path,
 * device and inode (those of stat), a mapped data file likewise at its offset, the stack
 * and shared anonymous memory by their names, each name from column 73. */
static void check_maps_names(void)
{
    char exe[256];
    long n = CHECK_OK(readlink("/proc/self/exe", exe, sizeof exe - 1));
    exe[n] = 0;
    struct stat st;
    CHECK_OK(stat(exe, &st));
    int fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    struct stat data;
    CHECK_OK(fstat(fd, &data));
    char *f = mmap(NULL, 2 * PAGE_SIZE, PROT_READ, MAP_PRIVATE, fd, PAGE_SIZE);
    CHECK(f != MAP_FAILED);
    char *shm = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shm != MAP_FAILED);
    static char maps[1 << 16];
    slurp("/proc/self/maps", maps, sizeof maps);
    int text = 0, file = 0, stack = 0, zero = 0;
    for (char *line = strtok(maps, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        unsigned long start, end, offset, ino;
        unsigned major, minor;
        char perms[5];
        int name_at = 0;
        CHECK_EQ(sscanf(line, "%lx-%lx %4s %lx %x:%x %lu %n", &start, &end, perms, &offset,
                        &major, &minor, &ino, &name_at), 7);
        const char *name = line + name_at;
        if (*name != 0)
            CHECK_EQ(name - line, 73);
        if (strcmp(name, exe) == 0 && perms[2] == 'x') {
            CHECK_EQ(ino, (unsigned long)st.st_ino);
            CHECK_EQ(makedev(major, minor), st.st_dev);
            text++;
        }
        if (start == (unsigned long)f) {
            CHECK(strcmp(name, DATA_BIG_PATH) == 0);
            CHECK_EQ(offset, PAGE_SIZE);
            CHECK_EQ(ino, (unsigned long)data.st_ino);
            file++;
        }
        if (start == (unsigned long)shm) {
            CHECK(strcmp(name, "/dev/zero (deleted)") == 0);
            zero++;
        }
        stack += strcmp(name, "[stack]") == 0;
    }
    CHECK_EQ(text, 1);
    CHECK_EQ(file, 1);
    CHECK_EQ(zero, 1);
    CHECK_EQ(stack, 1);
    CHECK_OK(munmap(f, 2 * PAGE_SIZE));
    CHECK_OK(munmap(shm, PAGE_SIZE));
    CHECK_OK(close(fd));
}

/* /proc/self/fd: a link per descriptor, to the file's path or pipe:[N]. */
static void check_fds(void)
{
    int fd = CHECK_OK(open(DATA_HELLO_PATH, O_RDONLY));
    int p[2];
    CHECK_OK(pipe(p));
    char name[16], path[64], target[128];
    snprintf(name, sizeof name, "%d", fd);
    CHECK(lists("/proc/self/fd", name));
    snprintf(name, sizeof name, "%d", p[1]);
    CHECK(lists("/proc/self/fd", name));
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    long n = CHECK_OK(readlink(path, target, sizeof target - 1));
    target[n] = 0;
    CHECK(strcmp(target, DATA_HELLO_PATH) == 0);
    struct stat st, real;
    CHECK_OK(stat(path, &st));
    CHECK_OK(stat(DATA_HELLO_PATH, &real));
    CHECK_EQ(st.st_ino, real.st_ino);
    CHECK_OK(lstat(path, &st));
    CHECK(S_ISLNK(st.st_mode));
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    n = CHECK_OK(readlink(path, target, sizeof target - 1));
    target[n] = 0;
    CHECK(strncmp(target, "pipe:[", 6) == 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", 900);
    CHECK_ERR(readlink(path, target, sizeof target), ENOENT);
    CHECK_OK(close(p[0]));
    CHECK_OK(close(p[1]));
    CHECK_OK(close(fd));
}

/* /proc/sys: what sysctl reads, reached by a relative path from a chdir into /proc. */
static void check_sys(void)
{
    char buf[256], cwd[64];
    CHECK(lists("/proc", "sys"));
    CHECK(lists("/proc/sys", "kernel"));
    CHECK(lists("/proc/sys/vm", "max_map_count"));
    CHECK_OK(chdir("/proc/sys/kernel"));
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(strcmp(cwd, "/proc/sys/kernel") == 0);
    slurp("ostype", buf, sizeof buf);
    CHECK(strcmp(buf, "Linux\n") == 0);
    slurp("osrelease", buf, sizeof buf);
    struct utsname u;
    CHECK_OK(uname(&u));
    CHECK(strncmp(buf, u.release, strlen(u.release)) == 0);
    slurp("../vm/max_map_count", buf, sizeof buf);
    CHECK(atol(buf) > 0);
    slurp("../fs/file-max", buf, sizeof buf);
    CHECK(atol(buf) > 0);
    CHECK_ERR(chdir("/proc/sys/kernel/ostype"), ENOTDIR);
    CHECK_OK(chdir("/dev/"));
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(strcmp(cwd, "/dev") == 0);
    CHECK_OK(chdir("/"));
}

static void check_calls(void)
{
    gid_t groups[8];
    int ngroups = CHECK_OK(getgroups(8, groups));
    if (on_pagoda())
        CHECK_EQ(ngroups, 0);
    uid_t r = 1, e = 1, s = 1;
    CHECK_OK(getresuid(&r, &e, &s));
    CHECK(r == 0 && e == 0 && s == 0);
    gid_t gr = 1, ge = 1, gs = 1;
    CHECK_OK(getresgid(&gr, &ge, &gs));
    CHECK(gr == 0 && ge == 0 && gs == 0);

    /* An unknown version: the preferred one is written back (and with no data, 0). */
    struct __user_cap_header_struct h = {.version = 0, .pid = 0};
    CHECK_OK(syscall(SYS_capget, &h, NULL));
    CHECK_EQ(h.version, _LINUX_CAPABILITY_VERSION_3);
    struct __user_cap_data_struct d[2];
    CHECK_OK(syscall(SYS_capget, &h, d));
    CHECK(d[0].effective & (1u << CAP_SYS_ADMIN));
    CHECK_EQ(d[0].effective, d[0].permitted);

    CHECK_EQ(syscall(SYS_personality, 0xffffffffUL), 0);

    /* 50 ms of spinning shows in getrusage. */
    struct timeval t0, t;
    gettimeofday(&t0, NULL);
    do
        gettimeofday(&t, NULL);
    while ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_usec - t0.tv_usec) < 50000);
    struct rusage ru;
    CHECK_OK(getrusage(RUSAGE_SELF, &ru));
    long us = ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000 +
              ru.ru_stime.tv_usec;
    CHECK(us >= 20000);
    CHECK(ru.ru_minflt > 0);
    CHECK_ERR(getrusage(5, &ru), EINVAL);

    char name[16];
    CHECK_OK(prctl(PR_SET_NAME, "renamed-process-long"));
    CHECK_OK(prctl(PR_GET_NAME, name));
    CHECK(strcmp(name, "renamed-process") == 0);
    char buf[64];
    if (on_pagoda()) {
        slurp("/proc/self/comm", buf, sizeof buf);
        CHECK(strcmp(buf, "renamed-process\n") == 0);
    }
    CHECK_ERR(prctl(0x7fff0000, 0), EINVAL);

    /* RLIMIT_NOFILE: lowered, it bounds new descriptors; the hard limit cannot be
     * raised past the kernel's, and soft > hard is refused. */
    struct rlimit rl, saved;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &saved));
    rl.rlim_cur = 8;
    rl.rlim_max = saved.rlim_max;
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &rl));
    int fd, highest = -1;
    while ((fd = open("/proc/self/stat", O_RDONLY)) >= 0)
        highest = fd;
    CHECK_EQ(errno, EMFILE);
    CHECK_EQ(highest, 7);
    for (int i = 3; i <= highest; i++)
        CHECK_OK(close(i));
    CHECK_ERR(dup2(0, 9), EBADF);
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &saved));
    rl.rlim_cur = 16;
    rl.rlim_max = 8;
    CHECK_ERR(setrlimit(RLIMIT_NOFILE, &rl), EINVAL);
    rl.rlim_cur = rl.rlim_max = 1UL << 30;
    CHECK_ERR(setrlimit(RLIMIT_NOFILE, &rl), EPERM);
}

int main(int argc, char **argv)
{
    (void)argc;
    check_pid_stat(argv[0]);
    check_files(argv);
    check_fds();
    check_maps_names();
    check_sys();
    check_calls();
    return 0;
}
