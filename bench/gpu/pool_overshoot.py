"""When does the driver's per-process figure pass the cap on PyTorch's cudaMallocAsync path?

Fills a 4 GiB slice (libvgpu.so, CUDA_DEVICE_MEMORY_LIMIT=4g) with PyTorch's cudaMallocAsync
backend while NVML (nvmlDeviceGetComputeRunningProcesses, every ~1 ms) samples its usage, and prints a timeline: every
allocation step with libvgpu's own free figure, the OOMs, and the driver's usage at each moment,
so the step after which the process passes 4096 MiB is visible.

Run on the GPU host from the repository root (libvgpu.so built under build-gpu/ by
bench/gpu/compute_limits.py or memory_isolation.py):  python3 bench/gpu/pool_overshoot.py
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "build-gpu", "lib", "libvgpu.so")


def child():
    import torch
    events = []

    def ev(what, **kw):
        events.append(dict(t=time.time(), what=what, **kw))

    free, total = torch.cuda.mem_get_info()
    ev("context", pid=os.getpid(), free_mib=free >> 20, total_mib=total >> 20)
    chunks, step = [], 256 << 20
    while step >= (2 << 20):
        time.sleep(0.01)  # lets the sampler see each step
        try:
            chunks.append(torch.empty(step, dtype=torch.uint8, device="cuda"))
            ev("alloc", mib=step >> 20, free_mib=torch.cuda.mem_get_info()[0] >> 20,
               reserved_mib=torch.cuda.memory_stats().get("reserved_bytes.all.current", 0) >> 20)
        except torch.cuda.OutOfMemoryError:
            ev("oom", mib=step >> 20)
            step //= 2
    ev("filled")
    torch.cuda.synchronize()
    ev("synchronized")
    time.sleep(0.5)
    ev("after 0.5 s", free_mib=torch.cuda.mem_get_info()[0] >> 20)
    try:  # a kernel after the cap (may load a module lazily); its 8-byte output may not fit
        x = chunks[-1].sum().item()
        torch.cuda.synchronize()
        ev("after a reduction kernel", value=x)
    except torch.cuda.OutOfMemoryError:
        ev("reduction refused (OOM)")
    del chunks[-8:]
    torch.cuda.empty_cache()
    try:
        y = torch.ones(1 << 20, dtype=torch.uint8, device="cuda").sum().item()
        torch.cuda.synchronize()
        ev("after freeing 8 chunks + a reduction", value=y)
    except torch.cuda.OutOfMemoryError:
        ev("still refused after freeing 8 chunks")
    time.sleep(0.5)
    ev("end")
    print("EVENTS " + json.dumps(events), flush=True)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child()
        return
    env = dict(os.environ, LD_PRELOAD=LIB, CUDA_DEVICE_MEMORY_LIMIT="4g",
               PYTORCH_CUDA_ALLOC_CONF="backend:cudaMallocAsync",
               LIBCUDA_LOG_LEVEL="3",
               CUDA_DEVICE_MEMORY_SHARED_CACHE=f"/tmp/pool-overshoot-{os.getpid()}.cache")
    samples = []
    import ctypes
    import threading

    class ProcInfo(ctypes.Structure):  # nvmlProcessInfo_t (v2/v3)
        _fields_ = [("pid", ctypes.c_uint), ("used", ctypes.c_ulonglong),
                    ("gi", ctypes.c_uint), ("ci", ctypes.c_uint)]

    nvml = ctypes.CDLL("libnvidia-ml.so.1")
    assert nvml.nvmlInit_v2() == 0
    dev = ctypes.c_void_p()
    assert nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(dev)) == 0
    stop = threading.Event()

    def read():
        infos = (ProcInfo * 64)()
        while not stop.is_set():
            n = ctypes.c_uint(64)
            if nvml.nvmlDeviceGetComputeRunningProcesses_v3(dev, ctypes.byref(n), infos) == 0:
                now = time.time()
                for i in range(n.value):
                    samples.append((now, infos[i].pid, infos[i].used >> 20))
            time.sleep(0.001)

    th = threading.Thread(target=read, daemon=True)
    th.start()
    p = subprocess.run([sys.executable, __file__, "child"], env=env, capture_output=True,
                       text=True, timeout=120)
    time.sleep(0.2)
    stop.set()
    events = []
    for line in p.stdout.splitlines():
        if line.startswith("EVENTS "):
            events = json.loads(line[7:])
    if not events:
        print("child failed:", p.returncode, p.stderr[-2000:])
        sys.exit(1)
    pid_samples = [s for s in samples if s[1] == events[0]["pid"]]  # the child's only
    first_over = next((s for s in pid_samples if s[2] > 4096), None)

    def usage_at(t):
        best = None
        for s in pid_samples:
            if s[0] <= t + 0.002:
                best = s[2]
        return best

    t0 = events[0]["t"]
    print(f"{'t ms':>8}  {'event':<26} {'driver MiB':>10}  detail")
    for e in events:
        detail = {k: v for k, v in e.items() if k not in ("t", "what")}
        print(f"{(e['t'] - t0) * 1e3:8.1f}  {e['what']:<26} {str(usage_at(e['t'])):>10}  {detail}")
    if first_over:
        print(f"first driver sample over 4096 MiB: {first_over[2]} MiB at "
              f"{(first_over[0] - t0) * 1e3:.1f} ms")
    else:
        print("the driver never reported more than 4096 MiB")
    print("max driver sample:", max((s[2] for s in pid_samples), default=None), "MiB;",
          len(pid_samples), "samples")
    print("stderr tail:", p.stderr[-1500:])


if __name__ == "__main__":
    main()
