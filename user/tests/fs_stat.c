/* fs_stat - newfstatat and fstat on files, directories and descriptors. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
    struct stat st;

    CHECK_OK(fstatat(AT_FDCWD, DATA_BIG_PATH, &st, 0));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_size, DATA_BIG_SIZE);
    CHECK_EQ(st.st_mode & 0777, 0444);
    CHECK_EQ(st.st_nlink, 1);

    CHECK_OK(stat(DATA_HELLO_PATH, &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_size, strlen(DATA_HELLO_TEXT));

    CHECK_OK(stat(DATA_NOTELF_PATH, &st));
    CHECK_EQ(st.st_mode & 0777, 0755);

    CHECK_OK(stat("/data", &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_OK(stat("/", &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_OK(stat("/tests/fs_stat", &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK(st.st_mode & 0100);

    /* fstat and AT_EMPTY_PATH on an open descriptor agree with the path lookup. */
    int fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    struct stat by_fd, empty;
    CHECK_OK(fstat(fd, &by_fd));
    CHECK_OK(fstatat(fd, "", &empty, AT_EMPTY_PATH));
    CHECK_OK(stat(DATA_BIG_PATH, &st));
    CHECK_EQ(by_fd.st_size, DATA_BIG_SIZE);
    CHECK_EQ(empty.st_size, DATA_BIG_SIZE);
    CHECK_EQ(by_fd.st_ino, st.st_ino);
    CHECK_EQ(by_fd.st_dev, st.st_dev);
    CHECK_EQ(by_fd.st_mode, st.st_mode);
    CHECK_OK(close(fd));

    /* Distinct files have distinct inode numbers. */
    struct stat a, b;
    CHECK_OK(stat("/data/dir/a", &a));
    CHECK_OK(stat("/data/dir/b", &b));
    CHECK(a.st_ino != b.st_ino);

    /* Relative lookup under a directory descriptor. */
    int dir = CHECK_OK(open("/data/dir", O_RDONLY | O_DIRECTORY));
    CHECK_OK(fstatat(dir, "c", &st, 0));
    CHECK_EQ(st.st_size, 2);
    CHECK_ERR(fstatat(dir, "nope", &st, 0), ENOENT);
    CHECK_OK(close(dir));

    /* The console is a character device. */
    CHECK_OK(fstat(1, &st));
    CHECK(S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode));

    /* Errors. */
    CHECK_ERR(stat("/data/missing", &st), ENOENT);
    CHECK_ERR(stat("", &st), ENOENT);
    CHECK_ERR(stat("/data/hello.txt/", &st), ENOTDIR);
    CHECK_ERR(fstat(-1, &st), EBADF);
    CHECK_ERR(fstat(777, &st), EBADF);
    CHECK_ERR(fstatat(-1, "relative", &st, 0), EBADF);
    CHECK_ERR(fstatat(AT_FDCWD, DATA_HELLO_PATH, &st, 0x12345000), EINVAL);
    return 0;
}
