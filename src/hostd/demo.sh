#!/usr/bin/env bash
# Single-host demo: starts `hami serve` (the fake GPU unless real GPUs answer nvidia-smi, or
# always with --fake), runs three capped jobs at once on one GPU, prints `hami top --once`
# while they hold their memory, then each job's result, and stops the daemon.
#
# Usage: src/hostd/demo.sh [--fake] [--build-dir DIR] [--keep]
#   --build-dir  CMake build directory holding hami, libvgpu.so, the fake driver and
#                vgpu_probe (default: $HAMI_BUILD_DIR, else ./build)
#   --keep       leave the state directory for inspection
# Environment:
#   DEMO_JOB     command run by each job instead of vgpu_probe (it gets the slice through
#                CUDA_VISIBLE_DEVICES and libvgpu.so; e.g. a PyTorch script that allocates until
#                it fails and prints what it got). Default: vgpu_probe fill alloc 64.
#   DEMO_CAPS    three "memory:cores" slices, default "2g:30 4g:20 6g:50"
set -euo pipefail

fake=0
keep=0
build="${HAMI_BUILD_DIR:-build}"
while (($#)); do
  case "$1" in
    --fake) fake=1 ;;
    --keep) keep=1 ;;
    --build-dir) build="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
build="$(cd "$build" && pwd)"
hami="$build/src/hostd/hami"
probe="$build/bin/vgpu_probe"
libvgpu="$build/lib/libvgpu.so"
for f in "$hami" "$libvgpu"; do
  [[ -e "$f" ]] || { echo "demo.sh: $f is missing; build the project first (cmake --build $build)" >&2; exit 1; }
done
if [[ -z "${DEMO_JOB:-}" && ! -x "$probe" ]]; then
  echo "demo.sh: $probe is missing; build target vgpu_probe or set DEMO_JOB" >&2
  exit 1
fi

work="$(mktemp -d /tmp/hami-demo.XXXXXX)"
serve_pid=""
cleanup() {
  [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
  rm -f "$work/barrier"
  if ((keep)); then echo "demo.sh: state kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

serve_args=(serve --state-dir "$work/state" --listen "$work/hami.sock" --port-file "$work/port"
            --libvgpu "$libvgpu" --gpu-policy binpack)
if ((fake == 0)) && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  echo "== real GPUs found by nvidia-smi: using NVML"
  serve_args+=(--gpu-backend nvml)
  # vgpu_probe from the build tree has a RUNPATH to the fake driver; LD_LIBRARY_PATH wins over
  # RUNPATH, so point the jobs at the real libcuda.so.1.
  real_cuda="$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}')"
  if [[ -n "$real_cuda" ]]; then
    export LD_LIBRARY_PATH="$(dirname "$real_cuda")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
else
  echo "== no real GPU in use: using the FAKE GPU driver (simulated H100, 80 GiB)"
  printf 'uuid=GPU-5e1f0000-0000-4000-8000-000000000001 name=NVIDIA H100 80GB HBM3 mem=80g\n' \
    > "$work/fakegpu.conf"
  export FAKEGPU_STATE="$work/fakegpu.state"
  export HAMI_FAKEGPU_LIB_DIR="$build/fakegpu/lib"
  serve_args+=(--fake --fake-config "$work/fakegpu.conf")
fi

"$hami" "${serve_args[@]}" 2> "$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
[[ -s "$work/port" ]] || { cat "$work/serve.log" >&2; exit 1; }
export HAMI_ADDR="unix:$work/hami.sock"
sed 's/^/   /' "$work/serve.log"

echo "== hami gpus"
"$hami" gpus

# Each job allocates until the cap stops it, then holds its memory until the barrier goes.
touch "$work/barrier"
read -r -a caps <<< "${DEMO_CAPS:-2g:30 4g:20 6g:50}"
pids=()
for i in 0 1 2; do
  mem="${caps[$i]%%:*}"
  cores="${caps[$i]##*:}"
  if [[ -n "${DEMO_JOB:-}" ]]; then
    job=(sh -c "$DEMO_JOB")
  else
    job=(sh -c "while [ -e '$work/barrier' ]; do sleep 0.1; done | '$probe' fill alloc 64 wait")
  fi
  echo "== hami run --gpumem $mem --gpucores $cores -- ${job[*]}"
  "$hami" run --gpumem "$mem" --gpucores "$cores" -- "${job[@]}" > "$work/job$i.out" 2>&1 &
  pids+=($!)
done

# Wait until all three hold memory (or finished, for a DEMO_JOB that does not wait).
for _ in $(seq 150); do
  n=$("$hami" ps --json | grep -c '"used_bytes": [1-9]' || true)
  ((n >= 3)) && break
  alive=0
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  ((alive)) || break
  sleep 0.2
done
echo "== hami top --once"
"$hami" top --once
rm -f "$work/barrier"

rc=0
for i in 0 1 2; do
  code=0
  wait "${pids[$i]}" || code=$?
  echo "== job $i (--gpumem ${caps[$i]%%:*}) exit $code:"
  sed 's/^/   /' "$work/job$i.out"
  ((code == 0)) || rc=1
done
echo "== hami ps after the jobs ended (slices are freed)"
"$hami" ps
exit "$rc"
