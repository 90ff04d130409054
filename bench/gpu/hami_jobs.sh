#!/usr/bin/env bash
# Issue 4 on a real GPU: `hami serve` on the real card (NVML) and three `hami run` PyTorch
# jobs with different slices at once, each reporting the total it sees, what it could
# allocate and what the driver says it holds; `hami top --once` while they hold memory.
# Needs .gpu-tools/ (bench/gpu/pack_host_tools.sh, run where the project was built) carried.
# Usage (GPU host, repository root): bench/gpu/hami_jobs.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
[[ -x .gpu-tools/hami ]] || { echo "hami_jobs.sh: .gpu-tools/hami missing (pack_host_tools.sh)" >&2; exit 1; }
cmake -S . -B build-gpu -DHAMI_HOOK_ONLY=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-gpu --target vgpu -j8 >/dev/null
mkdir -p build-gpu/src/hostd
ln -sf "$root/.gpu-tools/hami" build-gpu/src/hostd/hami
export DEMO_CAPS="${DEMO_CAPS:-2g:30 4g:20 6g:50}"
export DEMO_JOB="python3 $root/bench/gpu/torch_mem.py job 12"
src/hostd/demo.sh --build-dir build-gpu
