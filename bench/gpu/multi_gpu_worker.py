"""Workers for bench/gpu/multi_gpu.py; each prints one JSON line. Run under or without
libvgpu.so (the caller sets LD_PRELOAD and the limits).

  fill DEVS            fill each listed card in 64 MiB tensors until OOM (all held together)
  totals               the total memory PyTorch sees on each visible card
  matmul DEV SECONDS   bf16 4096^3 matmuls on one card: TFLOP/s
  ddp WORLD            NCCL all-reduce bus bandwidth and DDP training steps/s over WORLD cards
  peer                 peer access + a 512 MiB copy card 0 -> card 1; what card 1 is charged
  ipc                  a 1 GiB buffer exported by one process and opened by another (CUDA IPC)
"""
import json
import os
import socket
import sys
import time

import torch

MIB = 1 << 20


def used_mib(dev):
    free, total = torch.cuda.mem_get_info(dev)
    return (total - free) // MIB


def fill(devs):
    out, held = {}, []
    for d in [int(x) for x in devs.split(",")]:
        total = torch.cuda.mem_get_info(d)[1] // MIB
        filled, oom = 0, False
        try:
            while filled < 200 * 1024:
                held.append(torch.empty(64 * MIB, dtype=torch.uint8, device=f"cuda:{d}"))
                filled += 64
        except torch.cuda.OutOfMemoryError:
            oom = True
        out[str(d)] = {"total_mib": total, "filled_mib": filled, "oom": oom,
                       "driver_mib": used_mib(d)}
    return out


def totals():
    return {"totals": [torch.cuda.mem_get_info(i)[1] // MIB
                       for i in range(torch.cuda.device_count())]}


def matmul(dev, seconds):
    torch.cuda.set_device(dev)
    a = torch.randn(4096, 4096, device=f"cuda:{dev}", dtype=torch.bfloat16)
    b = torch.randn(4096, 4096, device=f"cuda:{dev}", dtype=torch.bfloat16)
    for _ in range(20):
        a @ b
    torch.cuda.synchronize()
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        for _ in range(20):
            a @ b
        torch.cuda.synchronize()
        n += 20
    return {"tflops": 2 * 4096 ** 3 * n / (time.time() - t0) / 1e12}


def _ddp_rank(rank, world, port, q):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world)
    x = torch.ones(64 * MIB, device=f"cuda:{rank}")  # 256 MiB of fp32
    for _ in range(3):
        dist.all_reduce(x)
    torch.cuda.synchronize()
    iters, t0 = 10, time.time()
    for _ in range(iters):
        dist.all_reduce(x)
    torch.cuda.synchronize()
    dt = (time.time() - t0) / iters
    busbw = 2 * (world - 1) / world * x.numel() * 4 / dt / 1e9 if world > 1 else \
        x.numel() * 4 / dt / 1e9
    model = torch.nn.Sequential(*[torch.nn.Linear(2048, 2048) for _ in range(8)]).cuda(rank)
    model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = torch.randn(256, 2048, device=f"cuda:{rank}")
    for _ in range(5):
        opt.zero_grad()
        model(data).square().mean().backward()
        opt.step()
    torch.cuda.synchronize()
    steps, t0 = 0, time.time()
    while time.time() - t0 < 4:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(data).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    torch.cuda.synchronize()
    rate = steps / (time.time() - t0)
    q.put({"rank": rank, "busbw": busbw, "steps": rate,
           "peak_mib": torch.cuda.max_memory_reserved(rank) // MIB, "seen_mib": used_mib(rank)})
    dist.destroy_process_group()


def ddp(world):
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_ddp_rank, args=(r, world, port, q)) for r in range(world)]
    for p in procs:
        p.start()
    res = [q.get(timeout=240) for _ in procs]
    for p in procs:
        p.join()
    return {"allreduce_gbps": min(r["busbw"] for r in res),
            "steps_per_s": min(r["steps"] for r in res),
            "peak_mib": [r["seen_mib"] for r in sorted(res, key=lambda r: r["rank"])]}


def peer():
    before = used_mib(1)
    can = torch.cuda.can_device_access_peer(0, 1)
    src = torch.ones(512 * MIB, dtype=torch.uint8, device="cuda:0")
    dst = src.to("cuda:1")
    torch.cuda.synchronize(1)
    return {"peer_access": can, "copied": bool(dst[-1].item() == 1),
            "card1_charged_mib": used_mib(1) - before, "card0_mib": used_mib(0)}


def _ipc_child(q, r):
    torch.zeros(1, device="cuda:0")  # this process's context first, so it is not counted
    torch.cuda.synchronize()
    before = used_mib(0)
    t = q.get()  # opens the exporter's buffer through a CUDA IPC handle
    ok = bool(t[-1].item() == 7)
    r.put({"imported": ok, "importer_extra_mib": used_mib(0) - before, "seen_mib": before})
    del t


def ipc():
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    q, r = ctx.Queue(), ctx.Queue()
    buf = torch.full((1024 * MIB,), 7, dtype=torch.uint8, device="cuda:0")
    torch.cuda.synchronize()
    exporter = used_mib(0)
    # Started after the allocation, so the child's "before" already holds the exporter's buffer
    # (one accounting file for the slice) and any growth is the import's own.
    p = ctx.Process(target=_ipc_child, args=(q, r))
    p.start()
    q.put(buf)
    res = r.get(timeout=120)
    p.join()
    res["exporter_mib"] = exporter
    return res


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"fill": lambda: fill(args[0]), "totals": totals,
          "matmul": lambda: matmul(int(args[0]), float(args[1])),
          "ddp": lambda: ddp(int(args[0])), "peer": peer, "ipc": ipc}[cmd]
    print(json.dumps(fn()), flush=True)


if __name__ == "__main__":
    main()
