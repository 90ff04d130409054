"""Issue 11 on a real GPU: libvgpu.so's overhead before and after a change, in one invocation.

Runs bench/gpu/overhead.cu (empty-kernel launch, launch + sync, 1 MiB cudaMalloc+cudaFree)
natively and under two builds of libvgpu.so (memory limit 70g, no compute limit), in
alternating triples, and prints the medians and ratios to native.

Run from the repository root on a GPU machine:
    python3 bench/gpu/overhead_ab.py OLD_SOURCE_TREE [ROUNDS]
OLD_SOURCE_TREE is a checkout of the earlier commit (e.g. `git archive <rev> | tar -x -C DIR`);
the current tree is the other build. OVERHEAD_AB_SM_LIMIT=50 adds a 50 % compute limit under
the default policy (alone on the card it must not throttle: issue 17's cost of `default`).
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memory_isolation as mi  # noqa: E402


def main():
    old_src = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 11
    os.makedirs(mi.OUT, exist_ok=True)
    mi.build()
    old_build = os.path.join(mi.ROOT, "build-gpu-old")
    mi.sh(f"cmake -S {old_src} -B {old_build} -DHAMI_HOOK_ONLY=ON -DCMAKE_BUILD_TYPE=Release "
          f"> /dev/null && cmake --build {old_build} -j8 --target vgpu > /dev/null")
    sm = os.environ.get("OVERHEAD_AB_SM_LIMIT")
    compute = {"CUDA_DEVICE_SM_LIMIT": sm, "GPU_CORE_UTILIZATION_POLICY": "default"} if sm else {}
    libs = {"native": None, "old": os.path.join(old_build, "lib", "libvgpu.so"), "new": mi.LIB}
    runs = {k: [] for k in libs}
    for i in range(rounds):
        order = list(libs) if i % 2 == 0 else list(reversed(list(libs)))
        for name in order:
            env = dict(os.environ) if libs[name] is None else mi.hooked_env("70g", **compute)
            if libs[name]:
                env["LD_PRELOAD"] = libs[name]
            p = mi.sh([mi.OVERHEAD], env=env)
            runs[name].append({k: float(v) for k, v in (x.split("=") for x in p.stdout.split())})
    print(f"{'figure':<34} {'native':>9} {'old':>9} {'new':>9} {'old/nat':>8} {'new/nat':>8} "
          f"{'new/old':>8}")
    for key in ("launch_us", "launch_sync_us", "malloc_free_us"):
        med = {k: statistics.median(r[key] for r in v) for k, v in runs.items()}
        pair = statistics.median(b[key] / a[key] for a, b in zip(runs["old"], runs["new"]))
        print(f"{key:<34} {med['native']:9.3f} {med['old']:9.3f} {med['new']:9.3f} "
              f"{med['old'] / med['native']:8.3f} {med['new'] / med['native']:8.3f} "
              f"{med['new'] / med['old']:8.3f}  (median new/old pair ratio {pair:.3f}, "
              f"{rounds} rounds)")


if __name__ == "__main__":
    main()
