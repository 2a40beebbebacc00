/*
 * vm_fork_private - after fork, private memory (data, bss, heap, stack, anonymous
 * mappings) is the parent's copy at fork time, and from then on each process sees
 * only its own writes, in both directions; three-level fork trees; exec after fork.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define PAGES 64

static int data_word = 11;  /* .data */
static int bss_words[2048]; /* .bss, two pages */

/* Flags in a shared page for the two-way test. */
struct sync {
    int child_wrote;
    int parent_wrote;
};

/* Fill every page of `p` with bytes `(page + tag)`. */
static void fill(uint8_t *p, int tag)
{
    for (int i = 0; i < PAGES; i++)
        memset(p + i * PAGE_SIZE, (uint8_t)(i + tag), PAGE_SIZE);
}

/* True when every page of `p` still holds the pattern fill(p, tag) wrote (sampled). */
static int holds(const uint8_t *p, int tag)
{
    for (int i = 0; i < PAGES; i++) {
        const uint8_t *page = p + i * PAGE_SIZE;
        uint8_t want = (uint8_t)(i + tag);
        if (page[0] != want || page[PAGE_SIZE / 2] != want || page[PAGE_SIZE - 1] != want)
            return 0;
    }
    return 1;
}

static void two_way(void)
{
    struct sync *s = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED);
    uint8_t *mem = map_anon(PAGES * PAGE_SIZE);
    char *heap = malloc(100000);
    CHECK(heap != NULL);
    volatile int stack_word = 21;
    fill(mem, 1);
    memset(heap, 'p', 100000);
    data_word = 12;
    bss_words[1500] = 13;

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* The child starts with the parent's values... */
        if (!holds(mem, 1) || heap[99999] != 'p' || data_word != 12 || bss_words[1500] != 13 ||
            stack_word != 21)
            _exit(2);
        /* ... writes its own ... */
        fill(mem, 50);
        memset(heap, 'c', 100000);
        data_word = 100;
        bss_words[1500] = 101;
        stack_word = 102;
        s->child_wrote = 1;
        WAIT_UNTIL(&s->parent_wrote, 1);
        /* ... and sees none of the parent's later writes. */
        if (!holds(mem, 50) || heap[0] != 'c' || heap[99999] != 'c' || data_word != 100 ||
            bss_words[1500] != 101 || stack_word != 102)
            _exit(3);
        _exit(0);
    }
    WAIT_UNTIL(&s->child_wrote, 1);
    /* The child's writes are invisible here. */
    CHECK(holds(mem, 1));
    CHECK_EQ(heap[0], 'p');
    CHECK_EQ(data_word, 12);
    CHECK_EQ(bss_words[1500], 13);
    CHECK_EQ(stack_word, 21);
    fill(mem, 80);
    memset(heap, 'q', 100000);
    data_word = 200;
    s->parent_wrote = 1;
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);
    CHECK(holds(mem, 80));
    CHECK_EQ(heap[50000], 'q');
    CHECK_EQ(data_word, 200);
    free(heap);
    CHECK_OK(munmap(mem, PAGES * PAGE_SIZE));
    CHECK_OK(munmap(s, PAGE_SIZE));
}

/*
 * A process at `depth` holds in page[0..depth) the ids of its ancestors' branches;
 * it forks two children that each append their branch and recurse. Exit status 0 when
 * every process of the subtree saw exactly its ancestors' writes.
 */
static int tree(uint8_t *page, int depth, int max_depth)
{
    for (int d = 0; d < depth; d++)
        if (page[d * 64] == 0)
            return 10 + d;
    if (depth == max_depth)
        return 0;
    pid_t kids[2];
    for (int b = 0; b < 2; b++) {
        kids[b] = fork();
        if (kids[b] < 0)
            return 30;
        if (kids[b] == 0) {
            page[depth * 64] = (uint8_t)(b + 1);
            /* The sibling branch's mark (from a sibling forked earlier) is absent. */
            for (int d = depth + 1; d < 8; d++)
                if (page[d * 64] != 0)
                    _exit(40);
            _exit(tree(page, depth + 1, max_depth));
        }
    }
    /* Our own copy is unchanged by the children. */
    if (page[depth * 64] != 0)
        return 50;
    for (int b = 0; b < 2; b++) {
        int status;
        if (waitpid(kids[b], &status, 0) != kids[b])
            return 60;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 70;
    }
    return 0;
}

static void exec_after_fork(void)
{
    uint8_t *mem = map_anon(PAGES * PAGE_SIZE);
    fill(mem, 7);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* Dirty some shared pages (copies), then replace the image. */
        fill(mem, 9);
        char *argv[] = {"probe", "exit", "5", NULL};
        char *envp[] = {NULL};
        execve(PROBE_PATH, argv, envp);
        _exit(127);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 5);
    CHECK(holds(mem, 7));
    /* Exec from a child that never wrote: the parent's pages stay its own too. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char *argv[] = {"probe", "exit", "6", NULL};
        char *envp[] = {NULL};
        execve(PROBE_PATH, argv, envp);
        _exit(127);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 6);
    fill(mem, 8);
    CHECK(holds(mem, 8));
    CHECK_OK(munmap(mem, PAGES * PAGE_SIZE));
}

int main(void)
{
    two_way();

    /* Three levels of forks: 2 + 4 + 8 processes below this one. */
    uint8_t *page = map_anon(PAGE_SIZE);
    CHECK_EQ(tree(page, 0, 3), 0);
    for (int d = 0; d < 8; d++)
        CHECK_EQ(page[d * 64], 0);
    CHECK_OK(munmap(page, PAGE_SIZE));

    exec_after_fork();
    return 0;
}
