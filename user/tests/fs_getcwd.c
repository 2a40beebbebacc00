/*
 * fs_getcwd - getcwd: the system call returns the length written, NUL included (glibc's
 * getcwd() then returns the buffer), ERANGE for a buffer too small, EFAULT for a bad
 * one; chdir moves it. Regression: pagoda returned the buffer's address, and glibc's
 * getcwd() then returned NULL for every stack buffer.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
    char buf[256];
    CHECK_OK(chdir("/"));
    CHECK_EQ(syscall(SYS_getcwd, buf, sizeof buf), 2);
    CHECK_EQ(strcmp(buf, "/"), 0);
    CHECK(getcwd(buf, sizeof buf) == buf);
    CHECK_EQ(strcmp(buf, "/"), 0);

    CHECK_OK(chdir(DATA_DIR_PATH));
    CHECK(getcwd(buf, sizeof buf) == buf);
    CHECK_EQ(strcmp(buf, DATA_DIR_PATH), 0);
    CHECK_EQ(syscall(SYS_getcwd, buf, sizeof buf), (long)strlen(DATA_DIR_PATH) + 1);
    /* Exactly long enough, one byte short. */
    CHECK_EQ(syscall(SYS_getcwd, buf, strlen(DATA_DIR_PATH) + 1), (long)strlen(DATA_DIR_PATH) + 1);
    CHECK_ERR(syscall(SYS_getcwd, buf, strlen(DATA_DIR_PATH)), ERANGE);
    CHECK_ERR(syscall(SYS_getcwd, (void *)8, sizeof buf), EFAULT);

    /* Relative moves. */
    CHECK_OK(chdir(".."));
    CHECK(getcwd(buf, sizeof buf) == buf);
    CHECK_EQ(strcmp(buf, "/data"), 0);
    return 0;
}
