#!/usr/bin/env bash
# Real-GPU checks of issues 4 and 6 in one go (device time is scarce): three `hami run`
# PyTorch jobs (bench/gpu/hami_jobs.sh) and the device plugin + monitor check
# (src/deviceplugin/real_gpu_check.sh). Needs .gpu-tools/ from bench/gpu/pack_host_tools.sh.
# Usage (GPU host, repository root): bench/gpu/node_and_host_checks.sh   (logs in $OUT)
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-out}
mkdir -p "$out"
cmake -S . -B build-gpu -DHAMI_HOOK_ONLY=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-gpu --target vgpu -j8 >/dev/null || exit 1
mkdir -p build-gpu/src/deviceplugin build-gpu/src/monitor build-gpu/src/hook
ln -sf "$PWD/.gpu-tools/hami-device-plugin" build-gpu/src/deviceplugin/
ln -sf "$PWD/.gpu-tools/hami-vgpu-monitor" build-gpu/src/monitor/
cp build-gpu/lib/libvgpu.so build-gpu/src/hook/
echo "===== issue 4: hami run jobs"
timeout 240 bench/gpu/hami_jobs.sh 2>&1 | tee "$out/hami_jobs.txt"
echo "===== issue 6: device plugin and monitor"
timeout 200 src/deviceplugin/real_gpu_check.sh build-gpu 2>&1 | tee "$out/node_check.txt"
