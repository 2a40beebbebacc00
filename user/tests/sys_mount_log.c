/*
 * sys_mount_log - what a Linux init and dmesg need: mount of proc on /proc and devtmpfs
 * on /dev succeeds (on pagoda they are always there), unknown file systems ENODEV,
 * umount of them EBUSY; a tmpfs mounted over a directory hides it until umount; syslog(2) reads the kernel log (klogctl, as dmesg does). Under
 * Linux user-mode emulation only the log's size and reading are checked (mounting there
 * would change the host's view).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
    /* On pagoda a process killed by a fault is logged each time: a line the log must
     * hold however much the kernel printed before (it keeps the newest). */
    char mark[64];
    mark[0] = 0;
    if (on_pagoda()) {
        pid_t pid = CHECK_OK(fork());
        if (pid == 0) {
            close(2);
            volatile int *volatile p = (volatile int *)8;
            *p = 1;
            _exit(0);
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFSIGNALED(status));
        snprintf(mark, sizeof mark, "pid %d (sys_mount_log) killed by signal", pid);
    }
    int size = CHECK_OK(klogctl(10, NULL, 0)); /* SYSLOG_ACTION_SIZE_BUFFER */
    CHECK(size > 0);
    char *buf = malloc(size);
    CHECK(buf != NULL);
    int n = CHECK_OK(klogctl(3, buf, size)); /* SYSLOG_ACTION_READ_ALL */
    CHECK(n >= 0 && n <= size);
    if (!on_pagoda())
        return 0;
    CHECK(n > 0);
    CHECK(memmem(buf, n, mark, strlen(mark)) != NULL);
    CHECK_ERR(klogctl(5, NULL, 0), EINVAL); /* the log is never cleared */

    CHECK_OK(mount("proc", "/proc", "proc", 0, NULL));
    CHECK_OK(mount("devtmpfs", "/dev", "devtmpfs", 0, NULL));
    CHECK_ERR(mount("proc", "/data", "proc", 0, NULL), EINVAL);
    CHECK_ERR(mount("sysfs", "/sys", "sysfs", 0, NULL), ENOENT);
    CHECK_ERR(mount("none", "/data", "nosuchfs", 0, NULL), ENODEV);
    /* A tmpfs over a directory of the initramfs hides it until it is unmounted. */
    CHECK_OK(mount("none", "/data/dir", "tmpfs", 0, "size=1m"));
    CHECK_ERR(access("/data/dir/a", R_OK), ENOENT);
    CHECK_OK(umount("/data/dir"));
    CHECK_OK(access("/data/dir/a", R_OK));
    CHECK_ERR(mount("none", "/data/hello.txt", "tmpfs", 0, NULL), ENOTDIR);
    CHECK_ERR(mount("none", "/data/dir", "tmpfs", 0, "size=1x"), EINVAL);
    CHECK_ERR(umount("/proc"), EBUSY);
    CHECK_ERR(umount("/data"), EINVAL);
    /* Still there. */
    CHECK_OK(access("/proc/self/stat", R_OK));
    CHECK_OK(access("/dev/null", R_OK));
    return 0;
}
