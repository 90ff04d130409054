#!/bin/sh
# security_node_binaries (see CMakeLists.txt). Usage: binaries_test.sh MONITOR DEVICE_PLUGIN
set -u
monitor=$1
plugin=$2
d=$(mktemp -d)
chmod 755 "$d"
fail() { echo "FAIL: $*"; cat "$d/log" 2>/dev/null; rm -rf "$d"; exit 1; }
tenant() {  # runs a command as an unprivileged user when we are root
  if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "$1"
  else
    sh -c "$1"
  fi
}

# 1. Monitor: a tenant's FIFO in its container directory.
ctr=$d/vgpu/containers/uid-1_main
mkdir -p "$ctr" "$d/vgpu/allocations"
[ "$(id -u)" = 0 ] && chown 65534:65534 "$ctr"
tenant "mkfifo '$ctr/vgpu.cache' && mkfifo '$ctr/pod.json'" || fail "tenant could not plant FIFOs"
"$monitor" --no-nvml --hook-path "$d" --host 127.0.0.1 --port 0 \
  --contention-interval-ms 50 2>"$d/log" &
pid=$!
port=""
for i in $(seq 1 200); do
  port=$(sed -n 's/.*serving .metrics on 127.0.0.1:\([0-9]*\).*/\1/p' "$d/log")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { kill -9 $pid; fail "monitor did not start"; }
sleep 0.3  # several contention scans over the FIFO
curl -sf -m 10 "http://127.0.0.1:$port/metrics" | grep -q '^hami_monitor_corrupt_accounting_files 1' \
  || { kill -9 $pid; fail "monitor did not serve, or did not count the FIFO as skipped"; }
grep -q "skipping $ctr/vgpu.cache" "$d/log" || { kill -9 $pid; fail "no log line for the FIFO"; }
kill -TERM $pid
for i in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
if kill -0 $pid 2>/dev/null; then kill -9 $pid; fail "monitor ignored SIGTERM"; fi

# 2. Device plugin: its configuration swapped for a FIFO, a link to a FIFO, a huge file.
mkfifo "$d/fifo.yaml"
ln -s "$d/fifo.yaml" "$d/link.yaml"
head -c 2000000 /dev/zero | tr '\0' ' ' > "$d/huge.yaml"
for f in fifo.yaml link.yaml huge.yaml; do
  timeout 10 "$plugin" --config-file="$d/$f" --node-name n >/dev/null 2>"$d/log"
  rc=$?
  [ $rc -eq 124 ] && fail "device plugin blocked on $f"
  [ $rc -eq 2 ] || fail "device plugin exit $rc on $f, want 2"
  grep -q "$d/" "$d/log" || fail "error for $f does not name the file"
done
rm -rf "$d"
echo "ok"
