/*
 * vm_shared_anon - MAP_SHARED anonymous memory stays shared between parent, child and
 * grandchild after fork, in both directions, next to private memory that does not;
 * unmapping or re-protecting it in one process leaves the others' views alone.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define PAGES 8

struct shared {
    volatile int step;
    volatile int value;
    uint8_t pad[PAGE_SIZE - 8];
    uint8_t bulk[(PAGES - 1) * PAGE_SIZE];
};

static void write_after_fault(void *arg)
{
    ((struct shared *)arg)->value = 1;
}

int main(void)
{
    struct shared *s = mmap(NULL, PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED);
    _Static_assert(sizeof(struct shared) == PAGES * PAGE_SIZE, "layout");
    uint8_t *private = map_anon(PAGE_SIZE);
    /* Fresh shared memory reads as zeros. */
    for (size_t i = 0; i < sizeof s->bulk; i += 256)
        CHECK_EQ(s->bulk[i], 0);

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* Child: see the parent's write, answer, then have a grandchild do the same. */
        WAIT_UNTIL(&s->step, 1);
        if (s->value != 100 || s->bulk[PAGE_SIZE * 3] != 0xab)
            _exit(2);
        private[0] = 0xcc;
        memset(s->bulk, 0xcd, sizeof s->bulk);
        s->value = 200;
        s->step = 2;
        pid_t g = fork();
        if (g < 0)
            _exit(3);
        if (g == 0) {
            WAIT_UNTIL(&s->step, 3);
            if (s->value != 300)
                _exit(4);
            s->value = 400;
            s->step = 4;
            _exit(0);
        }
        int st;
        if (waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            _exit(5);
        /* Unmapping here leaves the parent's mapping alone. */
        if (munmap(s, PAGES * PAGE_SIZE) != 0)
            _exit(6);
        _exit(0);
    }
    s->value = 100;
    s->bulk[PAGE_SIZE * 3] = 0xab;
    s->step = 1;
    WAIT_UNTIL(&s->step, 2);
    CHECK_EQ(s->value, 200);
    for (size_t i = 0; i < sizeof s->bulk; i += 512)
        CHECK_EQ(s->bulk[i], 0xcd);
    /* The private page did not follow. */
    CHECK_EQ(private[0], 0);
    s->value = 300;
    s->step = 3;
    WAIT_UNTIL(&s->step, 4);
    CHECK_EQ(s->value, 400);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    /* Both other processes are gone; the memory and its contents remain. */
    CHECK_EQ(s->value, 400);
    CHECK_EQ(s->bulk[sizeof s->bulk - 1], 0xcd);

    /* A child making the shared page read-only does not affect us; a child writing a
     * read-only shared page dies, and its attempted write is not seen. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (mprotect(s, PAGE_SIZE, PROT_READ) != 0)
            _exit(2);
        _exit(0);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    s->value = 500;
    CHECK_OK(mprotect(s, PAGE_SIZE, PROT_READ));
    CHECK_SIGNALED(run_faulting_child(write_after_fault, s), SIGSEGV);
    CHECK_EQ(s->value, 500);
    CHECK_OK(mprotect(s, PAGE_SIZE, PROT_READ | PROT_WRITE));

    /* Exec in a child drops its view; ours stays. */
    char *argv[] = {"probe", "exit", "0", NULL};
    char *envp[] = {NULL};
    CHECK_EXITED(spawn_wait(PROBE_PATH, argv, envp), 0);
    CHECK_EQ(s->value, 500);
    CHECK_OK(munmap(s, PAGES * PAGE_SIZE));
    return 0;
}
