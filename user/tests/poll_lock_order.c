/*
 * poll_lock_order - ppoll takes a process's files without holding the process's lock
 * while it asks them: one thread polls a /proc/self/fd directory while another lists it
 * (listing holds the directory's lock and takes the process's, to read its descriptor
 * table). Regression: ppoll held the process's lock while taking each file's, the
 * listing took them the other way round, and two harts could spin on each other for
 * ever.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

#define ROUNDS 20000

static int dir_fd;

static void *lister(void *arg)
{
    (void)arg;
    char buf[1024] __attribute__((aligned(8)));
    for (int i = 0; i < ROUNDS; i++) {
        lseek(dir_fd, 0, SEEK_SET);
        if (syscall(SYS_getdents64, dir_fd, buf, sizeof buf) <= 0)
            return (void *)1;
    }
    return NULL;
}

int main(void)
{
    dir_fd = CHECK_OK(open("/proc/self/fd", O_RDONLY | O_DIRECTORY));
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, lister, NULL), 0);
    struct pollfd p = {.fd = dir_fd, .events = POLLIN};
    for (int i = 0; i < ROUNDS; i++)
        CHECK_EQ(poll(&p, 1, 0), 1);
    void *result;
    CHECK_EQ(pthread_join(t, &result), 0);
    CHECK(result == NULL);
    CHECK_OK(close(dir_fd));
    return 0;
}
