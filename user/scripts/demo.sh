#!/bin/sh
# make run's demo (when standard input is not a terminal), run by /init with BusyBox's
# shell: pagoda as a small Linux system, and its memory at work.
step() { printf '\n--- %s\n' "$*"; }
step "uname -a"; uname -a
step "ls / ; applets linked to /bin/busybox"; ls /; ls /usr/bin /usr/sbin | wc -l
step "free (kB)"; free
step "ps"; ps
step "a 3-stage pipeline: ls /usr/bin | sort -r | head -3"; ls /usr/bin | sort -r | head -3
step "the memory tour, steps 1 and 3: demand paging and copy-on-write (/bin/memtour)"
/bin/memtour 1 3
step "the memory map of a process (cat /proc/self/maps)"; cat /proc/self/maps
step "free again"; free
