/*
 * proc_exe - readlinkat("/proc/self/exe") names the executed file: /tests/proc_exe
 * here, /libexec/probe in a child after execve. Truncation follows readlink's rules.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define SELF "/tests/proc_exe"

int main(void)
{
    char buf[256];
    memset(buf, 'X', sizeof buf);
    ssize_t n = CHECK_OK(readlinkat(AT_FDCWD, "/proc/self/exe", buf, sizeof buf));
    /* No terminating NUL is written. */
    CHECK_EQ(n, strlen(SELF));
    CHECK_EQ(buf[n], 'X');
    CHECK(memcmp(buf, SELF, (size_t)n) == 0);

    /* A short buffer gets the first bytes only, and the return value says how many. */
    memset(buf, 'X', sizeof buf);
    CHECK_EQ(readlinkat(AT_FDCWD, "/proc/self/exe", buf, 4), 4);
    CHECK(memcmp(buf, "/tes", 4) == 0);
    CHECK_EQ(buf[4], 'X');

    /* A regular file is not a symbolic link; a missing one does not exist. */
    CHECK_ERR(readlinkat(AT_FDCWD, DATA_HELLO_PATH, buf, sizeof buf), EINVAL);
    CHECK_ERR(readlinkat(AT_FDCWD, "/data/missing", buf, sizeof buf), ENOENT);
    CHECK_ERR(readlinkat(AT_FDCWD, "/proc/self/exe", buf, 0), EINVAL);

    /* After execve the link names the new program. */
    char *argv[] = {"probe", "exe", NULL};
    char *envp[] = {NULL};
    CHECK_EXITED(spawn_wait(PROBE_PATH, argv, envp), 0);
    return 0;
}
