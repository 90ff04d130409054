"""How long the NVML queries the compute limiter makes take on this machine, idle and while a
launch-bound PyTorch loop runs on the card (the limiter makes them on a launching thread:
nvmlDeviceGetUtilizationRates every 100 ms under policy default, and the process list,
nvmlDeviceGetComputeRunningProcesses_v3, when utilisation looks like a neighbour and at power
probes).

  python3 bench/gpu/nvml_latency.py [CALLS]      prints one line per query and load
"""
import ctypes
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Util(ctypes.Structure):
    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]


class ProcInfo(ctypes.Structure):  # nvmlProcessInfo_t (v2/v3 layout)
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong),
                ("gpuInstanceId", ctypes.c_uint), ("computeInstanceId", ctypes.c_uint)]


def timings(nvml, dev, calls):
    out = {}
    u = Util()
    infos = (ProcInfo * 8)()
    for name, fn in (("utilization", lambda: nvml.nvmlDeviceGetUtilizationRates(dev, ctypes.byref(u))),
                     ("process_list", lambda: nvml.nvmlDeviceGetComputeRunningProcesses_v3(
                         dev, ctypes.byref(ctypes.c_uint(8)), infos))):
        us = []
        for _ in range(calls):
            t = time.perf_counter()
            rc = fn()
            us.append((time.perf_counter() - t) * 1e6)
            if rc != 0:
                raise SystemExit(f"{name}: NVML error {rc}")
            time.sleep(0.01)
        us.sort()
        out[name] = (statistics.median(us), us[int(0.9 * (len(us) - 1))], us[-1])
    return out


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    nvml = ctypes.CDLL("libnvidia-ml.so.1")
    if nvml.nvmlInit_v2() != 0:
        raise SystemExit("nvmlInit_v2 failed")
    dev = ctypes.c_void_p()
    if nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(dev)) != 0:
        raise SystemExit("no device 0")
    rows = [("idle", timings(nvml, dev, calls))]
    load = subprocess.Popen([sys.executable, os.path.join(HERE, "workloads.py"), "run",
                             "dec1_eager", "--seconds", "30"], stdout=subprocess.DEVNULL)
    time.sleep(8)  # torch import, model, warm-up
    rows.append(("dec1_eager running", timings(nvml, dev, calls)))
    load.kill()
    for load_name, t in rows:
        for q, (med, p90, mx) in t.items():
            print(f"nvml {q} ({load_name}): median {med:.0f} us, p90 {p90:.0f} us, "
                  f"max {mx:.0f} us")


if __name__ == "__main__":
    main()
