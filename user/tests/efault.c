/*
 * efault - bad user pointers make system calls fail with EFAULT; the process is not
 * killed and carries on.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* The first address of the kernel half of Sv39 (a valid-looking kernel pointer). */
#define KERNEL_PTR ((void *)0xffffffc000000000UL)
/* The first address past the Sv39 user half. */
#define PAST_USER ((void *)0x4000000000UL)

int main(void)
{
    char buf[16];

    /* write from and read into unmapped low addresses. */
    CHECK_ERR(syscall(SYS_write, 1, (void *)1, 10), EFAULT);
    int fd = CHECK_OK(open(DATA_BIG_PATH, O_RDONLY));
    CHECK_ERR(syscall(SYS_read, fd, (void *)8, 10), EFAULT);
    CHECK_ERR(syscall(SYS_read, fd, KERNEL_PTR, 10), EFAULT);
    /* The failed reads consumed nothing. */
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    CHECK_EQ(read(fd, buf, 1), 1);
    CHECK_EQ((uint8_t)buf[0], data_byte(0));
    CHECK_OK(close(fd));

    /* Kernel-half and past-the-user-half pointers. */
    CHECK_ERR(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, KERNEL_PTR), EFAULT);
    CHECK_ERR(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)16), EFAULT);
    CHECK_ERR(syscall(SYS_write, 1, KERNEL_PTR, 4), EFAULT);
    CHECK_ERR(syscall(SYS_uname, KERNEL_PTR), EFAULT);
    CHECK_ERR(syscall(SYS_uname, (void *)64), EFAULT);
    CHECK_ERR(syscall(SYS_gettimeofday, (void *)24, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_getrandom, (void *)32, 16, 0), EFAULT);

    /* Paths. */
    CHECK_ERR(syscall(SYS_openat, AT_FDCWD, (void *)8, O_RDONLY), EFAULT);
    CHECK_ERR(syscall(SYS_openat, AT_FDCWD, KERNEL_PTR, O_RDONLY), EFAULT);
    CHECK_ERR(syscall(SYS_newfstatat, AT_FDCWD, (void *)8, buf, 0), EFAULT);
    char st[256] __attribute__((aligned(8))); /* larger than struct stat */
    CHECK_ERR(syscall(SYS_newfstatat, AT_FDCWD, DATA_HELLO_PATH, KERNEL_PTR, 0), EFAULT);
    CHECK_ERR(syscall(SYS_fstat, 0, (void *)8), EFAULT);
    CHECK_OK(syscall(SYS_newfstatat, AT_FDCWD, DATA_HELLO_PATH, st, 0));
    CHECK_ERR(syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", (void *)8, 64), EFAULT);

    /* writev with a bad iovec array and with a bad buffer inside a good array. */
    CHECK_ERR(syscall(SYS_writev, 1, (void *)8, 1), EFAULT);
    struct iovec iov = {.iov_base = (void *)8, .iov_len = 4};
    CHECK_ERR(syscall(SYS_writev, 1, &iov, 1), EFAULT);

    /* wait4 with a bad status pointer: EFAULT, yet (as in Linux, which stores the
     * status only after reaping) the child has been reaped. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(3);
    CHECK_ERR(syscall(SYS_wait4, pid, (void *)8, 0, NULL), EFAULT);
    int status;
    CHECK_ERR(wait4(pid, &status, 0, NULL), ECHILD);

    /* The first address past the user half. */
    CHECK_ERR(syscall(SYS_write, 1, PAST_USER, 1), EFAULT);

    /* Still alive and able to make ordinary calls. */
    CHECK_EQ(write(1, "", 0), 0);
    return 0;
}
