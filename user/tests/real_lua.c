/*
 * real_lua - an unmodified real program runs: /bin/lua, Lua 5.4 built from Debian's
 * lua5.4 source package (user/real/real.mk). Checked by exit status (there is no pipe):
 *   - lua -e: a computation that checks its own result, then os.exit(42);
 *   - LUA_INIT from the environment runs before -e (environment reaches getenv);
 *   - os.exit(true/false) give 0/1; an uncaught error gives 1 (stderr closed for it);
 *   - /data/hello.lua (sieve, coroutines, patterns, 100,000 strings and a collection,
 *     io.open/read of /data/hello.txt) prints three lines and exits 0.
 * If the build could not fetch Debian's source, there is no /bin/lua: the test says so
 * and passes (the Makefile said so too).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define LUA "/bin/lua"

static char *no_env[] = {NULL};

static int lua(char *const argv[], char *const envp[])
{
    return spawn_wait(LUA, argv, envp);
}

static void lua_quiet(void *arg)
{
    close(2);
    execve(LUA, arg, no_env);
    _exit(127);
}

int main(void)
{
    struct stat st;
    if (stat(LUA, &st) != 0) {
        dprintf(2, "real_lua: SKIP: no %s in this initramfs (Debian's lua5.4 source was not fetched)\n", LUA);
        return 0;
    }

    char *sum[] = {"lua", "-e",
                   "local s = 0 for i = 1, 1000 do s = s + i * i end "
                   "local t = {} for i = 1, 1000 do t[i] = tostring(i) end "
                   "os.exit(s == 333833500 and table.concat(t):len() == 2893 and 42 or 1)",
                   NULL};
    CHECK_EXITED(lua(sum, no_env), 42);

    char *init[] = {"lua", "-e", "os.exit(x == 5 and y == nil and 43 or 1)", NULL};
    char *init_env[] = {"LUA_INIT=x = 2 + 3", NULL};
    CHECK_EXITED(lua(init, init_env), 43);

    char *exit_true[] = {"lua", "-e", "os.exit(true)", NULL};
    CHECK_EXITED(lua(exit_true, no_env), 0);
    char *exit_false[] = {"lua", "-e", "os.exit(false)", NULL};
    CHECK_EXITED(lua(exit_false, no_env), 1);
    char *error[] = {"lua", "-e", "error('expected')", NULL};
    CHECK_EXITED(run_in_child(lua_quiet, error), 1);
    char *missing[] = {"lua", "/data/no-such-script.lua", NULL};
    CHECK_EXITED(run_in_child(lua_quiet, missing), 1);

    char *script[] = {"lua", "/data/hello.lua", NULL};
    CHECK_EXITED(lua(script, no_env), 0);
    return 0;
}
