"""PyTorch loads for bench/gpu/compute_limits.py: a bf16 matmul loop, or the same matmuls
replayed as a CUDA graph. Prints one key=value line.

  python3 compute_torch.py matmul|graph --seconds S [--warmup-ms W] [--start-at MS] [--n N]
"""
import argparse
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["matmul", "graph"])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--warmup-ms", type=float, default=500)
    ap.add_argument("--start-at", type=float, default=0, help="CLOCK_REALTIME ms")
    ap.add_argument("--n", type=int, default=8192, help="matrix size")
    ap.add_argument("--per-iter", type=int, default=4, help="matmuls per iteration")
    a = ap.parse_args()
    dev = torch.device("cuda")
    x = torch.randn(a.n, a.n, device=dev, dtype=torch.bfloat16)
    w = torch.randn(a.n, a.n, device=dev, dtype=torch.bfloat16)
    out = torch.empty_like(x)

    def step():
        for _ in range(a.per_iter):
            torch.matmul(x, w, out=out)

    step()
    torch.cuda.synchronize()
    run = step
    if a.mode == "graph":
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            step()  # warm up cuBLAS on the capture stream
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step()
        run = g.replay
    t_measure = time.monotonic() + a.warmup_ms / 1e3
    if a.start_at > 0:
        t_measure = time.monotonic() + max(0.0, (a.start_at - time.time() * 1e3) / 1e3)
    t_end = t_measure + a.seconds
    iters, measuring, t0 = 0, False, 0.0
    while True:
        now = time.monotonic()
        if not measuring and now >= t_measure:
            torch.cuda.synchronize()
            measuring, iters, t0 = True, 0, time.monotonic()
        if measuring and now >= t_end:
            break
        run()
        iters += 1
        torch.cuda.synchronize()
    wall = time.monotonic() - t0
    print(f"iters={iters} wall_s={wall:.4f} iters_per_s={iters / wall:.3f}", flush=True)


if __name__ == "__main__":
    main()
