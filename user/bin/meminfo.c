/* /bin/meminfo - show the kernel's memory counters and this process's own. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static void show(const char *path)
{
    char buf[4096];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        return;
    }
    printf("== %s\n", path);
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    close(fd);
}

int main(void)
{
    show("/proc/meminfo");
    show("/proc/buddyinfo");
    show("/proc/slabinfo");
    show("/proc/self/status");
    return 0;
}
