/*
 * fault_kill - a child that faults dies of SIGSEGV, reported to its parent through
 * wait4, while the parent carries on: null read and write, store to read-only text,
 * jump to an unmapped address, execute a non-executable page, kernel-half access.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

static void read_null(void *arg)
{
    (void)arg;
    volatile int *volatile p = (volatile int *)0;
    (void)*p;
}

static void write_null(void *arg)
{
    (void)arg;
    volatile int *volatile p = (volatile int *)16;
    *p = 1;
}

static void write_text(void *arg)
{
    (void)arg;
    *(volatile uint32_t *)(uintptr_t)&write_text = 0;
}

static void write_rodata(void *arg)
{
    static const int constant = 5;
    (void)arg;
    *(volatile int *)(uintptr_t)&constant = 6;
}

static void jump_unmapped(void *arg)
{
    (void)arg;
    void (*f)(void) = (void (*)(void))0x2000000008UL; /* canonical, unmapped */
    f();
}

static void jump_null(void *arg)
{
    (void)arg;
    void (*volatile f)(void) = 0;
    f();
}

static void exec_data(void *arg)
{
    /* A page holding a valid `ret` instruction, mapped without PROT_EXEC. */
    uint32_t *page = arg;
    void (*f)(void) = (void (*)(void))page;
    f();
}

static void read_kernel(void *arg)
{
    (void)arg;
    volatile long *volatile p = (volatile long *)0xffffffc000000000UL;
    (void)*p;
}

static void write_kernel(void *arg)
{
    (void)arg;
    volatile long *volatile p = (volatile long *)0xffffffff80000000UL;
    *p = 1;
}

/* Recurse `depth` times with 4 KiB frames; far deeper than any stack allows. */
static long recurse(long depth)
{
    volatile char pad[4096];
    pad[0] = (char)depth;
    if (depth == 0)
        return pad[0];
    return recurse(depth - 1) + pad[0];
}

static void stack_overflow(void *arg)
{
    (void)arg;
    static volatile long depth = 1L << 40;
    recurse(depth);
}

static void touch_data(void *arg)
{
    /* A healthy child's write goes to its own copy. */
    ((uint32_t *)arg)[0] = 0;
}

int main(void)
{
    struct {
        const char *name;
        void (*fn)(void *);
    } cases[] = {
        {"read_null", read_null},         {"write_null", write_null},
        {"write_text", write_text},       {"write_rodata", write_rodata},
        {"jump_unmapped", jump_unmapped}, {"jump_null", jump_null},
        {"exec_data", exec_data},         {"read_kernel", read_kernel},
        {"write_kernel", write_kernel},   {"stack_overflow", stack_overflow},
    };
    uint32_t *data = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(data != MAP_FAILED);
    data[0] = 0x00008067; /* ret (jalr x0, 0(ra)) */

    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            int status = run_faulting_child(cases[i].fn, data);
            if (!killed_by(status, SIGSEGV))
                check_fail(__FILE__, __LINE__, "%s: child %s, expected SIGSEGV",
                           cases[i].name, describe_status(status));
        }
    }
    /* The parent's own memory is untouched and it can still fork normally. */
    CHECK_EQ(data[0], 0x00008067);
    CHECK_EXITED(run_in_child(touch_data, data), 0);
    CHECK_EQ(data[0], 0x00008067);
    return 0;
}
