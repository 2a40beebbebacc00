/*
 * /bin/sh - a very small interactive shell for the console.
 *
 * Reads a line, splits it on blanks and runs it: `NAME` is /bin/NAME, anything with a
 * slash is a path. Builtins: `help`, `exit [N]`. A command that does not exit 0 gets
 * its status printed. No quoting, pipes, redirections or working directory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LINE 1024
#define MAX_ARGS 64

extern char **environ;

/* Read one line from stdin without the newline; returns 0 at end of input. */
static int read_line(char *line, size_t size)
{
    size_t len = 0;
    for (;;) {
        char c;
        ssize_t n = read(0, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            line[len] = '\0';
            return len > 0;
        }
        if (c == '\n' || c == '\r') {
            line[len] = '\0';
            return 1;
        }
        if (len + 1 < size)
            line[len++] = c;
    }
}

static void help(void)
{
    printf("builtins: help, exit [N]\n"
           "commands: any program of /bin by name (try: ls /bin), or an absolute path\n"
           "  /tests/NAME runs one test (exit status 0 = pass); /bench/NAME one benchmark\n");
}

static void run(char **argv)
{
    char path[MAX_LINE + 8];
    if (strchr(argv[0], '/'))
        snprintf(path, sizeof path, "%s", argv[0]);
    else
        snprintf(path, sizeof path, "/bin/%s", argv[0]);
    pid_t pid = fork();
    if (pid < 0) {
        printf("sh: fork: %s\n", strerror(errno));
        return;
    }
    if (pid == 0) {
        execve(path, argv, environ);
        printf("sh: %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            printf("sh: wait: %s\n", strerror(errno));
            return;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        printf("[exit status %d]\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("[killed by signal %d (SIG%s)]\n", WTERMSIG(status),
               sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
}

int main(void)
{
    char line[MAX_LINE];
    printf("pagoda shell: type `help`\n");
    for (;;) {
        printf("$ ");
        if (!read_line(line, sizeof line)) {
            printf("\n");
            return 0;
        }
        char *argv[MAX_ARGS + 1];
        int argc = 0;
        for (char *save, *word = strtok_r(line, " \t", &save); word && argc < MAX_ARGS;
             word = strtok_r(NULL, " \t", &save))
            argv[argc++] = word;
        argv[argc] = NULL;
        if (argc == 0)
            continue;
        if (strcmp(argv[0], "exit") == 0)
            return argc > 1 ? atoi(argv[1]) : 0;
        if (strcmp(argv[0], "help") == 0)
            help();
        else
            run(argv);
    }
}
