/*
 * /init - pagoda's first process: runs the test suite, the benchmarks, the demos or a
 * shell, then powers the machine off.
 *
 *   init test NAME...   run /tests/NAME for each NAME (`all`: every file in /tests,
 *                       sorted); one line per test:
 *                         TEST user/NAME PASS
 *                         TEST user/NAME FAIL exit status N
 *                         TEST user/NAME FAIL killed by signal S (SIGNAME)
 *                       then `TESTS DONE`
 *   init bench NAME...  the same for /bench (`TEST bench/NAME ...`, then `BENCHES DONE`);
 *                       the programs themselves print `BENCH <name> <value> <unit>`
 *   init demo           run the demo script /data/demo.sh with BusyBox's shell (or a
 *                       few programs of /bin without BusyBox), then `DEMO DONE`
 *   init [shell]        BusyBox's ash on the console, as a login shell leading its own
 *                       session with the console as its controlling terminal (pagoda's
 *                       own /bin/sh without BusyBox)
 *
 * Every program gets init's environment (the kernel command line's `key=value` words).
 * While waiting for a program, init also reaps orphans re-parented to it. As process 1
 * it ends with reboot(RB_POWER_OFF); run as any other process (the Linux check runs it
 * under qemu-riscv64-static) it exits instead: 0 when everything passed, 1 otherwise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROGRAMS 256

static char **init_envp;

/* Print to the console with one write() per line. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    ssize_t off = 0;
    while (off < n) {
        ssize_t w = write(1, line + off, (size_t)(n - off));
        if (w <= 0)
            return;
        off += w;
    }
}

/* Power off as process 1; otherwise just exit with `code`. */
static _Noreturn void finish(int code)
{
    if (getpid() == 1) {
        reboot(RB_POWER_OFF);
        say("init: reboot(RB_POWER_OFF) failed: %s\n", strerrorname_np(errno));
        for (;;)
            pause();
    }
    exit(code);
}

static int wait_for(pid_t pid);

/* Run `path` with argv {path, args...}; returns its wait status, or -1 if fork failed. */
static int run(const char *path, char *const args[])
{
    char *argv[16];
    size_t argc = 0;
    argv[argc++] = (char *)path;
    for (size_t i = 0; args && args[i] && argc < 15; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execve(path, argv, init_envp);
        dprintf(2, "init: cannot execute %s: %s\n", path, strerrorname_np(errno));
        _exit(127);
    }
    return wait_for(pid);
}

/* Waits for child `pid`, reaping orphans meanwhile; its wait status, or -1. */
static int wait_for(pid_t pid)
{
    for (;;) {
        int status;
        pid_t got = wait4(-1, &status, 0, NULL);
        if (got == pid)
            return status;
        if (got < 0 && errno != EINTR) {
            say("init: wait4: %s\n", strerrorname_np(errno));
            return -1;
        }
        /* Another child: an orphan re-parented to init. Reaped; keep waiting. */
    }
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the files in `dir`, sorted; returns how many (at most `max`). */
static size_t list_dir(const char *dir, char **names, size_t max)
{
    DIR *d = opendir(dir);
    if (!d) {
        say("init: cannot open %s: %s\n", dir, strerrorname_np(errno));
        return 0;
    }
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (e->d_name[0] == '.')
            continue;
        if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
            continue;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], compare_names);
    return n;
}

/* Run /DIR/NAME for every name (or every file of /DIR for `all`); returns failures. */
static int run_suite(const char *dir, const char *label, char **args, int nargs)
{
    char *names[MAX_PROGRAMS];
    size_t n = 0;
    char path[256];
    snprintf(path, sizeof path, "/%s", dir);
    if (nargs == 1 && strcmp(args[0], "all") == 0) {
        n = list_dir(path, names, MAX_PROGRAMS);
    } else {
        for (int i = 0; i < nargs && n < MAX_PROGRAMS; i++)
            names[n++] = args[i];
    }
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "/%s/%s", dir, names[i]);
        int status = run(path, NULL);
        if (status == -1) {
            say("TEST %s/%s FAIL fork failed: %s\n", label, names[i], strerrorname_np(errno));
            failed++;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            say("TEST %s/%s PASS\n", label, names[i]);
        } else if (WIFEXITED(status)) {
            say("TEST %s/%s FAIL exit status %d\n", label, names[i], WEXITSTATUS(status));
            failed++;
        } else if (WIFSIGNALED(status)) {
            const char *abbrev = sigabbrev_np(WTERMSIG(status));
            say("TEST %s/%s FAIL killed by signal %d (SIG%s)\n", label, names[i],
                WTERMSIG(status), abbrev ? abbrev : "?");
            failed++;
        } else {
            say("TEST %s/%s FAIL wait status 0x%x\n", label, names[i], status);
            failed++;
        }
    }
    return failed;
}

/* BusyBox (user/real/real.mk): the shell and tools of `make run`. */
#define BUSYBOX "/bin/busybox"
#define BUSYBOX_SH "/usr/bin/sh"

/* The environment of the interactive shell and the demo: BusyBox's applets first. */
static char *shell_envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "TERM=vt102",
                             "SHELL=" BUSYBOX_SH, "USER=root", "LOGNAME=root",
                             "PS1=\\w \\$ ", NULL};

static void demo(void)
{
    if (access(BUSYBOX, X_OK) == 0) {
        static char *argv[] = {"sh", "/data/demo.sh", NULL};
        pid_t pid = fork();
        if (pid == 0) {
            execve(BUSYBOX_SH, argv, shell_envp);
            _exit(127);
        }
        if (pid > 0)
            wait_for(pid);
        say("DEMO DONE\n");
        return;
    }
    static char *ls_args[] = {"/", NULL};
    static char *cat_args[] = {"/data/hello.txt", NULL};
    static char *echo_args[] = {"says", "hello", NULL};
    say("--- /bin/hello\n");
    run("/bin/hello", NULL);
    say("--- /bin/echo says hello\n");
    run("/bin/echo", echo_args);
    say("--- /bin/ls /\n");
    run("/bin/ls", ls_args);
    say("--- /bin/cat /data/hello.txt\n");
    run("/bin/cat", cat_args);
    say("--- /bin/meminfo\n");
    run("/bin/meminfo", NULL);
    say("DEMO DONE\n");
}

/* The interactive shell: BusyBox's ash as a login shell ("-sh") in a session of its
 * own whose controlling terminal is the console (what getty and login give a shell on
 * Linux), so that it has job control and ^C reaches its foreground job. Returns its
 * wait status. */
static int shell(void)
{
    if (access(BUSYBOX, X_OK) != 0)
        return run("/bin/sh", NULL);
    say("pagoda: BusyBox ash on the console (Ctrl-A X quits QEMU; pagoda's own "
        "programs are in /bin, the tests in /tests)\n");
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        static char *argv[] = {"-sh", NULL};
        if (setsid() < 0 || ioctl(0, TIOCSCTTY, 1) < 0)
            dprintf(2, "init: no controlling terminal: %s\n", strerrorname_np(errno));
        execve(BUSYBOX_SH, argv, shell_envp);
        dprintf(2, "init: cannot execute %s: %s\n", BUSYBOX_SH, strerrorname_np(errno));
        _exit(127);
    }
    return wait_for(pid);
}

int main(int argc, char **argv, char **envp)
{
    init_envp = envp;
    const char *mode = argc > 1 ? argv[1] : "shell";

    if (strcmp(mode, "test") == 0 || strcmp(mode, "bench") == 0) {
        int is_test = mode[0] == 't';
        if (argc < 3) {
            say("init: usage: init %s NAME... | all\n", mode);
            finish(1);
        }
        int failed = run_suite(is_test ? "tests" : "bench", is_test ? "user" : "bench",
                               argv + 2, argc - 2);
        say(is_test ? "TESTS DONE\n" : "BENCHES DONE\n");
        finish(failed ? 1 : 0);
    }
    if (strcmp(mode, "demo") == 0) {
        demo();
        finish(0);
    }
    if (strcmp(mode, "shell") == 0) {
        int status = shell();
        finish(status == 0 ? 0 : 1);
    }
    say("init: unknown mode '%s' (expected test, bench, demo or shell)\n", mode);
    finish(1);
}
