/*
 * fs_symlink - symbolic links of the initramfs (user/Makefile's TEST_LINKS): followed by
 * open, stat and execve, not by lstat and readlink; relative, absolute, chained and
 * directory links; dangling links, loops (ELOOP) and a link through a file (ENOTDIR);
 * getdents64 reports them as DT_LNK.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Reads the whole of `path` into `buf` (NUL-terminated); returns its length. */
static long slurp(const char *path, char *buf, size_t size)
{
    int fd = CHECK_OK(open(path, O_RDONLY));
    long n = CHECK_OK(read(fd, buf, size - 1));
    buf[n] = 0;
    CHECK_OK(close(fd));
    return n;
}

/* readlink of `path` must give exactly `want`. */
static void check_readlink(const char *path, const char *want)
{
    char buf[256];
    long n = CHECK_OK(readlink(path, buf, sizeof buf));
    CHECK_EQ(n, (long)strlen(want));
    CHECK(memcmp(buf, want, n) == 0);
}

int main(void)
{
    char buf[256];
    const char *followed[] = {"/data/link-hello", "/data/link-abs", "/data/link-chain",
                              "/data/link-dir/../hello.txt", "/data/link-dir/../link-hello"};
    for (unsigned i = 0; i < sizeof followed / sizeof *followed; i++) {
        CHECK_EQ(slurp(followed[i], buf, sizeof buf), strlen(DATA_HELLO_TEXT));
        CHECK(strcmp(buf, DATA_HELLO_TEXT) == 0);
    }

    struct stat target, st;
    CHECK_OK(stat(DATA_HELLO_PATH, &target));
    CHECK_OK(stat("/data/link-chain", &st));
    CHECK_EQ(st.st_ino, target.st_ino);
    CHECK(S_ISREG(st.st_mode));
    CHECK_OK(lstat("/data/link-hello", &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(st.st_size, strlen("hello.txt"));
    CHECK(st.st_ino != target.st_ino);
    CHECK_OK(fstatat(AT_FDCWD, "/data/link-abs", &st, AT_SYMLINK_NOFOLLOW));
    CHECK(S_ISLNK(st.st_mode));
    /* A link to a directory: a directory through stat, a link through lstat. */
    CHECK_OK(stat("/data/link-dir", &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_OK(lstat("/data/link-dir", &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK_OK(lstat("/data/link-dir/", &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(slurp("/data/link-dir/a", buf, sizeof buf), 2);
    CHECK(strcmp(buf, "a\n") == 0);
    int dir = CHECK_OK(open("/data/link-dir", O_RDONLY | O_DIRECTORY));
    int a = CHECK_OK(openat(dir, "b", O_RDONLY));
    CHECK_EQ(read(a, buf, sizeof buf), 2);
    CHECK_OK(close(a));
    CHECK_OK(close(dir));

    check_readlink("/data/link-hello", "hello.txt");
    check_readlink("/data/link-abs", "/data/hello.txt");
    check_readlink("/data/link-dangling", "/nowhere");
    CHECK_ERR(readlink(DATA_HELLO_PATH, buf, sizeof buf), EINVAL);
    CHECK_ERR(readlink("/data/none", buf, sizeof buf), ENOENT);
    /* A short buffer gets the first bytes, without a NUL. */
    CHECK_EQ(readlink("/data/link-abs", buf, 5), 5);
    CHECK(memcmp(buf, "/data", 5) == 0);

    CHECK_ERR(open("/data/link-dangling", O_RDONLY), ENOENT);
    CHECK_OK(lstat("/data/link-dangling", &st));
    CHECK_ERR(open("/data/link-loop1", O_RDONLY), ELOOP);
    CHECK_ERR(stat("/data/link-loop2", &st), ELOOP);
    CHECK_OK(lstat("/data/link-loop1", &st));
    CHECK_ERR(open("/data/link-loop1/x", O_RDONLY), ELOOP);
    CHECK_ERR(open("/data/link-file", O_RDONLY), ENOTDIR);
    CHECK_ERR(open("/data/link-hello/x", O_RDONLY), ENOTDIR);
    CHECK_ERR(access("/data/link-loop1", F_OK), ELOOP);

    /* getdents64 says DT_LNK for a link, DT_DIR / DT_REG for the others. */
    DIR *d = opendir("/data");
    CHECK(d != NULL);
    int links = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, "link-", 5) == 0) {
            CHECK_EQ(e->d_type, DT_LNK);
            links++;
        } else if (strcmp(e->d_name, "hello.txt") == 0) {
            CHECK_EQ(e->d_type, DT_REG);
        } else if (strcmp(e->d_name, "dir") == 0) {
            CHECK_EQ(e->d_type, DT_DIR);
        }
    }
    CHECK_EQ(links, 9);
    CHECK_OK(closedir(d));
    return 0;
}
