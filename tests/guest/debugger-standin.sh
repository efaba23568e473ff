#!/bin/sh
# A STAND-IN for a kernel debugger that stops the boot (what illumos kmdb does with -kd) on
# the smartos-lab Linux test guest.  It is not kmdb and not a debugger: it prints a prompt
# that the test guest's console profile declares as its debugger prompt, and goes on with the
# boot (the guest's real /init) when it reads ":c", kmdb's continue command.
# Runs as PID 1 when the guest boots with rdinit=/debugger-standin (tests/guest/debugger_standin.py).
echo "smartos-lab test guest: debugger stand-in (not kmdb); ':c' continues the boot"
while :; do
    printf 'stand-in debugger> '
    IFS= read -r line || { sleep 1; continue; }
    case "$line" in
        :c) break ;;
        "") ;;
        *) echo "stand-in debugger: only ':c' (continue) is understood" ;;
    esac
done
echo "stand-in debugger: continuing the boot"
exec /init
