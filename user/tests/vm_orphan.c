/*
 * vm_orphan - a process whose parent exits first keeps running: its copy of memory it
 * shared copy-on-write with the dead parent stays intact, it is re-parented, and it
 * reports through a MAP_SHARED anonymous page that outlives both other processes.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define PAGES 16

struct report {
    int done;        /* set last, by the orphan */
    int middle_pid;  /* the orphan's original parent */
    int new_parent;  /* getppid() after the parent died */
    int content_ok;  /* the private pages held what the middle process wrote */
    int wrote_ok;    /* writes to those pages after the parent's death worked */
};

int main(void)
{
    struct report *r = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(r != MAP_FAILED);
    uint8_t *mem = map_anon(PAGES * PAGE_SIZE);
    memset(mem, 0x11, PAGES * PAGE_SIZE);

    pid_t middle = fork();
    CHECK(middle >= 0);
    if (middle == 0) {
        memset(mem, 0x22, PAGES * PAGE_SIZE);
        r->middle_pid = getpid();
        pid_t orphan = fork();
        if (orphan < 0)
            _exit(2);
        if (orphan == 0) {
            /* Wait until the middle process is gone (we get a new parent). */
            uint64_t start = now_ns();
            while (getppid() == r->middle_pid) {
                if (now_ns() - start > WAIT_LIMIT_NS)
                    _exit(3);
                sched_yield();
            }
            r->new_parent = getppid();
            int ok = 1;
            for (size_t i = 0; i < PAGES * PAGE_SIZE; i += 512)
                ok &= mem[i] == 0x22;
            r->content_ok = ok;
            memset(mem, 0x33, PAGES * PAGE_SIZE);
            ok = 1;
            for (size_t i = 0; i < PAGES * PAGE_SIZE; i += 512)
                ok &= mem[i] == 0x33;
            r->wrote_ok = ok;
            __atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
            _exit(0);
        }
        /* Exit at once, leaving the orphan with the only references to our pages. */
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(middle, &status, 0), middle);
    CHECK_EXITED(status, 0);
    WAIT_UNTIL(&r->done, 1);
    CHECK_EQ(r->content_ok, 1);
    CHECK_EQ(r->wrote_ok, 1);
    CHECK(r->new_parent != r->middle_pid);
    CHECK(r->new_parent > 0);
    if (on_pagoda())
        CHECK_EQ(r->new_parent, 1); /* orphans go to init, as in Linux without subreapers */
    /* The orphan is not our child. */
    CHECK_ERR(wait4(-1, &status, WNOHANG, NULL), ECHILD);
    /* None of that touched our copy. */
    for (size_t i = 0; i < PAGES * PAGE_SIZE; i += 512)
        CHECK_EQ(mem[i], 0x11);
    return 0;
}
