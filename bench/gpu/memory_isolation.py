"""Issue 2 on a real GPU: memory caps seen by PyTorch and nvidia-smi, OOM at the cap on the
plain, VMM (expandable segments) and pool (cudaMallocAsync) paths, two processes sharing one
accounting file, every driver allocation path of vgpu_probe, and overhead against native.

Run from the repository root on a GPU machine:  python3 bench/gpu/memory_isolation.py
Writes logs under $OUT (or ./out) and prints a table at the end.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.environ.get("OUT", os.path.join(ROOT, "out"))
BUILD = os.path.join(ROOT, "build-gpu")
LIB = os.path.join(BUILD, "lib", "libvgpu.so")
PROBE = os.path.join(BUILD, "vgpu_probe")
OVERHEAD = os.path.join(BUILD, "overhead")
LOG = open(os.path.join(OUT, "memory_isolation.log"), "w") if os.path.isdir(OUT) else sys.stderr
rows = []


def log(*a):
    print(*a, file=LOG, flush=True)


def sh(cmd, env=None, timeout=600, check=True):
    log("$", cmd if isinstance(cmd, str) else " ".join(cmd))
    p = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, capture_output=True, text=True,
                       timeout=timeout)
    log(p.stdout[-4000:], p.stderr[-4000:])
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd} failed rc={p.returncode}: {p.stderr[-800:]}")
    return p


def build():
    sh(f"cmake -S {ROOT} -B {BUILD} -DHAMI_HOOK_ONLY=ON -DCMAKE_BUILD_TYPE=Release > /dev/null && "
       f"cmake --build {BUILD} -j8 --target vgpu > /dev/null")
    sh(f"g++ -O2 -std=c++20 -I{ROOT}/src {ROOT}/tests/probe/vgpu_probe.cc -o {PROBE} "
       f"-l:libcuda.so.1 -ldl")
    sh(f"nvcc -O2 -o {OVERHEAD} {ROOT}/bench/gpu/overhead.cu")


def hooked_env(limit="4g", cache=None, **extra):
    env = dict(os.environ)
    env["LD_PRELOAD"] = LIB
    env["CUDA_DEVICE_MEMORY_LIMIT"] = limit
    env["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = cache or tempfile.mktemp(prefix="vgpu-", suffix=".cache")
    env.update(extra)
    return env


def real_used_mib():
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    p = sh("nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0", env=env)
    return int(p.stdout.strip().splitlines()[0])


def row(check, result, ok):
    rows.append((check, result, "PASS" if ok else "FAIL"))


def torch_cases():
    for label, conf in [("plain caching allocator", ""),
                        ("expandable_segments (VMM)", "expandable_segments:True"),
                        ("cudaMallocAsync (pool)", "backend:cudaMallocAsync")]:
        env = hooked_env("4g", PYTORCH_CUDA_ALLOC_CONF=conf)
        base = real_used_mib()
        p = sh([sys.executable, f"{ROOT}/bench/gpu/torch_mem.py", "fill"], env=env, check=False)
        try:
            res = json.loads(p.stdout.strip().splitlines()[-1])
        except Exception:  # noqa: BLE001
            row(f"torch {label}", f"crashed rc={p.returncode}: {p.stderr[-200:]}", False)
            continue
        ctx = res["total_mib"] - res["free_mib_at_start"]
        real = res.get("real_process_mib_at_cap", -1)
        ok = (res["total_mib"] == 4096 and res["oom_type"] == "OutOfMemoryError"
              and 0 < real <= 4096 and res.get("recovered"))
        row(f"torch {label}",
            f"total={res['total_mib']} MiB, usable={res['allocated_mib']} MiB, used at start="
            f"{ctx} MiB, driver-reported process usage at the cap={real} MiB, "
            f"OOM={res['oom_type']}, recovered={res.get('recovered')}", ok)
        log(json.dumps(res), "baseline_used", base)


def nvidia_smi_case():
    env = hooked_env("4g")
    p = sh("nvidia-smi --query-gpu=memory.total,memory.used --format=csv,noheader,nounits -i 0",
           env=env)
    total = int(p.stdout.split(",")[0])
    full = sh("nvidia-smi", env=env)
    with open(os.path.join(OUT, "nvidia-smi-under-vgpu.txt"), "w") as f:
        f.write(full.stdout)
    row("nvidia-smi under libvgpu (limit 4g)", f"memory.total={total} MiB", total == 4096)


def two_process_case():
    cache = tempfile.mktemp(prefix="vgpu-shared-", suffix=".cache")
    release = tempfile.mktemp(prefix="release-")
    go = tempfile.mktemp(prefix="go-")
    base = real_used_mib()
    procs = []
    for _ in range(2):
        env = hooked_env("4g", cache=cache, RELEASE_FILE=release, GO_FILE=go)
        procs.append(subprocess.Popen([sys.executable, f"{ROOT}/bench/gpu/torch_mem.py", "hold", "128"],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            p.wait(timeout=30)
            raise RuntimeError(f"holder failed to start rc={p.returncode}: {p.stderr.read()[-600:]}")
    open(go, "w").close()
    results = []
    for p in procs:
        line = p.stdout.readline()
        if not line.strip():
            p.wait(timeout=30)
            raise RuntimeError(f"holder died rc={p.returncode}: {p.stderr.read()[-600:]}")
        results.append(json.loads(line))
    peak = real_used_mib() - base
    open(release, "w").close()
    for p in procs:
        p.wait(timeout=60)
    got = [r["allocated_mib"] for r in results]
    real = [r["real_process_mib_at_cap"] for r in results]
    row("two processes racing, one 4 GiB accounting file",
        f"allocated {got[0]} + {got[1]} MiB; driver-reported {real[0]} + {real[1]} = "
        f"{sum(real)} MiB; device usage rose {peak} MiB", 0 < sum(real) <= 4096 and peak <= 4096)


def probe_cases():
    for path in ["alloc", "managed", "pitch", "vmm", "async", "pool", "array", "array3d", "mipmap"]:
        env = hooked_env("2g")
        p = sh([PROBE, "fill", path, "64", "free"], env=env, check=False)
        kv = dict(x.split("=", 1) for x in " ".join(p.stdout.split()).split() if "=" in x)
        got = int(kv.get("allocated_mib", -1))
        ok = p.returncode == 0 and kv.get("stop_error") == "2" and 0 < got <= 2048
        row(f"driver path {path} (limit 2g)", f"allocated {got} MiB, stop error {kv.get('stop_error')}", ok)
    p = sh([PROBE, "procaddr"], env=hooked_env("2g"), check=False)
    row("cuGetProcAddress versions/ptsz -> wrappers", p.stdout.strip().splitlines()[-1] if p.stdout else p.stderr[-100:],
        p.returncode == 0)


def probe_kv(args, env):
    p = sh([PROBE] + args, env=env, check=False)
    return dict(x.split("=", 1) for x in p.stdout.split() if "=" in x)


def stack_case():
    """cuCtxSetLimit(CU_LIMIT_STACK_SIZE): device memory for every resident thread, reserved
    with no allocation call. Native: what 64 KiB takes; under a 4 GiB cap it must be refused
    (CUDA_ERROR_OUT_OF_MEMORY = 2) with the old size back, and 2 KiB charged."""
    native_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    base = int(probe_kv(["info"], native_env).get("free_mib", -1))
    n = probe_kv(["stack", "64"], native_env)
    took = base - int(n.get("free_mib", base))
    h = probe_kv(["stack", "64"], hooked_env("4g"))
    small_base = int(probe_kv(["info"], hooked_env("4g")).get("free_mib", -1))
    small = probe_kv(["stack", "2"], hooked_env("4g"))
    charged = small_base - int(small.get("free_mib", small_base))
    row("cuCtxSetLimit stack 64 KiB under a 4g cap",
        f"native: result {n.get('set_result')}, device free fell {took} MiB; libvgpu: result "
        f"{h.get('set_result')}, stack {h.get('stack_bytes')} B; 2 KiB charged {charged} MiB, "
        f"given back {int(small.get('after_reset_free_mib', -1)) == small_base}",
        h.get("set_result") == "2" and h.get("stack_bytes") == "1024" and
        (took <= 4096 or charged > 0))


def overhead_case():
    native, hooked = [], []
    for i in range(11):
        for which in ("native", "hooked"):
            env = dict(os.environ) if which == "native" else hooked_env("70g")
            p = sh([OVERHEAD], env=env)
            kv = dict(x.split("=") for x in p.stdout.split())
            (native if which == "native" else hooked).append({k: float(v) for k, v in kv.items()})
    for key, label, target in [("launch_us", "empty-kernel launch (async, us)", 1.01),
                               ("launch_sync_us", "launch + stream sync (us)", 1.01),
                               ("malloc_free_us", "cudaMalloc+cudaFree 1 MiB (us)", 1.03)]:
        n = statistics.median(x[key] for x in native)
        h = statistics.median(x[key] for x in hooked)
        pair = statistics.median(b[key] / a[key] for a, b in zip(native, hooked))
        row(f"overhead {label}", f"native {n:.3f}, hooked {h:.3f}, ratio of medians {h / n:.3f}, "
            f"median pair ratio {pair:.3f} (target <= {target}, 11 alternating pairs)",
            h / n <= target)


def main():
    os.makedirs(OUT, exist_ok=True)
    build()
    sh("nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader")
    cases = (nvidia_smi_case, torch_cases, two_process_case, probe_cases, stack_case,
             overhead_case)
    only = sys.argv[1:]
    for case in cases:
        if only and case.__name__ not in only:
            continue
        try:
            case()
        except Exception as e:  # noqa: BLE001
            row(case.__name__, f"error: {e}"[:300], False)
    width = max(len(r[0]) for r in rows)
    print(f"{'check':<{width}}  result")
    for c, r, s in rows:
        print(f"{c:<{width}}  [{s}] {r}")
    json.dump(rows, open(os.path.join(OUT, "memory_isolation.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
