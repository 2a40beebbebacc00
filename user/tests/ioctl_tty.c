/* ioctl_tty - TIOCGWINSZ on something that is not a terminal is ENOTTY; bad fd EBADF. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
    struct winsize ws;
    int fd = CHECK_OK(open(DATA_HELLO_PATH, O_RDONLY));
    CHECK_ERR(ioctl(fd, TIOCGWINSZ, &ws), ENOTTY);
    struct termios t;
    CHECK_ERR(ioctl(fd, TCGETS, &t), ENOTTY);
    CHECK_OK(close(fd));
    int dir = CHECK_OK(open("/data", O_RDONLY | O_DIRECTORY));
    CHECK_ERR(ioctl(dir, TIOCGWINSZ, &ws), ENOTTY);
    CHECK_OK(close(dir));
    CHECK_ERR(ioctl(fd, TIOCGWINSZ, &ws), EBADF);
    CHECK_ERR(ioctl(-1, TIOCGWINSZ, &ws), EBADF);
    /* isatty() is that ioctl in glibc. */
    fd = CHECK_OK(open(DATA_HELLO_PATH, O_RDONLY));
    CHECK(!isatty(fd));
    CHECK_OK(close(fd));
    return 0;
}
