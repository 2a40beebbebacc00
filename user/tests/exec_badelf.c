/*
 * exec_badelf - malformed and hostile ELF files (made by tools/mkbadelf.py into
 * /data/badelf) are refused by execve with ENOEXEC, and the kernel carries on: truncated
 * headers, program headers out of the file, wrong class/data/machine/type, PT_INTERP,
 * segments past the end of the file, in the kernel half, past the user half, wrapping,
 * huge, overlapping or misaligned, a bad entry point, no PT_LOAD. The controls `good`
 * (a copy of /libexec/probe) and `good_tiny` (the base every bad case differs from by one
 * defect) run and exit 0.
 *
 * Each file is tried in a child: execve(path, {path, NULL}, {NULL}); if it returns, the
 * child exits EXEC_FAILED + errno. On pagoda that must be EXEC_FAILED + ENOEXEC. Under
 * QEMU's user mode (docs/user-programs.md) the host kernel refuses only files that do
 * not match binfmt_misc's riscv64 pattern; the others start QEMU, which then fails as a
 * process. Outside pagoda the test therefore accepts ENOEXEC or any end other than exit 0
 * (the bad files are made from good_tiny, which exits 0 at once, so a loader that
 * accepts one shows up as exit 0), except for the QEMU_RUNS cases, which QEMU loads and
 * runs (Linux 6.1 kills the process with SIGSEGV after the point of no return instead).
 *
 * On pagoda MemFree returns to its baseline: refused files leak nothing.
 * `exec_badelf -v` prints what happened to each file.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define BADELF_DIR "/data/badelf"
/* Exit status of a child whose execve returned: EXEC_FAILED + errno. */
#define EXEC_FAILED 100

enum {
    GOOD = 1,      /* must run and exit 0 everywhere */
    QEMU_RUNS = 2, /* QEMU 7.2 loads it and it exits 0; only pagoda's verdict is checked */
    LOUD = 4,      /* keep stderr open in the child (a control: its errors matter) */
};

static const struct {
    const char *name;
    int flags;
} cases[] = {
    {"good", GOOD | LOUD},        /* run as `good exit 0` */
    {"good_tiny", GOOD | LOUD},   /* exit_group(0) at once */
    {"trunc_ehdr", 0},            /* 10 bytes */
    {"trunc_phdrs", 0},           /* cut in the middle of the second program header */
    {"phoff_past_end", 0},        /* e_phoff 4 KiB past the end of the file */
    {"phnum_huge", 0},            /* e_phnum 0xffff */
    {"phnum_zero", 0},            /* e_phnum 0 */
    {"phentsize_bad", 0},         /* e_phentsize 32 */
    {"machine_x86_64", 0},        /* e_machine EM_X86_64 */
    {"class32", 0},               /* ELFCLASS32 */
    {"bigendian", 0},             /* ELFDATA2MSB */
    {"type_rel", 0},              /* ET_REL */
    {"interp", 0},                /* PT_INTERP /lib/ld-linux-riscv64-lp64d.so.1 */
    {"load_past_eof", 0},         /* data p_offset + p_filesz 8 KiB past the end */
    {"filesz_gt_memsz", QEMU_RUNS}, /* data p_filesz 16 > p_memsz 8 */
    {"vaddr_kernel_half", 0},     /* data p_vaddr 0xffffffc000000958 */
    {"beyond_user_top", QEMU_RUNS}, /* data on the last user page, 8 KiB: past 2^38 */
    {"memsz_wrap", 0},            /* data p_vaddr + p_memsz wraps around 2^64 */
    {"memsz_huge", 0},            /* data p_memsz 2^62 */
    {"overlap", 0},               /* data segment's bytes inside the text segment's */
    {"incongruent", 0},           /* data p_offset != p_vaddr modulo 4096 */
    {"entry_in_data", 0},         /* e_entry in the (non-executable) data segment */
    {"entry_unmapped", 0},        /* e_entry one page below the text segment */
    {"no_load", 0},               /* no PT_LOAD (both turned into PT_NULL) */
};
#define NCASES (sizeof cases / sizeof cases[0])

/* fork; the child execs `path` (stderr closed unless `loud`); returns the wait status. */
static int try_exec(const char *path, char *const argv[], int loud)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char *no_env[] = {NULL};
        if (!loud)
            close(2); /* QEMU's "Invalid ELF image" notes */
        execve(path, argv, no_env);
        _exit(EXEC_FAILED + errno);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    return status;
}

static const char *describe(int status)
{
    static char buf[64];
    if (WIFEXITED(status) && WEXITSTATUS(status) > EXEC_FAILED &&
        WEXITSTATUS(status) < EXEC_FAILED + 134) { /* errno values end at 133 */
        int err = WEXITSTATUS(status) - EXEC_FAILED;
        snprintf(buf, sizeof buf, "execve failed with %s (%d)", errno_name(err), err);
        return buf;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return "execve succeeded and the program exited 0";
    snprintf(buf, sizeof buf, "execve succeeded, then the child %s", describe_status(status));
    return buf;
}

/* Every file of BADELF_DIR is in cases[] (a new case needs its row here). */
static void check_directory(void)
{
    DIR *dir = opendir(BADELF_DIR);
    CHECK(dir != NULL);
    size_t files = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t i = 0;
        while (i < NCASES && strcmp(cases[i].name, e->d_name) != 0)
            i++;
        if (i == NCASES)
            check_fail(__FILE__, __LINE__, "%s/%s has no row in cases[]", BADELF_DIR,
                       e->d_name);
        files++;
    }
    CHECK_OK(closedir(dir));
    CHECK_EQ(files, NCASES);
}

int main(int argc, char **argv)
{
    int verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    check_directory();

    /* Round 0 warms up (slabs fill once; this process's heap grows for opendir and
     * printf); MemFree is then measured over two more rounds, so that leaking a page per
     * refused file would show (44 pages > the slack). */
    long baseline = -1;
    for (int round = 0; round < 3; round++) {
        if (round == 1)
            baseline = meminfo_kb("MemFree");
        if (verbose)
            printf("round %d: MemFree %ld kB\n", round, meminfo_kb("MemFree"));
        for (size_t i = 0; i < NCASES; i++) {
            char path[64];
            snprintf(path, sizeof path, "%s/%s", BADELF_DIR, cases[i].name);
            char *plain[] = {path, NULL};
            char *exit0[] = {path, "exit", "0", NULL};
            int good = cases[i].flags & GOOD;
            int status = try_exec(path, strcmp(cases[i].name, "good") == 0 ? exit0 : plain,
                                  cases[i].flags & LOUD);
            if (verbose && round == 0)
                printf("%-18s %s\n", cases[i].name, describe(status));
            if (good) {
                if (!exited_with(status, 0))
                    check_fail(__FILE__, __LINE__, "%s: %s, expected it to run and exit 0",
                               path, describe(status));
            } else if (on_pagoda()) {
                if (!exited_with(status, EXEC_FAILED + ENOEXEC))
                    check_fail(__FILE__, __LINE__, "%s: %s, expected ENOEXEC", path,
                               describe(status));
            } else if (!(cases[i].flags & QEMU_RUNS)) {
                if (exited_with(status, 0))
                    check_fail(__FILE__, __LINE__,
                               "%s: %s, expected ENOEXEC or a failing process", path,
                               describe(status));
            }
        }
    }

    /* Still able to run programs, and nothing leaked. */
    char *exit7[] = {"probe", "exit", "7", NULL};
    char *no_env[] = {NULL};
    CHECK_EXITED(spawn_wait(PROBE_PATH, exit7, no_env), 7);
    CHECK_MEMFREE_BACK(baseline);
    return 0;
}
