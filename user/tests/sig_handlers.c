/*
 * sig_handlers - signals as Linux delivers them: handlers with and without SA_SIGINFO
 * (si_signo, si_code, si_pid), masks (blocked signals stay pending until unblocked;
 * rt_sigpending; the handler's own signal blocked while it runs unless SA_NODEFER),
 * SA_RESETHAND, handlers on an alternate stack (SA_ONSTACK, sigaltstack), integer and
 * floating-point registers preserved across a handler, SIGCHLD on child exit,
 * rt_sigsuspend, EINTR from a blocking read and its restart under SA_RESTART, default
 * actions (SIGTERM ends, SIGCHLD and SIGURG ignored), SIG_IGN, and fault handlers:
 * SIGSEGV with si_addr and SEGV_MAPERR / SEGV_ACCERR, and the user-level paging pattern
 * (a handler that mprotects the page and returns, so the access is retried).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static volatile sig_atomic_t hits, last_sig, last_code, last_pid, raised, depth, max_depth;
static volatile uintptr_t last_addr, handler_sp;
static char *page;
/* An address no mapping ever covers (the first page is never mappable). */
static volatile char *volatile nowhere = (volatile char *)8;

static void count(int sig)
{
    hits++;
    last_sig = sig;
}

static void with_info(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    hits++;
    last_sig = sig;
    last_code = si->si_code;
    last_pid = si->si_pid;
    last_addr = (uintptr_t)si->si_addr;
    handler_sp = (uintptr_t)__builtin_frame_address(0);
}

static void reentrant(int sig)
{
    depth++;
    if (depth > max_depth)
        max_depth = depth;
    if (raised < 2) {
        raised++;
        raise(sig); /* delivered inside only under SA_NODEFER */
    }
    depth--;
    hits++;
}

/* The user-level paging pattern: make the page accessible and return to retry. */
static void unprotect(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    hits++;
    last_sig = sig;
    last_code = si->si_code;
    last_addr = (uintptr_t)si->si_addr;
    mprotect(page, PAGE_SIZE, PROT_READ | PROT_WRITE);
}

/* Maps a read-write page where the fault was. */
static void map_it(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    hits++;
    last_sig = sig;
    last_code = si->si_code;
    last_addr = (uintptr_t)si->si_addr;
    uintptr_t at = last_addr & ~(PAGE_SIZE - 1);
    mmap((void *)at, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
         -1, 0);
}

static void install(int sig, void (*fn)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    CHECK_OK(sigaction(sig, &sa, NULL));
}

static void install_info(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = flags | SA_SIGINFO;
    CHECK_OK(sigaction(sig, &sa, NULL));
}

static void handlers(void)
{
    install(SIGUSR1, count, 0);
    hits = 0;
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(hits, 1);
    CHECK_EQ(last_sig, SIGUSR1);

    install_info(SIGUSR2, with_info, 0);
    CHECK_OK(kill(getpid(), SIGUSR2));
    CHECK_EQ(hits, 2);
    CHECK_EQ(last_code, SI_USER);
    CHECK_EQ(last_pid, getpid());

    /* Old action reported. */
    struct sigaction old;
    CHECK_OK(sigaction(SIGUSR2, NULL, &old));
    CHECK(old.sa_flags & SA_SIGINFO);
    CHECK(old.sa_sigaction == with_info);
    CHECK_ERR(sigaction(SIGKILL, &old, NULL), EINVAL);
    CHECK_ERR(sigaction(65, &old, NULL), EINVAL);
}

static void masks(void)
{
    install(SIGUSR1, count, 0);
    sigset_t set, old, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, &old));
    hits = 0;
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(hits, 0);
    CHECK_OK(sigpending(&pend));
    CHECK(sigismember(&pend, SIGUSR1));
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    CHECK_EQ(hits, 1); /* delivered on unblock */
    CHECK_OK(sigpending(&pend));
    CHECK(!sigismember(&pend, SIGUSR1));

    /* A handler runs with its own signal blocked, unless SA_NODEFER. */
    install(SIGUSR1, reentrant, 0);
    hits = raised = max_depth = 0;
    raise(SIGUSR1);
    CHECK_EQ(max_depth, 1);
    CHECK_EQ(hits, 3); /* each inner raise ran after the outer handler returned */
    install(SIGUSR1, reentrant, SA_NODEFER);
    hits = raised = max_depth = 0;
    raise(SIGUSR1);
    CHECK_EQ(max_depth, 3);
    CHECK_EQ(hits, 3);

    /* SA_RESETHAND: the second signal gets the default action. */
    install(SIGUSR2, count, SA_RESETHAND);
    raise(SIGUSR2);
    struct sigaction now;
    CHECK_OK(sigaction(SIGUSR2, NULL, &now));
    CHECK(now.sa_handler == SIG_DFL);
}

static void altstack(void)
{
    static char alt[4 * 8192] __attribute__((aligned(16)));
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    CHECK_OK(sigaltstack(&ss, NULL));
    stack_t cur;
    CHECK_OK(sigaltstack(NULL, &cur));
    CHECK(cur.ss_sp == alt);
    CHECK_EQ(cur.ss_size, sizeof alt);
    CHECK_EQ(cur.ss_flags, 0);
    install_info(SIGUSR1, with_info, SA_ONSTACK);
    raise(SIGUSR1);
    CHECK(handler_sp >= (uintptr_t)alt && handler_sp < (uintptr_t)alt + sizeof alt);
    /* Without SA_ONSTACK: the normal stack. */
    install_info(SIGUSR1, with_info, 0);
    raise(SIGUSR1);
    CHECK(!(handler_sp >= (uintptr_t)alt && handler_sp < (uintptr_t)alt + sizeof alt));
    ss.ss_size = 100;
    CHECK_ERR(sigaltstack(&ss, NULL), ENOMEM);
    ss.ss_flags = SS_DISABLE;
    CHECK_OK(sigaltstack(&ss, NULL));
    CHECK_OK(sigaltstack(NULL, &cur));
    CHECK_EQ(cur.ss_flags, SS_DISABLE);
}

static volatile double fp_seen;

static void clobber_fp(int sig)
{
    (void)sig;
    volatile double x = 1.0;
    for (int i = 0; i < 10; i++)
        x = x * 3.0 + 1.0;
    fp_seen = x;
}

static void registers(void)
{
    /* FP registers live across the handler keep their values. */
    install(SIGUSR1, clobber_fp, 0);
    register double a asm("fs0") = 1.5;
    register double b asm("fs1") = -2.25;
    __asm__ volatile("" : "+f"(a), "+f"(b));
    raise(SIGUSR1);
    __asm__ volatile("" : "+f"(a), "+f"(b));
    CHECK(a == 1.5 && b == -2.25);
    CHECK(fp_seen > 1000.0);
}

static void children_and_defaults(void)
{
    /* SIGCHLD on child exit, with the child's pid. */
    install_info(SIGCHLD, with_info, 0);
    hits = 0;
    pid_t pid = CHECK_OK(fork());
    if (pid == 0)
        _exit(7);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    for (int i = 0; i < 1000 && hits == 0; i++)
        sched_yield();
    CHECK_EQ(hits, 1);
    CHECK_EQ(last_sig, SIGCHLD);
    CHECK_EQ(last_pid, pid);
    CHECK_EQ(last_code, CLD_EXITED);
    CHECK(signal(SIGCHLD, SIG_DFL) != SIG_ERR);

    /* Default actions: SIGTERM ends, SIGURG is ignored; SIG_IGN drops SIGTERM. */
    pid = CHECK_OK(fork());
    if (pid == 0) {
        raise(SIGURG);
        signal(SIGTERM, SIG_IGN);
        raise(SIGTERM);
        signal(SIGTERM, SIG_DFL);
        raise(SIGTERM);
        _exit(0);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_SIGNALED(status, SIGTERM);
}

static void nothing(int sig)
{
    (void)sig;
}

static void suspend_and_eintr(void)
{
    /* rt_sigsuspend: wait with SIGUSR1 unblocked; the old mask is back afterwards. */
    install(SIGUSR1, count, 0);
    sigset_t block, old, none;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    CHECK_OK(sigprocmask(SIG_BLOCK, &block, &old));
    pid_t parent = getpid();
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        struct timespec ms = {0, 30 * 1000 * 1000};
        nanosleep(&ms, NULL);
        kill(parent, SIGUSR1);
        _exit(0);
    }
    hits = 0;
    sigemptyset(&none);
    CHECK_ERR(sigsuspend(&none), EINTR);
    CHECK_EQ(hits, 1);
    sigset_t now;
    CHECK_OK(sigprocmask(SIG_SETMASK, NULL, &now));
    CHECK(sigismember(&now, SIGUSR1));
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);

    /* A blocking read interrupted by a handled signal: EINTR, or restarted under
     * SA_RESTART (the read then completes with the data written later). */
    for (int restart = 0; restart < 2; restart++) {
        install(SIGUSR1, nothing, restart ? SA_RESTART : 0);
        int p[2];
        CHECK_OK(pipe(p));
        pid = CHECK_OK(fork());
        if (pid == 0) {
            struct timespec ms = {0, 30 * 1000 * 1000};
            nanosleep(&ms, NULL);
            kill(parent, SIGUSR1);
            nanosleep(&ms, NULL);
            write(p[1], "x", 1);
            _exit(0);
        }
        char c;
        if (restart) {
            CHECK_EQ(read(p[0], &c, 1), 1);
            CHECK_EQ(c, 'x');
        } else {
            CHECK_ERR(read(p[0], &c, 1), EINTR);
        }
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK_OK(close(p[0]));
        CHECK_OK(close(p[1]));
    }
}

static void faults(void)
{
    /* SIGSEGV on a PROT_NONE page: SEGV_ACCERR with si_addr; the handler makes the page
     * writable and returns, and the store is retried (the user-level paging pattern). */
    page = mmap(NULL, PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    install_info(SIGSEGV, unprotect, 0);
    hits = 0;
    ((volatile char *)page)[123] = 42; /* faults once, then retried */
    CHECK_EQ(hits, 1);
    CHECK_EQ(last_sig, SIGSEGV);
    CHECK_EQ(last_code, SEGV_ACCERR);
    CHECK_EQ(last_addr, (uintptr_t)page + 123);
    CHECK_EQ(page[123], 42);

    /* An unmapped page: SEGV_MAPERR; the handler maps the page there and returns. */
    CHECK_OK(munmap(page, PAGE_SIZE));
    install_info(SIGSEGV, map_it, 0);
    hits = 0;
    ((volatile char *)page)[5] = 9;
    CHECK_EQ(hits, 1);
    CHECK_EQ(last_code, SEGV_MAPERR);
    CHECK_EQ(last_addr, (uintptr_t)page + 5);
    CHECK_EQ(page[5], 9);
    CHECK_OK(munmap(page, PAGE_SIZE));
    pid_t pid;
    int status;

    /* Without a handler, or with SIGSEGV blocked, the fault kills. */
    pid = CHECK_OK(fork());
    if (pid == 0) {
        close(2);
        signal(SIGSEGV, SIG_DFL);
        *nowhere = 1;
        _exit(0);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_SIGNALED(status, SIGSEGV);
    pid = CHECK_OK(fork());
    if (pid == 0) {
        close(2);
        install_info(SIGSEGV, unprotect, 0);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGSEGV);
        sigprocmask(SIG_BLOCK, &set, NULL);
        *nowhere = 1;
        _exit(0);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_SIGNALED(status, SIGSEGV);
    CHECK(signal(SIGSEGV, SIG_DFL) != SIG_ERR);
}

int main(void)
{
    handlers();
    masks();
    altstack();
    registers();
    children_and_defaults();
    suspend_and_eintr();
    faults();
    return 0;
}
