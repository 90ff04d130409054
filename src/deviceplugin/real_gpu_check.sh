#!/usr/bin/env bash
# Node agents on a real GPU, without a cluster (issue 6, "must show" 2):
#  1. hami-device-plugin finds the card through the real NVML (--print-devices);
#  2. its Allocate for a simulated pod (--simulate-pod) yields the env, mounts and files;
#  3. a PyTorch process under libvgpu.so with that env shows up in hami-vgpu-monitor's
#     metrics with its real memory use and the pod's limit, and is held to the limit.
# Usage: src/deviceplugin/real_gpu_check.sh [BUILD_DIR]   (needs python3 with torch for step 3)
# NVML_LIB=<path> uses another NVML (e.g. the fake one, to dry-run steps 1 and 2).
set -uo pipefail
BUILD=${1:-build}
DP=$BUILD/src/deviceplugin/hami-device-plugin
MON=$BUILD/src/monitor/hami-vgpu-monitor
LIB=$(ls "$BUILD"/src/hook/libvgpu.so 2>/dev/null || find "$BUILD" -name libvgpu.so | head -1)
for f in "$DP" "$MON" "$LIB"; do [[ -x "$f" || -f "$f" ]] || { echo "FAIL missing $f"; exit 1; }; done
TMP=$(mktemp -d /tmp/hami-gpu-check-XXXXXX)
trap 'kill $MONPID 2>/dev/null; rm -rf "$TMP"' EXIT
fail=0
NVML=(); [[ -n "${NVML_LIB:-}" ]] && NVML=(--nvml-lib "$NVML_LIB")
check() { if eval "$2"; then echo "PASS $1"; else echo "FAIL $1"; fail=1; fi; }

echo "== 1. devices through real NVML"
"$DP" "${NVML[@]}" --print-devices --node-name gpu-check | tee "$TMP/devices.txt"
UUID=$(awk 'NR==1{print $2}' "$TMP/devices.txt")
check "a GPU UUID was found" '[[ "$UUID" == GPU-* ]]'

echo "== 2. Allocate for a simulated pod (2048 MiB, 30 % cores)"
cat > "$TMP/pod.json" <<JSON
{"metadata": {"namespace": "default", "name": "gpu-check", "uid": "gpu-check-uid",
  "annotations": {"hami.io/vgpu-devices-to-allocate": "$UUID,NVIDIA,2048,30:;"}},
 "spec": {"containers": [{"name": "main"}]}}
JSON
"$DP" "${NVML[@]}" --simulate-pod "$TMP/pod.json" --hook-path "$TMP/hook" --vgpu-lib-source "$LIB" \
  --node-name gpu-check > "$TMP/alloc.json" || { echo "FAIL Allocate"; exit 1; }
cat "$TMP/alloc.json"
env_of() { python3 -c "import json,sys; print(json.load(open('$TMP/alloc.json'))[0]['envs'].get('$1',''))"; }
check "NVIDIA_VISIBLE_DEVICES is the card" '[[ "$(env_of NVIDIA_VISIBLE_DEVICES)" == "$UUID" ]]'
check "memory limit 2048m" '[[ "$(env_of CUDA_DEVICE_MEMORY_LIMIT_0)" == 2048m ]]'
check "SM limit 30" '[[ "$(env_of CUDA_DEVICE_SM_LIMIT)" == 30 ]]'
LIMITS=$TMP/hook/vgpu/allocations/gpu-check-uid_main/vgpu.limits
check "limits file written read-only" '[[ -f "$LIMITS" && ! -w "$LIMITS" || $(id -u) == 0 ]]'
check "libvgpu.so installed in the hook path" '[[ -f "$TMP/hook/vgpu/libvgpu.so" ]]'

echo "== 3. PyTorch under libvgpu.so, seen by the monitor"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$MON" "${NVML[@]}" --hook-path "$TMP/hook" --host 127.0.0.1 --port "$PORT" --node-name gpu-check &
MONPID=$!
if ! python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  echo "SKIP step 3: python3 with CUDA torch not available"; exit $fail
fi
run_env=(env $(python3 -c "import json; print(' '.join(k+'='+v for k,v in json.load(open('$TMP/alloc.json'))[0]['envs'].items() if k!='NVIDIA_VISIBLE_DEVICES'))")
         CUDA_VISIBLE_DEVICES="$UUID" HAMI_LIMITS_FILE="$LIMITS" LD_PRELOAD="$TMP/hook/vgpu/libvgpu.so")
"${run_env[@]}" python3 - > "$TMP/torch.txt" 2>&1 <<'PY' &
import time, torch
x = torch.empty(1024 * 1024 * 1024, dtype=torch.uint8, device="cuda")  # 1 GiB
free, total = torch.cuda.mem_get_info()
print(f"total_mib={total >> 20}", flush=True)
try:
    y = torch.empty(3 * 1024 * 1024 * 1024, dtype=torch.uint8, device="cuda")
    print("oom=no", flush=True)
except torch.cuda.OutOfMemoryError:
    print("oom=yes", flush=True)
time.sleep(20)
PY
PYPID=$!
for i in $(seq 1 60); do grep -q "^oom=" "$TMP/torch.txt" 2>/dev/null && break; sleep 0.5; done
sleep 2
curl -s "127.0.0.1:$PORT/metrics" > "$TMP/metrics.txt"
kill $PYPID 2>/dev/null; wait $PYPID 2>/dev/null
cat "$TMP/torch.txt"
grep 'pod="gpu-check"' "$TMP/metrics.txt"
used=$(awk '/^hami_vgpu_memory_used_bytes\{.*pod="gpu-check"/{print $2}' "$TMP/metrics.txt")
limit=$(awk '/^hami_vgpu_memory_limit_bytes\{.*pod="gpu-check"/{print $2}' "$TMP/metrics.txt")
check "nvidia-smi view inside shows 2048 MiB" 'grep -q "^total_mib=2048$" "$TMP/torch.txt"'
check "3 GiB past the 2 GiB limit is refused" 'grep -q "^oom=yes$" "$TMP/torch.txt"'
check "monitor: used >= 1 GiB (got ${used:-none})" '[[ -n "$used" ]] && python3 -c "import sys; sys.exit(0 if float(\"$used\") >= 2**30 else 1)"'
check "monitor: limit = 2048 MiB (got ${limit:-none})" '[[ "$limit" == 2147483648 ]]'
exit $fail
