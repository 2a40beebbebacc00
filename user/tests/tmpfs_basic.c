/*
 * tmpfs_basic - the writable in-memory file system at /tmp and /dev/shm, as on Linux:
 * open(O_CREAT|O_EXCL|O_TRUNC|O_APPEND), write/pwrite/writev, holes, ftruncate,
 * unlink while open, mkdir/rmdir, rename (replace, noreplace, exchange, into itself,
 * across file systems), symlink/readlink (links into the read-only root too), link,
 * utimensat, chmod, umask, fsync, statfs, getdents, long names; a tmpfs mounted with
 * size=64k fills up with ENOSPC and gives its space back when files go; after it all,
 * the memory the files took is free again.
 *
 * Under Linux (the reference run) /tmp is a directory of the host's disk inside the
 * chroot; the checks that only hold for a tmpfs there (statfs) run on pagoda only, or
 * on /dev/shm, a tmpfs on both.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"

#define TMPFS_MAGIC 0x01021994
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

/* The test's own directory under /tmp. */
static char dir[64];

/* dir/name in a static buffer (one of two, so two may be used at once). */
static const char *at(const char *name)
{
    static char buf[2][128];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", dir, name);
    return buf[which];
}

/* The whole contents of `path` (at most `cap` bytes) into `out`; their length. */
static long slurp(const char *path, char *out, size_t cap)
{
    int fd = CHECK_OK(open(path, O_RDONLY));
    long n = CHECK_OK(read(fd, out, cap));
    CHECK_OK(close(fd));
    return n;
}

/* Writes `text` to a new file `path` (replacing one there). */
static void put(const char *path, const char *text)
{
    int fd = CHECK_OK(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    CHECK_EQ(write(fd, text, strlen(text)), (long)strlen(text));
    CHECK_OK(close(fd));
}

/* Whether `path` holds exactly `text`. */
static void expect(const char *path, const char *text)
{
    char buf[256];
    long n = slurp(path, buf, sizeof buf);
    CHECK_EQ(n, (long)strlen(text));
    CHECK(memcmp(buf, text, n) == 0);
}

static void files(void)
{
    char buf[64];
    int fd = CHECK_OK(open(at("f"), O_RDWR | O_CREAT | O_EXCL, 0666));
    CHECK_ERR(open(at("f"), O_RDWR | O_CREAT | O_EXCL, 0666), EEXIST);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0644); /* 0666 less the umask 022 */
    CHECK_EQ(st.st_nlink, 1);
    CHECK_EQ(st.st_size, 0);

    CHECK_EQ(write(fd, "hello", 5), 5);
    CHECK_EQ(pwrite(fd, "X", 1, 10), 1); /* a hole of 5 zero bytes */
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 11);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 5); /* pwrite does not move the position */
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 11);
    CHECK(memcmp(buf, "hello\0\0\0\0\0X", 11) == 0);
    CHECK_EQ(pread(fd, buf, sizeof buf, 11), 0);
    CHECK_EQ(pread(fd, buf, sizeof buf, 1 << 20), 0);

    struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
    CHECK_EQ(lseek(fd, 0, SEEK_END), 11);
    CHECK_EQ(writev(fd, iov, 2), 4);
    CHECK_EQ(pread(fd, buf, 4, 11), 4);
    CHECK(memcmp(buf, "abcd", 4) == 0);

    /* ftruncate: shorter, then longer again (the cut bytes come back as zeros). */
    CHECK_OK(ftruncate(fd, 3));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 3);
    CHECK_OK(ftruncate(fd, 8));
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 8);
    CHECK(memcmp(buf, "hel\0\0\0\0\0", 8) == 0);
    CHECK_ERR(ftruncate(fd, -1), EINVAL);
    CHECK_OK(fsync(fd));
    CHECK_OK(fdatasync(fd));
    CHECK_OK(close(fd));

    /* A read-only descriptor cannot write or truncate. */
    fd = CHECK_OK(open(at("f"), O_RDONLY));
    CHECK_ERR(write(fd, "x", 1), EBADF);
    CHECK_ERR(ftruncate(fd, 0), EINVAL);
    CHECK_OK(close(fd));
    fd = CHECK_OK(open(at("f"), O_WRONLY));
    CHECK_ERR(read(fd, buf, 1), EBADF);
    CHECK_OK(close(fd));

    /* O_APPEND: every write at the end, wherever the position was. */
    fd = CHECK_OK(open(at("f"), O_WRONLY | O_APPEND));
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(write(fd, "Z", 1), 1);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 9);
    CHECK(fcntl(fd, F_GETFL) & O_APPEND);
    CHECK_OK(close(fd));
    CHECK_OK(truncate(at("f"), 9));
    CHECK_OK(stat(at("f"), &st));
    CHECK_EQ(st.st_size, 9);

    /* O_TRUNC empties it. */
    fd = CHECK_OK(open(at("f"), O_RDWR | O_TRUNC));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 0);

    /* Unlinked while open: the name goes, the data stays until the close. */
    CHECK_EQ(write(fd, "still here", 10), 10);
    CHECK_OK(unlink(at("f")));
    CHECK_ERR(stat(at("f"), &st), ENOENT);
    CHECK_ERR(unlink(at("f")), ENOENT);
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_nlink, 0);
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 10);
    CHECK(memcmp(buf, "still here", 10) == 0);
    CHECK_OK(close(fd));

    /* A larger file, across pages, written in odd pieces and read back. */
    fd = CHECK_OK(open(at("big"), O_RDWR | O_CREAT, 0600));
    static uint8_t data[3 * 4096 + 77], back[sizeof data];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = data_byte(i);
    for (size_t off = 0; off < sizeof data;) {
        size_t n = off % 1000 + 333;
        if (n > sizeof data - off)
            n = sizeof data - off;
        CHECK_EQ(write(fd, data + off, n), (long)n);
        off += n;
    }
    CHECK_EQ(pread(fd, back, sizeof back, 0), (long)sizeof back);
    CHECK(memcmp(data, back, sizeof data) == 0);
    CHECK_OK(close(fd));
    CHECK_OK(unlink(at("big")));

    /* Creating a file in a missing directory, or under a file. */
    CHECK_ERR(open(at("none/x"), O_RDWR | O_CREAT, 0644), ENOENT);
    put(at("plain"), "p");
    CHECK_ERR(open(at("plain/x"), O_RDWR | O_CREAT, 0644), ENOTDIR);
    CHECK_ERR(open(at("plain/"), O_RDONLY), ENOTDIR);
    CHECK_ERR(open(at("newdir/"), O_RDWR | O_CREAT, 0644), EISDIR);
    CHECK_OK(unlink(at("plain")));

    /* Names up to NAME_MAX (on /dev/shm: a tmpfs under Linux too). */
    char name[300];
    memset(name, 'n', sizeof name);
    memcpy(name, "/dev/shm/", 9);
    name[9 + 255] = 0;
    fd = CHECK_OK(open(name, O_RDWR | O_CREAT, 0644));
    CHECK_OK(close(fd));
    CHECK_OK(unlink(name));
    name[9 + 255] = 'n';
    name[9 + 256] = 0;
    CHECK_ERR(open(name, O_RDWR | O_CREAT, 0644), ENAMETOOLONG);
}

static void directories(void)
{
    struct stat st;
    CHECK_OK(mkdir(at("d"), 0755));
    CHECK_ERR(mkdir(at("d"), 0755), EEXIST);
    CHECK_ERR(mkdir(at("none/d"), 0755), ENOENT);
    CHECK_OK(stat(at("d"), &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0755);
    CHECK_EQ(st.st_nlink, 2);
    CHECK_OK(mkdir(at("d/sub"), 0700));
    CHECK_OK(stat(at("d"), &st));
    CHECK_EQ(st.st_nlink, 3);
    put(at("d/file"), "in d");
    CHECK_ERR(rmdir(at("d")), ENOTEMPTY);
    CHECK_ERR(rmdir(at("d/file")), ENOTDIR);
    CHECK_ERR(unlink(at("d")), EISDIR);
    CHECK_ERR(unlink(at("d/sub/")), EISDIR);

    /* chdir into it, relative names, getcwd. */
    char cwd[128];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_OK(chdir(at("d")));
    expect("file", "in d");
    CHECK_OK(mkdir("rel", 0755));
    CHECK_OK(rmdir("rel"));
    int dfd = CHECK_OK(open(".", O_RDONLY | O_DIRECTORY));
    int f = CHECK_OK(openat(dfd, "viafd", O_WRONLY | O_CREAT, 0644));
    CHECK_OK(close(f));
    CHECK_OK(unlinkat(dfd, "viafd", 0));
    CHECK_OK(close(dfd));
    CHECK_OK(chdir(cwd));

    /* getdents lists 60 files once each, with their types. */
    CHECK_OK(mkdir(at("many"), 0755));
    char name[32];
    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof name, "many/f%02d", i);
        put(at(name), "x");
    }
    CHECK_OK(mkdir(at("many/zdir"), 0755));
    unsigned char seen[61] = {0};
    int dots = 0;
    DIR *d = opendir(at("many"));
    CHECK(d != NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        int i;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            CHECK_EQ(e->d_type, DT_DIR);
            dots++;
        } else if (strcmp(e->d_name, "zdir") == 0) {
            CHECK_EQ(e->d_type, DT_DIR);
            seen[60]++;
        } else {
            CHECK(sscanf(e->d_name, "f%d", &i) == 1 && i >= 0 && i < 60);
            CHECK_EQ(e->d_type, DT_REG);
            seen[i]++;
        }
    }
    rewinddir(d);
    int again = 0;
    while (readdir(d) != NULL)
        again++;
    CHECK_EQ(again, 63);
    CHECK_OK(closedir(d));
    CHECK_EQ(dots, 2);
    for (int i = 0; i <= 60; i++)
        CHECK_EQ(seen[i], 1);
    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof name, "many/f%02d", i);
        CHECK_OK(unlink(at(name)));
    }
    CHECK_OK(rmdir(at("many/zdir")));
    CHECK_OK(rmdir(at("many")));

    CHECK_OK(unlink(at("d/file")));
    CHECK_OK(rmdir(at("d/sub")));
    CHECK_OK(rmdir(at("d")));
    CHECK_ERR(stat(at("d"), &st), ENOENT);
}

static void renames(void)
{
    struct stat st;
    put(at("a"), "A");
    put(at("b"), "B");
    CHECK_OK(rename(at("a"), at("b"))); /* replaces b */
    expect(at("b"), "A");
    CHECK_ERR(stat(at("a"), &st), ENOENT);
    CHECK_ERR(rename(at("a"), at("c")), ENOENT);
    CHECK_OK(rename(at("b"), at("b"))); /* itself: nothing happens */
    expect(at("b"), "A");

    put(at("c"), "C");
    CHECK_ERR(syscall(SYS_renameat2, AT_FDCWD, at("b"), AT_FDCWD, at("c"), RENAME_NOREPLACE),
              EEXIST);
    CHECK_OK(syscall(SYS_renameat2, AT_FDCWD, at("b"), AT_FDCWD, at("c"), RENAME_EXCHANGE));
    expect(at("b"), "C");
    expect(at("c"), "A");
    CHECK_OK(syscall(SYS_renameat2, AT_FDCWD, at("c"), AT_FDCWD, at("n"), RENAME_NOREPLACE));
    expect(at("n"), "A");

    /* Directories: over an empty one, not over a full one, never into themselves. */
    CHECK_OK(mkdir(at("d1"), 0755));
    CHECK_OK(mkdir(at("d1/in"), 0755));
    CHECK_OK(mkdir(at("d2"), 0755));
    CHECK_ERR(rename(at("d1"), at("d1/in/x")), EINVAL);
    CHECK_ERR(rename(at("d1"), at("n")), ENOTDIR);
    CHECK_ERR(rename(at("n"), at("d2")), EISDIR);
    CHECK_ERR(rename(at("d2"), at("d1")), ENOTEMPTY);
    CHECK_OK(rename(at("d1"), at("d2")));
    CHECK_OK(stat(at("d2/in"), &st));
    CHECK(S_ISDIR(st.st_mode));
    /* Moving a directory to another parent moves the link counts. */
    CHECK_OK(mkdir(at("d3"), 0755));
    CHECK_OK(rename(at("d2/in"), at("d3/in")));
    CHECK_OK(stat(at("d2"), &st));
    CHECK_EQ(st.st_nlink, 2);
    CHECK_OK(stat(at("d3"), &st));
    CHECK_EQ(st.st_nlink, 3);
    CHECK_OK(rmdir(at("d3/in")));
    CHECK_OK(rmdir(at("d3")));
    CHECK_OK(rmdir(at("d2")));

    /* Another file system: EXDEV (the files stay). */
    CHECK_ERR(rename(at("b"), "/dev/shm/tmpfs_basic-moved"), EXDEV);
    expect(at("b"), "C");
    CHECK_OK(unlink(at("b")));
    CHECK_OK(unlink(at("n")));
}

static void links(void)
{
    struct stat st, lst;
    char buf[128];
    put(at("target"), "through the link");
    CHECK_OK(symlink("target", at("rel")));
    CHECK_OK(symlink(at("target"), at("abs")));
    CHECK_ERR(symlink("x", at("rel")), EEXIST);
    expect(at("rel"), "through the link");
    expect(at("abs"), "through the link");
    CHECK_EQ(readlink(at("rel"), buf, sizeof buf), 6);
    CHECK(memcmp(buf, "target", 6) == 0);
    CHECK_ERR(readlink(at("target"), buf, sizeof buf), EINVAL);
    CHECK_OK(lstat(at("rel"), &lst));
    CHECK(S_ISLNK(lst.st_mode));
    CHECK_EQ(lst.st_size, 6);
    CHECK_OK(stat(at("rel"), &st));
    CHECK(S_ISREG(st.st_mode));

    /* A link out of tmpfs, into the read-only root. */
    CHECK_OK(symlink(DATA_HELLO_PATH, at("hello")));
    expect(at("hello"), DATA_HELLO_TEXT);
    /* Dangling, to a directory, and a loop. */
    CHECK_OK(symlink("nowhere", at("dangling")));
    CHECK_ERR(open(at("dangling"), O_RDONLY), ENOENT);
    CHECK_OK(mkdir(at("real"), 0755));
    put(at("real/inside"), "inside");
    CHECK_OK(symlink("real", at("dirlink")));
    expect(at("dirlink/inside"), "inside");
    CHECK_OK(symlink("loop2", at("loop1")));
    CHECK_OK(symlink("loop1", at("loop2")));
    CHECK_ERR(open(at("loop1"), O_RDONLY), ELOOP);
    CHECK_ERR(open(at("rel"), O_RDONLY | O_NOFOLLOW), ELOOP);
    CHECK_OK(unlink(at("dirlink"))); /* the link, not the directory */
    CHECK_OK(stat(at("real/inside"), &st));

    /* Hard links: one inode, two names. */
    CHECK_OK(link(at("target"), at("second")));
    CHECK_OK(stat(at("target"), &st));
    CHECK_EQ(st.st_nlink, 2);
    struct stat st2;
    CHECK_OK(stat(at("second"), &st2));
    CHECK_EQ(st2.st_ino, st.st_ino);
    CHECK_OK(unlink(at("target")));
    expect(at("second"), "through the link");
    CHECK_OK(stat(at("second"), &st2));
    CHECK_EQ(st2.st_nlink, 1);
    CHECK_ERR(link(at("real"), at("dirhard")), EPERM);
    CHECK_ERR(link(at("second"), at("real/inside")), EEXIST);
    CHECK_ERR(link(at("second"), "/dev/shm/tmpfs_basic-link"), EXDEV);

    const char *gone[] = {"rel", "abs", "hello", "dangling", "loop1", "loop2", "second",
                          "real/inside"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        CHECK_OK(unlink(at(gone[i])));
    CHECK_OK(rmdir(at("real")));
}

static void metadata(void)
{
    struct stat st;
    put(at("m"), "m");
    struct timespec ts[2] = {{1000000000, 123}, {1200000000, 456789}};
    CHECK_OK(utimensat(AT_FDCWD, at("m"), ts, 0));
    CHECK_OK(stat(at("m"), &st));
    CHECK_EQ(st.st_atim.tv_sec, 1000000000);
    CHECK_EQ(st.st_atim.tv_nsec, 123);
    CHECK_EQ(st.st_mtim.tv_sec, 1200000000);
    CHECK_EQ(st.st_mtim.tv_nsec, 456789);
    CHECK(st.st_ctim.tv_sec > 1200000000);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {5, 0}};
    CHECK_OK(utimensat(AT_FDCWD, at("m"), omit, 0));
    CHECK_OK(stat(at("m"), &st));
    CHECK_EQ(st.st_atim.tv_sec, 1000000000);
    CHECK_EQ(st.st_mtim.tv_sec, 5);
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    CHECK_ERR(utimensat(AT_FDCWD, at("m"), bad, 0), EINVAL);
    int fd = CHECK_OK(open(at("m"), O_RDWR));
    CHECK_OK(futimens(fd, NULL)); /* now */
    CHECK_OK(fstat(fd, &st));
    CHECK(st.st_mtim.tv_sec > 1200000000);
    /* A write moves the modification time. */
    CHECK_OK(utimensat(AT_FDCWD, at("m"), ts, 0));
    CHECK_EQ(write(fd, "w", 1), 1);
    CHECK_OK(fstat(fd, &st));
    CHECK(st.st_mtim.tv_sec > 1200000000);

    CHECK_OK(fchmod(fd, 0600));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode & 07777, 0600);
    CHECK_OK(chmod(at("m"), 04755));
    CHECK_OK(stat(at("m"), &st));
    CHECK_EQ(st.st_mode & 07777, 04755);
    CHECK(S_ISREG(st.st_mode));
    CHECK_OK(close(fd));

    CHECK_OK(access(at("m"), R_OK | W_OK | X_OK));
    /* umask: returned and applied. */
    CHECK_EQ(umask(077), 022);
    fd = CHECK_OK(open(at("masked"), O_RDWR | O_CREAT, 0666));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_OK(close(fd));
    CHECK_EQ(umask(022), 077);
    CHECK_OK(unlink(at("masked")));
    CHECK_OK(unlink(at("m")));

    /* statfs of a tmpfs. */
    struct statfs sf;
    CHECK_OK(statfs("/dev/shm", &sf));
    CHECK_EQ(sf.f_type, TMPFS_MAGIC);
    CHECK_EQ(sf.f_bsize, 4096);
    CHECK(sf.f_blocks > 0 && sf.f_bfree <= sf.f_blocks);
    if (on_pagoda()) {
        CHECK_OK(statfs("/tmp", &sf));
        CHECK_EQ(sf.f_type, TMPFS_MAGIC);
        fd = CHECK_OK(open("/tmp", O_RDONLY | O_DIRECTORY));
        CHECK_OK(fstatfs(fd, &sf));
        CHECK_EQ(sf.f_type, TMPFS_MAGIC);
        CHECK_OK(close(fd));
        /* The read-only root stays read-only. */
        CHECK_ERR(open("/data/new", O_RDWR | O_CREAT, 0644), EROFS);
        CHECK_ERR(mkdir("/data/new", 0755), EROFS);
        CHECK_ERR(mkdir("/data", 0755), EEXIST);
        CHECK_ERR(unlink(DATA_HELLO_PATH), EROFS);
        CHECK_ERR(rmdir("/tmp"), EBUSY);
    }
}

/* A tmpfs of 64 KiB mounted on dir/small fills up: ENOSPC, and the space comes back. */
static void size_cap(void)
{
    CHECK_OK(mkdir(at("small"), 0755));
    CHECK_OK(mount("tmpfs", at("small"), "tmpfs", 0, "size=64k"));
    struct statfs sf;
    CHECK_OK(statfs(at("small"), &sf));
    CHECK_EQ(sf.f_type, TMPFS_MAGIC);
    CHECK_EQ(sf.f_blocks, 16);
    static char block[4096];
    memset(block, 'z', sizeof block);
    int fd = CHECK_OK(open(at("small/fill"), O_WRONLY | O_CREAT, 0644));
    long total = 0, n;
    while ((n = write(fd, block, sizeof block)) > 0)
        total += n;
    CHECK_ERR(write(fd, block, sizeof block), ENOSPC);
    CHECK(total >= 48 * 1024 && total <= 64 * 1024);
    CHECK_OK(close(fd));
    /* Full: no new page for another file either. */
    fd = CHECK_OK(open(at("small/more"), O_WRONLY | O_CREAT, 0644));
    CHECK_ERR(write(fd, block, sizeof block), ENOSPC);
    CHECK_OK(close(fd));
    CHECK_OK(unlink(at("small/fill")));
    fd = CHECK_OK(open(at("small/more"), O_WRONLY, 0644));
    CHECK_EQ(write(fd, block, sizeof block), (long)sizeof block);
    CHECK_OK(close(fd));
    CHECK_OK(unlink(at("small/more")));
    CHECK_OK(umount(at("small")));
    CHECK_OK(rmdir(at("small")));
}

int main(void)
{
    umask(022);
    snprintf(dir, sizeof dir, "/tmp/tmpfs_basic.%d", (int)getpid());
    /*
     * Three rounds: the first two also grow this program's own memory (its stack,
     * static buffers, malloc's heap) and warm the kernel heap's caches; after the third,
     * every page the files took is back. On pagoda, Shmem (tmpfs pages) is back exactly.
     */
    long free_before = 0, shmem_before = meminfo_kb("Shmem");
    for (int round = 0; round < 3; round++) {
        if (round == 2)
            free_before = meminfo_kb("MemFree");
        CHECK_OK(mkdir(dir, 0755));
        files();
        directories();
        renames();
        links();
        metadata();
        size_cap();
        CHECK_OK(rmdir(dir));
    }
    CHECK_MEMFREE_BACK(free_before);
    if (on_pagoda())
        CHECK_EQ(meminfo_kb("Shmem"), shmem_before);
    return 0;
}
