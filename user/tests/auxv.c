/*
 * auxv - the initial stack execve builds: argc, argv, envp, then the auxiliary vector
 * with the entries static glibc needs (AT_PAGESZ, AT_RANDOM, AT_PHDR/AT_PHENT/AT_PHNUM,
 * AT_ENTRY, the ids, AT_SECURE), each with a sane value.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "check.h"

extern char _start[];

/* The auxiliary vector follows envp's terminating NULL on the initial stack. */
static Elf64_auxv_t *find_auxv(char **envp)
{
    while (*envp)
        envp++;
    return (Elf64_auxv_t *)(envp + 1);
}

/* The value of aux entry `type` found by walking the vector, or fail if it is absent. */
static uint64_t aux(Elf64_auxv_t *v, uint64_t type)
{
    for (; v->a_type != AT_NULL; v++)
        if (v->a_type == type)
            return v->a_un.a_val;
    check_fail(__FILE__, __LINE__, "auxiliary vector has no entry %lu", (unsigned long)type);
}

int main(int argc, char **argv, char **envp)
{
    /* When run with no arguments, re-execute ourselves with known ones. */
    if (argc == 1) {
        char *args[] = {argv[0], "alpha", "", "gamma delta", NULL};
        char *env[] = {"K1=v1", "K2=", NULL};
        CHECK_EXITED(spawn_wait("/tests/auxv", args, env), 0);
        return 0;
    }

    /* argc, argv and envp as passed; both arrays NULL-terminated on the stack. */
    CHECK_EQ(argc, 4);
    CHECK(strcmp(argv[0], "/tests/auxv") == 0);
    CHECK(strcmp(argv[1], "alpha") == 0);
    CHECK(strcmp(argv[2], "") == 0);
    CHECK(strcmp(argv[3], "gamma delta") == 0);
    CHECK(argv[4] == NULL);
    CHECK(envp == argv + argc + 1);
    static const char *const want_env[] = {"K1=v1", "K2="};
    CHECK_ENVP(envp, want_env, 2);
    /* The initial stack pointer was 16-byte aligned: argc sits just below argv. */
    CHECK_EQ((uintptr_t)(argv - 1) % 16, 0);
    CHECK_EQ(*(long *)(argv - 1), argc);

    Elf64_auxv_t *v = find_auxv(envp);
    CHECK_EQ(aux(v, AT_PAGESZ), 4096);
    CHECK_EQ(getauxval(AT_PAGESZ), 4096);
    CHECK_EQ(sysconf(_SC_PAGESIZE), 4096);

    /* AT_RANDOM: 16 readable bytes, not all zero. */
    const unsigned char *rnd = (const unsigned char *)aux(v, AT_RANDOM);
    CHECK(rnd != NULL);
    int nonzero = 0;
    for (int i = 0; i < 16; i++)
        nonzero |= rnd[i];
    CHECK(nonzero);

    /* AT_ENTRY is the program's _start. */
    CHECK_EQ(aux(v, AT_ENTRY), (uintptr_t)_start);

    /* AT_PHDR/AT_PHENT/AT_PHNUM describe our program headers: the text segment holds
     * _start and main, a PT_LOAD covers the headers themselves. */
    const Elf64_Phdr *ph = (const Elf64_Phdr *)aux(v, AT_PHDR);
    uint64_t phnum = aux(v, AT_PHNUM);
    CHECK_EQ(aux(v, AT_PHENT), sizeof(Elf64_Phdr));
    CHECK(phnum >= 2 && phnum < 64);
    int text_found = 0, phdr_covered = 0, loads = 0;
    for (uint64_t i = 0; i < phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        loads++;
        uint64_t lo = ph[i].p_vaddr, hi = ph[i].p_vaddr + ph[i].p_memsz;
        CHECK(ph[i].p_filesz <= ph[i].p_memsz);
        if ((uintptr_t)_start >= lo && (uintptr_t)_start < hi && (ph[i].p_flags & PF_X))
            text_found = 1;
        if ((uintptr_t)ph >= lo && (uintptr_t)(ph + phnum) <= hi)
            phdr_covered = 1;
    }
    CHECK(loads >= 2);
    CHECK(text_found);
    CHECK(phdr_covered);
    /* ... and the ELF header is at the start of that first segment. */
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)((uintptr_t)ph - sizeof(Elf64_Ehdr));
    CHECK(memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0);
    CHECK_EQ(eh->e_machine, EM_RISCV);
    CHECK_EQ(eh->e_entry, (uintptr_t)_start);
    CHECK_EQ(eh->e_phnum, phnum);

    /* Credentials are present (real and effective ids equal: nothing is set-id) and
     * AT_SECURE is 0. */
    CHECK_EQ(aux(v, AT_UID), aux(v, AT_EUID));
    CHECK_EQ(aux(v, AT_GID), aux(v, AT_EGID));
    CHECK_EQ(aux(v, AT_SECURE), 0);

    /* The argument strings live above the pointer arrays (on the stack, as Linux does). */
    CHECK((uintptr_t)argv[0] > (uintptr_t)v);
    CHECK((uintptr_t)envp[0] > (uintptr_t)v);
    return 0;
}
