/*
 * execve_basic - argv and envp reach the new program exactly; the process id stays;
 * the old memory image is gone; ENOENT, ENOEXEC, EACCES, ENOTDIR, EFAULT as Linux.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
    char *no_env[] = {NULL};

    /* argv and envp pass through unchanged (probe compares them with its own copy). */
    char *argv[] = {"probe-argv0", "args", "one", "two words", "", "last", NULL};
    char *envp[] = {"A=1", "EMPTY=", "PATH=/bin", "LAST=x", NULL};
    CHECK_EXITED(spawn_wait(PROBE_PATH, argv, envp), 0);

    /* Exit codes come back from the new program. */
    char *exit7[] = {"probe", "exit", "7", NULL};
    CHECK_EXITED(spawn_wait(PROBE_PATH, exit7, no_env), 7);

    /* execve keeps the process id. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char self[32];
        snprintf(self, sizeof self, "%d", getpid());
        char *args[] = {"probe", "pid", self, NULL};
        execve(PROBE_PATH, args, no_env);
        _exit(127);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);

    /* The old image is gone: a page mapped before execve is unmapped after it. */
    void *hint = (void *)0x1230000000UL;
    char *page = mmap(hint, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    page[0] = 1;
    char addr[32];
    snprintf(addr, sizeof addr, "%lx", (unsigned long)page);
    char *unmapped[] = {"probe", "unmapped", addr, NULL};
    CHECK_EXITED(spawn_wait(PROBE_PATH, unmapped, no_env), 0);
    CHECK_EQ(page[0], 1);
    CHECK_OK(munmap(page, PAGE_SIZE));

    /* Failures return to the caller, which carries on. */
    char *args[] = {"x", NULL};
    CHECK_ERR(execve("/bin/no-such-program", args, no_env), ENOENT);
    CHECK_ERR(execve("/no-such-dir/x", args, no_env), ENOENT);
    CHECK_ERR(execve(DATA_NOTELF_PATH, args, no_env), ENOEXEC);
    CHECK_ERR(execve("/data", args, no_env), EACCES);
    CHECK_ERR(execve(DATA_HELLO_PATH, args, no_env), EACCES); /* mode 0644 */
    CHECK_ERR(execve("/data/hello.txt/x", args, no_env), ENOTDIR);
    CHECK_ERR(syscall(SYS_execve, (char *)8, args, no_env), EFAULT);
    CHECK_ERR(syscall(SYS_execve, PROBE_PATH, (char **)8, no_env), EFAULT);
    /* A failed execve in a child leaves the child running its old program. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execve("/bin/no-such-program", args, no_env);
        _exit(errno == ENOENT ? 33 : 34);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 33);
    return 0;
}
