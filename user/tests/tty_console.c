/*
 * tty_console - the console's terminal: Linux's default termios, TCSETS read back,
 * window size, foreground group (TIOCGPGRP/TIOCSPGRP), ppoll and FIONREAD with nothing
 * typed. With TTY_DRIVEN=1 in the environment (tools/test.py's console suite types on
 * the console and reads what comes back), also the line discipline: erase, kill,
 * ^D, raw mode, echo off and ^C -> SIGINT to the foreground group.
 * Also: a background group reading the terminal is stopped by SIGTTIN (EIO if it ignores
 * it). Where standard input is not a terminal (the Linux check) it has nothing to test.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "check.h"

static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig)
{
    (void)sig;
    got_sigint = 1;
}

/* Says `marker` on its own line: the driver types the next input when it sees it. */
static void ready(const char *marker)
{
    char line[64];
    int n = snprintf(line, sizeof line, "\n%s\n", marker);
    CHECK_EQ(write(1, line, n), n);
}

/* One read() of the terminal must return exactly `want`. */
static void expect_read(const char *want)
{
    char buf[256];
    long n = CHECK_OK(read(0, buf, sizeof buf));
    if (n != (long)strlen(want) || memcmp(buf, want, n) != 0)
        check_fail(__FILE__, __LINE__, "read %ld bytes '%.*s', want '%s'", n, (int)n, buf,
                   want);
}

static void line_discipline(struct termios *std)
{
    /* The driver types "abc", DEL, "d", Enter: erase removed the c. A poll without a
     * timeout sees the line (it used to sleep until a signal). */
    ready("TTY-ERASE");
    struct pollfd p = {.fd = 0, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_EQ(p.revents, POLLIN);
    expect_read("abd\n");
    /* "xyz", ^U, "hello", Enter: kill removed the line. */
    ready("TTY-KILL");
    expect_read("hello\n");
    /* "one two", ^W, "three", Enter: word erase removed "two". */
    ready("TTY-WERASE");
    expect_read("one three\n");
    /* "par" ^D: a read returns the partial line; then ^D alone: end of file. */
    ready("TTY-EOF");
    expect_read("par");
    expect_read("");

    /* Raw, no echo: bytes as typed, DEL and ^D included, nothing echoed. */
    struct termios raw = *std;
    raw.c_lflag &= ~(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    CHECK_OK(tcsetattr(0, TCSANOW, &raw));
    ready("TTY-RAW");
    char buf[8];
    long got = 0;
    while (got < 3)
        got += CHECK_OK(read(0, buf + got, 3 - got));
    CHECK(memcmp(buf, "q\x7f\x04", 3) == 0);
    CHECK_OK(tcsetattr(0, TCSANOW, std));

    /* ^C: SIGINT for the foreground group, which is ours. */
    CHECK_OK(setpgid(0, 0));
    CHECK_OK(tcsetpgrp(0, getpgrp()));
    struct sigaction sa = {.sa_handler = on_sigint};
    CHECK_OK(sigaction(SIGINT, &sa, NULL));
    ready("TTY-INTR");
    for (long spins = 0; !got_sigint; spins++)
        CHECK(spins < 4000000000L);
    /* The group goes back to init's, where the driver's next boot expects it. */
    CHECK_OK(tcsetpgrp(0, getpgid(1)));
    ready("TTY-DONE");
}

int main(void)
{
    if (!isatty(0)) {
        CHECK(!on_pagoda());
        return 0;
    }
    struct termios t;
    CHECK_OK(tcgetattr(0, &t));
    /* Linux's tty_std_termios. */
    CHECK_EQ(t.c_iflag, ICRNL | IXON);
    CHECK_EQ(t.c_oflag, OPOST | ONLCR);
    CHECK_EQ(t.c_lflag, ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN);
    CHECK_EQ(t.c_cc[VINTR], 3);
    CHECK_EQ(t.c_cc[VERASE], 0x7f);
    CHECK_EQ(t.c_cc[VEOF], 4);
    CHECK_EQ(t.c_cc[VMIN], 1);
    struct termios saved = t;
    t.c_lflag &= ~(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    CHECK_OK(tcsetattr(0, TCSANOW, &t));
    struct termios back;
    CHECK_OK(tcgetattr(0, &back));
    CHECK_EQ(back.c_lflag, t.c_lflag);
    CHECK_EQ(back.c_cc[VMIN], 0);
    CHECK_OK(tcsetattr(0, TCSANOW, &saved));

    struct winsize ws;
    CHECK_OK(ioctl(1, TIOCGWINSZ, &ws));
    CHECK(ws.ws_row > 0 && ws.ws_col > 0);

    CHECK_EQ(tcgetpgrp(0), getpgrp());
    CHECK_ERR(tcsetpgrp(0, 999999), EPERM);
    CHECK_EQ(tcgetsid(0), getsid(0));

    /* A background group reading the terminal gets SIGTTIN, which stops it; one that
     * ignores SIGTTIN gets EIO. */
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        setpgid(0, 0);
        char c;
        read(0, &c, 1);
        _exit(1);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, WUNTRACED), pid);
    CHECK(WIFSTOPPED(status));
    CHECK_EQ(WSTOPSIG(status), SIGTTIN);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    pid = CHECK_OK(fork());
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGTTIN, SIG_IGN);
        char c;
        _exit(read(0, &c, 1) == -1 && errno == EIO ? 0 : 1);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);

    const char *driven = getenv("TTY_DRIVEN");
    if (driven == NULL || strcmp(driven, "1") != 0) {
        /* Nothing typed: not readable, FIONREAD 0. */
        struct pollfd p = {.fd = 0, .events = POLLIN};
        CHECK_EQ(poll(&p, 1, 20), 0);
        int avail = -1;
        CHECK_OK(ioctl(0, FIONREAD, &avail));
        CHECK_EQ(avail, 0);
        return 0;
    }
    line_discipline(&saved);
    return 0;
}
