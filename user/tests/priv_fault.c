/*
 * priv_fault - the kernel stays private (issue 13, item 4): a user load, store or
 * instruction fetch at a kernel-half address (the direct map of RAM and of MMIO, the
 * kernel stacks, the kernel image), at 0, or at a device's physical address used as a
 * user address (UART, PLIC, CLINT, RTC, the RAM base where the kernel is loaded) kills
 * the process with SIGSEGV; the parent carries on, its memory intact.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

/* Addresses no user access may reach. */
static const uint64_t targets[] = {
    0xffffffc000000000UL, /* direct map: physical 0 */
    0xffffffc010000000UL, /* direct map: UART */
    0xffffffc00c000000UL, /* direct map: PLIC */
    0xffffffc002000000UL, /* direct map: CLINT */
    0xffffffc080000000UL, /* direct map: start of RAM (firmware) */
    0xffffffc080200000UL, /* direct map: the kernel image's frames */
    0xffffffc087fff000UL, /* direct map: the last page of 128 MiB of RAM */
    0xffffffdffffff000UL, /* last page of the direct map's 128 GiB */
    0xffffffe000000000UL, /* kernel stacks: first slot (guard page) */
    0xffffffe000001000UL, /* kernel stacks: inside the first stack */
    0xffffffe000011000UL, /* kernel stacks: inside the second slot */
    0xffffffff80000000UL, /* kernel image: text */
    0xffffffff80001000UL, /* kernel image: text */
    0xffffffff80100000UL, /* kernel image: later sections */
    0xfffffffffffff000UL, /* the last page of the address space */
    0x0UL,                /* null */
    0x10000000UL,         /* UART (physical) as a user address */
    0x0c000000UL,         /* PLIC */
    0x02000000UL,         /* CLINT */
    0x00101000UL,         /* goldfish RTC */
    0x80000000UL,         /* RAM base (firmware) */
    0x80200000UL,         /* where the kernel is loaded */
    0x4000000000UL,       /* first address past the user half */
    0x8000000000UL,       /* non-canonical */
};
#define NTARGETS (sizeof targets / sizeof targets[0])

static void do_load(void *arg)
{
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)*(uint64_t *)arg;
    uint64_t v = *p;
    /* Reaching here means the load worked: report what it read. */
    _exit((int)(v & 0x7f) | 0x80);
}

static void do_load_byte(void *arg)
{
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)(*(uint64_t *)arg + 7);
    _exit(*p | 0x80);
}

static void do_store(void *arg)
{
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)*(uint64_t *)arg;
    *p = 0x5a5a5a5a5a5a5a5aUL;
    _exit(0x81);
}

static void do_fetch(void *arg)
{
    void (*f)(void) = (void (*)(void))(uintptr_t) * (uint64_t *)arg;
    f();
    _exit(0x82);
}

/* An atomic read-modify-write (amoadd.d): a store as far as permissions go. */
static void do_amo(void *arg)
{
    uint64_t *p = (uint64_t *)(uintptr_t)*(uint64_t *)arg;
    __atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
    _exit(0x83);
}

int main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void *);
    } kinds[] = {{"load", do_load},
                 {"load_byte", do_load_byte},
                 {"store", do_store},
                 {"fetch", do_fetch},
                 {"amo", do_amo}};
    uint8_t *own = map_anon(PAGE_SIZE);
    own[0] = 42;

    for (size_t t = 0; t < NTARGETS; t++) {
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            uint64_t addr = targets[t];
            int status = run_faulting_child(kinds[k].fn, &addr);
            if (!killed_by(status, SIGSEGV))
                check_fail(__FILE__, __LINE__, "%s at %#llx: child %s, expected SIGSEGV",
                           kinds[k].name, (unsigned long long)addr, describe_status(status));
        }
    }
    /* The parent is untouched and keeps working. */
    CHECK_EQ(own[0], 42);
    CHECK_EQ(getpid() > 0, 1);
    return 0;
}
