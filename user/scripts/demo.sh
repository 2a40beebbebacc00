#!/bin/sh
# make run's demo (when standard input is not a terminal), run by /init with BusyBox's
# shell: pagoda as a small Linux system, and its memory at work.
step() { printf '\n--- %s\n' "$*"; }
step "uname -a"; uname -a
step "ls / ; applets linked to /bin/busybox"; ls /; ls /usr/bin /usr/sbin | wc -l
step "free (kB)"; free
step "ps"; ps
step "a 3-stage pipeline: ls /usr/bin | sort -r | head -3"; ls /usr/bin | sort -r | head -3
counters() { grep -E '^(pgfault|zero_fills|cow_copies|zero_page_maps) ' /proc/vmstat | tr '\n' ' '; echo; }
step "fault counters before and after dd moves 32 MiB through a 4 MiB buffer"
counters; dd if=/dev/zero of=/dev/null bs=4M count=8 2>/dev/null; counters
step "copy-on-write: a forked subshell (no exec) writes to its memory, then reads its own counters"
(
    x=$(seq 3000)
    while read -r l; do
        case $l in VmRSS* | MinorFaults* | Cow* | ZeroPage*) echo "$l" ;; esac
    done < /proc/self/status
)
step "the memory map of a process (cat /proc/self/maps)"; cat /proc/self/maps
step "free again"; free
