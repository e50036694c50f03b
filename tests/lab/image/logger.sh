#!/usr/bin/busybox sh
# The node's log writer (memlogd + logwrite on LinuxKit), as containerd's binary log driver:
# the service's stdout arrives on fd 3 and its stderr on fd 4; closing fd 5 tells the shim we
# are ready. stdout goes to /var/log/NAME.out.log, stderr to /var/log/NAME.log, every line
# "<RFC3339 UTC time> NAME.out <message>", the message cut at 1024 bytes, written as produced.
# The shim gives us no PATH and only CONTAINER_ID/CONTAINER_NAMESPACE in the environment.
exec 5>&-
name=${CONTAINER_ID:-unknown}
dir=${LOG_DIR:-/var/log}  # only tests set it
prog='{ print strftime("%Y-%m-%dT%H:%M:%SZ") " " tag " " substr($0, 1, 1024); fflush() }'
TZ=UTC0 LC_ALL=C /usr/bin/busybox awk -v tag="$name" "$prog" <&4 3<&- 4<&- >>"$dir/$name.log" &
TZ=UTC0 LC_ALL=C exec /usr/bin/busybox awk -v tag="$name.out" "$prog" <&3 3<&- 4<&- >>"$dir/$name.out.log"
