"""Where does device memory go on PyTorch's cudaMallocAsync path? Prints the driver-reported
process usage next to the pool's own reservation after each step (run without libvgpu)."""
import os
import subprocess

os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "backend:cudaMallocAsync"
import torch  # noqa: E402


def real():
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, used = [x.strip() for x in line.split(",")]
        if int(pid) == os.getpid():
            return int(used)
    return -1


def reserved():
    return torch.cuda.memory_stats().get("reserved_bytes.all.current", 0) >> 20


torch.cuda.init()
torch.cuda.mem_get_info()
print("after context: process", real(), "MiB")
xs = [torch.empty(2 << 20, dtype=torch.uint8, device="cuda")]
torch.cuda.synchronize()
print("after first 2 MiB: process", real(), "pool reserved", reserved())
for _ in range(16):
    xs.append(torch.empty(64 << 20, dtype=torch.uint8, device="cuda"))
torch.cuda.synchronize()
print("after +1 GiB: process", real(), "pool reserved", reserved())
for _ in range(16):
    xs.append(torch.empty(64 << 20, dtype=torch.uint8, device="cuda"))
torch.cuda.synchronize()
print("after +2 GiB: process", real(), "pool reserved", reserved())
