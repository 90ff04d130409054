"""Runs under libvgpu.so: reports what PyTorch sees and how much it can allocate.

Usage: python3 torch_mem.py fill            one JSON line
       python3 torch_mem.py lazy            kernels first, fill, one JSON line, hold until
                                            $RELEASE_FILE appears
       python3 torch_mem.py hold STEP_MIB   fill in STEP_MIB steps, print JSON, then hold
                                            until the file named by $RELEASE_FILE appears
"""
import json
import os
import sys
import time

import subprocess

import torch


def real_usage_mib():
    """This process's device memory as the driver reports it, read without libvgpu."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], env=env, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        pid, used = [x.strip() for x in line.split(",")]
        if int(pid) == os.getpid():
            return int(used)
    return -1


def fill(step_mib_start=256, min_mib=2):
    free, total = torch.cuda.mem_get_info()
    res = {"alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""),
           "total_mib": total >> 20, "free_mib_at_start": free >> 20}
    chunks, allocated, step = [], 0, step_mib_start << 20
    res["oom_type"] = None
    while step >= (min_mib << 20):
        try:
            chunks.append(torch.empty(step, dtype=torch.uint8, device="cuda"))
            allocated += step
        except torch.cuda.OutOfMemoryError as e:  # the ordinary, catchable error
            res["oom_type"] = type(e).__name__
            res["oom_message"] = str(e).splitlines()[0][:160]
            step //= 2
        except RuntimeError as e:
            res["other_error"] = str(e).splitlines()[0][:200]
            break
    torch.cuda.synchronize()
    res["allocated_mib"] = allocated >> 20
    res["free_mib_at_cap"] = torch.cuda.mem_get_info()[0] >> 20
    res["real_process_mib_at_cap"] = real_usage_mib()
    return res, chunks


def main():
    mode = sys.argv[1]
    if mode == "fill":
        res, chunks = fill()
        del chunks
        torch.cuda.empty_cache()
        try:  # the process keeps working after the OOM
            x = torch.ones(256 << 20, dtype=torch.uint8, device="cuda")
            res["recovered"] = bool(x.sum().item() == (256 << 20))
        except Exception as e:  # noqa: BLE001
            res["recovered"] = False
            res["recover_error"] = str(e)[:160]
        print(json.dumps(res), flush=True)
    elif mode == "job":  # a `hami run` job: fill the slice, report, hold it a while
        res, chunks = fill(64, 2)
        res["real_process_mib_at_cap"] = real_usage_mib()
        res["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        print(json.dumps(res), flush=True)
        time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 10)
    elif mode == "lazy":  # kernels first (their modules load lazily and take memory), fill,
        # report, hold until $RELEASE_FILE appears (bench/gpu/pidns_memory.py)
        x = torch.randn(2048, 2048, device="cuda")
        for dt in (torch.float32, torch.bfloat16, torch.float16):
            y = (x.to(dt) @ x.to(dt)).float()
        img = torch.randn(8, 3, 64, 64, device="cuda")
        y = torch.nn.functional.conv2d(img, torch.randn(16, 3, 3, 3, device="cuda"))
        y = torch.softmax(x, 1) + torch.nn.functional.layer_norm(x, (2048,))
        torch.cuda.synchronize()
        del x, y, img
        torch.cuda.empty_cache()
        res, chunks = fill(64, 2)
        print(json.dumps(res), flush=True)
        release = os.environ["RELEASE_FILE"]
        deadline = time.time() + 120
        while not os.path.exists(release) and time.time() < deadline:
            time.sleep(0.05)
    elif mode == "hold":
        torch.cuda.mem_get_info()  # context first, then race the other holder
        print("ready", flush=True)
        go = os.environ["GO_FILE"]
        while not os.path.exists(go):
            time.sleep(0.01)
        res, chunks = fill(int(sys.argv[2]), int(sys.argv[2]))
        res["pid"] = os.getpid()
        print(json.dumps(res), flush=True)
        release = os.environ["RELEASE_FILE"]
        deadline = time.time() + 120
        while not os.path.exists(release) and time.time() < deadline:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
