/*
 * busybox_everyday - BusyBox's shell runs /data/everyday.sh, everyday cases (listings,
 * pipelines, redirections, substitutions, text tools, devices, jobs and signals, ps,
 * free, top, df) each with its output checked by the script, which ends with
 * "EVERYDAY N passed, 0 failed". Without BusyBox in the initramfs there is nothing to run.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
    if (access("/bin/busybox", X_OK) != 0) {
        CHECK(!on_pagoda() || errno == ENOENT);
        return 0;
    }
    char *argv[] = {"sh", "/data/everyday.sh", NULL};
    char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", NULL};
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        execve("/bin/busybox", argv, envp);
        _exit(127);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    return 0;
}
