#!/bin/sh
# Everyday BusyBox cases (issue 15, point 9), each with its output checked. Run by
# /tests/busybox_everyday with BusyBox's shell on pagoda, and first under Linux user-mode
# emulation (tools/linux-check.sh) with the same files: a case whose output depends on
# the machine (ps, free, top, uptime, df, mount) checks only what is the same on both.
# Prints one line per failed case, then "EVERYDAY N passed, N failed"; exits 1 on any
# failure. Cases that write files do it in /tmp (a tmpfs on pagoda; under Linux a
# directory of the chroot).
pass=0 fail=0
check() { # NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        printf 'FAIL %s\n  want: %s\n  got:  %s\n' "$1" "$2" "$3"
    fi
}
nl='
'
# Cases whose answer under Linux user-mode emulation is QEMU's or the host's, not
# Linux's (QEMU fakes /proc/self/stat; df in a chroot finds no mount point): on pagoda
# only.
case "$(uname -r)" in *pagoda*) on_pagoda=1 ;; *) on_pagoda=0 ;; esac
check_pagoda() {
    if [ "$on_pagoda" = 1 ]; then check "$@"; fi
}
# Listings and links.
check ls "a${nl}b${nl}c" "$(ls /data/dir)"
check ls-l-link "lrwxrwxrwx /data/link-hello -> hello.txt" "$(ls -l /data/link-hello | awk '{print $1, $(NF-2), $(NF-1), $NF}')"
check ls-l-file "-rw-r--r-- 14" "$(ls -l /data/hello.txt | awk '{print $1, $5}')"
check ls-applet "1" "$(ls /usr/bin | grep -c '^awk$')"
check find "/data/dir/a /data/dir/b /data/dir/c" "$(find /data/dir -type f | sort | tr '\n' ' ' | sed 's/ $//')"
check test-L "link" "$([ -L /data/link-hello ] && echo link)"
check test-d "dir" "$([ -d /data/link-dir ] && echo dir)"
check readlink "/data/hello.txt" "$(readlink /data/link-abs)"
check readlink-f "/data/hello.txt" "$(readlink -f /data/link-chain)"
check cat-link "hello, pagoda" "$(cat /data/link-hello)"
check stat-file "644 regular file 14" "$(stat -c '%a %F %s' /data/hello.txt)"
check stat-dev "character special file 1,3" "$(stat -c '%F %t,%T' /dev/null)"
check basename "busybox bin" "$(basename /bin/busybox) $(basename "$(dirname /bin/busybox)")"
# Pipelines, redirections, substitutions.
check pipe3 "1${nl}2" "$(printf '3\n1\n2\n' | sort | head -2)"
check pipe3-applets "zcat" "$(ls /usr/bin | sort -r | head -1)"
check devnull "0" "$(echo hidden > /dev/null; echo $?)"
check stderr-null "1" "$(ls /nonexistent 2>/dev/null; echo $?)"
check stderr-dup "1" "$(ls /nonexistent 2>&1 | wc -l)"
check stdin-redir "14" "$(wc -c < /data/hello.txt)"
check subst "HI" "$(x=$(echo hi | tr a-z A-Z); echo $x)"
check subst-nested "deep" "$(echo $(echo $(echo deep)))"
check backquote "3" "`expr 1 + 2`"
check arith "42" "$((6 * 7))"
check heredoc "line one" "$(cat <<END
line one
END
)"
check subshell "3" "$( (exit 3); echo $?)"
check function "arg one" "$(f() { echo "arg $1"; }; f one)"
check for "123" "$(for i in 1 2 3; do printf $i; done)"
check while-read "[x][y]" "$(printf 'x\ny\n' | while read l; do printf "[$l]"; done)"
check case "two" "$(case b in a) echo one;; b) echo two;; esac)"
check env "5" "$(X=5 sh -c 'echo $X')"
# Text tools.
check md5sum "5d41402abc4b2a76b9719d911017c592  -" "$(printf hello | md5sum)"
check md5sum-file "$(cat /data/hello.txt | md5sum | cut -d' ' -f1)" "$(md5sum /data/hello.txt | cut -d' ' -f1)"
check sha256sum "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -" "$(printf abc | sha256sum)"
check sort-n "9 10 100" "$(printf '10\n9\n100\n' | sort -n | tr '\n' ' ' | sed 's/ $//')"
check sort-100k "100000 1" "$(seq 100000 | sort -rn | sed -n '1p;$p' | tr '\n' ' ' | sed 's/ $//')"
check sort-100k-lex "99999" "$(seq 100000 | sort | tail -1)"
check awk-field "b" "$(echo 'a b c' | awk '{print $2}')"
check awk-array "4999950000" "$(awk 'BEGIN { for (i = 0; i < 100000; i++) a[i] = i; for (k in a) s += a[k]; print s }')"
check sed "heLLo" "$(echo hello | sed 's/l/L/g')"
check grep-c "2" "$(printf 'ab\ncd\nab\n' | grep -c ab)"
check cut "b" "$(echo a:b:c | cut -d: -f2)"
check tail-head "8" "$(seq 10 | tail -3 | head -1)"
check uniq-c "2 a" "$(printf 'a\na\nb\n' | uniq -c | head -1 | awk '{print $1, $2}')"
check xargs "3" "$(echo 1 2 3 | xargs -n1 echo | wc -l)"
check od " 41 42" "$(printf AB | od -An -tx1)"
check printf "00042 2a" "$(printf '%05d %x' 42 42)"
# Devices.
check dd-zero "2048" "$(dd if=/dev/zero bs=512 count=4 2>/dev/null | wc -c)"
check dd-full "1" "$(dd if=/dev/zero of=/dev/full bs=1 count=1 2>&1 | grep -c 'No space')"
check urandom "16" "$(head -c 16 /dev/urandom | wc -c)"
# Jobs, signals, time limits.
check background-wait "0" "$(sleep 0.2 & wait $!; echo $?)"
check kill-wait "143" "$(sleep 10 & p=$!; kill $p; wait $p; echo $?)"
check trap-exit "trapped" "$(sh -c 'trap "echo trapped" EXIT; true')"
check trap-usr1 "got USR1" "$(sh -c 'trap "echo got USR1" USR1; kill -USR1 $$; true')"
check timeout "143" "$(timeout 1 sleep 5; echo $?)"
# Processes and the system (formats: the values differ between machines).
check ps-header "PID USER COMMAND" "$(ps | head -1 | awk '{print $1, $2, $3}')"
check ps-self "1" "$(ps | awk -v me=$$ '$1 == me { n++ } END { print n + 0 }')"
check ps-user "root" "$(ps | awk -v me=$$ '$1 == me { print $2 }')"
check_pagoda proc-stat-state "R" "$(cat /proc/self/stat | awk '{print $3}')"
check proc-comm "busybox" "$(cat /proc/$$/comm)"
check proc-cmdline "cat /proc/self/cmdline " "$(cat /proc/self/cmdline | tr '\0' ' ')"
check proc-listed "1" "$(ls /proc | grep -cx "$$")"
check free-header "total used free" "$(free | head -1 | awk '{print $1, $2, $3}')"
check free-mem "1" "$(free | awk '/^Mem:/ { print ($2 > 0 && $4 > 0) }')"
check uptime "1" "$(uptime | grep -c 'load average')"
check loadavg "5" "$(wc -w < /proc/loadavg)"
check nproc "same" "$([ "$(nproc)" = "$(grep -c ^processor /proc/cpuinfo)" ] && echo same)"
check top "Mem:" "$(top -b -n 1 | head -1 | cut -c1-4)"
check_pagoda df-root "/" "$(df / | tail -1 | awk '{print $NF}')"
check mount-proc "proc" "$(mount | awk '$3 == "/proc" { print $5; exit }')"
check id "0 root" "$(id -u) $(id -un)"
check pmap "mapped:" "$(pmap $$ | tail -1 | awk '{print $1}')"
check sysctl "kernel.ostype = Linux" "$(sysctl kernel.ostype)"
check proc-fd "pipe:[" "$(readlink /proc/self/fd/1 | cut -c1-6)"
check_pagoda dmesg "1" "$(dmesg | grep -c 'pagoda: booting on hart')"
check_pagoda mount-fs "5" "$(mount | wc -l)"
check_pagoda cd-proc "/proc/sys/kernel pagoda" "$(cd /proc/sys/kernel && echo "$(pwd) $(cat hostname)")"
check_pagoda ls-dev "console full null random shm tty urandom zero" "$(ls /dev | tr '\n' ' ' | sed 's/ $//')"
# Writable files: tmpfs at /tmp.
t=/tmp/everyday.$$
check mkdir "0" "$(mkdir $t; echo $?)"
check redirect "hello tmp" "$(echo hello tmp > $t/f; cat $t/f)"
check append "a b" "$(echo a > $t/g; echo b >> $t/g; cat $t/g | tr '\n' ' ' | sed 's/ $//')"
check touch "0" "$(touch $t/empty; wc -c < $t/empty)"
check dd-tmp "65536" "$(dd if=/dev/zero of=$t/z bs=4096 count=16 2>/dev/null; wc -c < $t/z)"
check dd-seek "4097" "$(echo -n x | dd of=$t/z bs=1 seek=4096 conv=notrunc 2>/dev/null; dd if=$t/z bs=1 count=4097 2>/dev/null | wc -c)"
check cp-cmp "same" "$(cp /data/big.bin $t/big && cmp /data/big.bin $t/big && echo same)"
check mv "moved" "$(mv $t/f $t/f2 && [ ! -e $t/f ] && cat $t/f2 | sed 's/hello tmp/moved/')"
check ln-s "hello tmp" "$(ln -s f2 $t/l && cat $t/l)"
check sort-o "1 2 3" "$(printf '3\n1\n2\n' > $t/s; sort -o $t/s $t/s; cat $t/s | tr '\n' ' ' | sed 's/ $//')"
check sed-i "X" "$(echo x > $t/i; sed -i 's/x/X/' $t/i; cat $t/i)"
check ls-tmp "big empty f2 g i l s z" "$(ls $t | tr '\n' ' ' | sed 's/ $//')"
check rm-r "gone" "$(rm -r $t; [ -e $t ] || echo gone)"
check_pagoda df-tmp "tmpfs /tmp" "$(df /tmp | tail -1 | awk '{print $1, $NF}')"
check_pagoda shm "tmpfs" "$(stat -f -c %T /dev/shm)"
echo "EVERYDAY $pass passed, $fail failed"
[ "$fail" -eq 0 ]
