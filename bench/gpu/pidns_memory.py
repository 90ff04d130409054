"""libvgpu.so in a container's own PID namespace on a real GPU: is the memory the driver takes
for lazily loaded modules charged there too (docs/accounting.md)?

Runs bench/gpu/torch_mem.py lazy (a few cuBLAS/cuDNN kernels first, then fill to the cap)
under CUDA_DEVICE_MEMORY_LIMIT=4g, once in the host's PID namespace and once under
`unshare -pf --mount-proc` (root on the GPU host), and reads the driver's figure for the
process from the host side with nvidia-smi while it holds the cap. Prints a table.

  python3 bench/gpu/pidns_memory.py        (builds libvgpu.so like compute_limits.py)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compute_limits as cl  # noqa: E402

LIMIT_MIB = 4096


def driver_used_mib():
    env = cl.native_env()
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], env=env, capture_output=True,
                         text=True).stdout
    rows = [[x.strip() for x in line.split(",")] for line in out.splitlines() if line.strip()]
    return [(int(p), int(u)) for p, u in rows]


def run(own_ns):
    tmp = tempfile.mkdtemp(prefix="pidns-")
    env = cl.native_env()
    env.update({"LD_PRELOAD": cl.LIB, "CUDA_DEVICE_MEMORY_LIMIT": f"{LIMIT_MIB}m",
                "CUDA_DEVICE_MEMORY_SHARED_CACHE": os.path.join(tmp, "vgpu.cache"),
                "RELEASE_FILE": os.path.join(tmp, "release"), "LIBCUDA_LOG_LEVEL": "3"})
    argv = [sys.executable, os.path.join(cl.ROOT, "bench", "gpu", "torch_mem.py"), "lazy"]
    if own_ns:
        argv = ["unshare", "-pf", "--mount-proc"] + argv
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    apps = driver_used_mib()
    open(env["RELEASE_FILE"], "w").close()
    _, err = p.communicate(timeout=120)
    cl.log("$", " ".join(argv), line, err[-3000:])
    res = json.loads(line) if line.startswith("{") else {"error": (line + err)[-300:]}
    learned = [x for x in err.splitlines() if "to the driver" in x or "held by the driver" in x]
    return res, apps, learned


def main():
    os.makedirs(cl.OUT, exist_ok=True)
    cl.LOG = open(os.path.join(cl.OUT, "pidns_memory.log"), "w")
    cl.build()
    print("| PID namespace | PyTorch allocated at the cap | driver's figure (nvidia-smi) | "
          f"within {LIMIT_MIB} MiB | libvgpu log |")
    print("|---|---|---|---|---|")
    for own_ns in (False, True):
        res, apps, learned = run(own_ns)
        used = apps[0][1] if len(apps) == 1 else None
        ok = used is not None and used <= LIMIT_MIB
        print(f"| {'own (unshare -pf)' if own_ns else 'host'} | {res.get('allocated_mib')} MiB | "
              f"{used if used is not None else apps} MiB | {'PASS' if ok else 'FAIL'} | "
              f"{'; '.join(x.strip()[:90] for x in learned[:3])} |", flush=True)


if __name__ == "__main__":
    main()
