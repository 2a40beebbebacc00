/* /bin/hello - the smallest glibc program: printf through stdio, then exit. */
#include <stdio.h>
#include <sys/utsname.h>

int main(void)
{
    struct utsname u;
    printf("hello from user space\n");
    if (uname(&u) == 0)
        printf("running on %s %s (%s)\n", u.sysname, u.release, u.machine);
    return 0;
}
