"""Realistic PyTorch workloads for the compute limiter (issue 17), one process running several
of them in turn so that one environment (native, or libvgpu.so at a limit) is set up once.

  python3 workloads.py run WL[,WL...] [--seconds S] [--warmup-s W] [--repeat R]
      prints `wl=NAME iters=N wall_s=T iters_per_s=R` per workload (R windows in turn: one
      line each, with `rep=i`)
  python3 workloads.py serve WL[,WL...]
      sets the workloads up, prints `ready`, then measures one window per line on stdin
      (`go WL SECONDS WARMUP_S`), printing the `run` line for each, until `quit` or EOF: one
      warm process that takes turns with others (workload_suite.py turns)
  python3 workloads.py profile WL[,WL...]
      native only: per iteration, launches, summed kernel time, kernel-busy time (the union of
      kernel intervals over all streams) and wall time, from torch.profiler

Workloads (an iteration is one training step, one decoded token, one pipeline step):
  gpt_small    6 layers, width 768, seq 512, batch 16, AdamW, bf16 autocast (launch-bound)
  gpt_large    12 layers, width 1024, seq 1024, batch 8, AdamW, bf16 autocast
  dec1_eager   token-by-token decoding with a KV cache at batch 1, eager
  dec1_graph   the same, each token a CUDA graph replay
  dec32_eager  batch 32, eager
  dec32_graph  batch 32, CUDA graph
  cnn          ResNet-50 training step, batch 32 at 224x224, SGD, bf16 autocast, cuDNN
  streams      compute on two streams (bf16 matmuls; many small elementwise kernels) while a
               third copies the next input in (pinned host -> device) and results out
"""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DEV = torch.device("cuda")


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def attn(self, x, cache=None, pos=None, mask=None):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            kc, vc = cache  # (b, heads, max_len, hd): write this token at `pos` (a tensor)
            kc.index_copy_(2, pos, k)
            vc.index_copy_(2, pos, v)
            y = F.scaled_dot_product_attention(q, kc, vc, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))

    def forward(self, x, cache=None, pos=None, mask=None):
        x = x + self.attn(x, cache, pos, mask)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, layers, d, heads, vocab, ctx):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, idx, caches=None, pos=None, mask=None):
        p = pos if pos is not None else torch.arange(idx.shape[1], device=idx.device)
        x = self.tok(idx) + self.pos(p)
        for i, blk in enumerate(self.blocks):
            x = blk(x, caches[i] if caches else None, pos, mask)
        return self.head(self.ln(x))


def gpt_train(layers, d, seq, batch, vocab=32000):
    model = GPT(layers, d, d // 64, vocab, seq).to(DEV)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randint(0, vocab, (batch, seq), device=DEV)
    y = torch.randint(0, vocab, (batch, seq), device=DEV)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x).view(-1, vocab), y.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, 4  # a training loop synchronises now and then (logging the loss)


def decoder(batch, graph, layers=12, d=1024, vocab=32000, max_len=256):
    model = GPT(layers, d, d // 64, vocab, max_len).to(DEV).to(torch.bfloat16).eval()
    hd, heads = 64, d // 64
    caches = [(torch.zeros(batch, heads, max_len, hd, device=DEV, dtype=torch.bfloat16),
               torch.zeros(batch, heads, max_len, hd, device=DEV, dtype=torch.bfloat16))
              for _ in range(layers)]
    tok = torch.randint(0, vocab, (batch, 1), device=DEV)
    pos = torch.zeros(1, dtype=torch.long, device=DEV)
    ar = torch.arange(max_len, device=DEV)

    @torch.no_grad()
    def token():
        mask = (ar <= pos).view(1, 1, 1, max_len)
        logits = model(tok, caches, pos, mask)
        tok.copy_(logits[:, -1].argmax(-1, keepdim=True))  # greedy, fed back on the GPU
        pos.add_(1).remainder_(max_len)

    if not graph:
        return token, 1
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            token()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        token()
    return g.replay, 1  # a server synchronises every token (to stream it out)


def cnn():
    import torchvision
    model = torchvision.models.resnet50(weights=None).to(DEV).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(32, 3, 224, 224, device=DEV).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (32,), device=DEV)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, 4


def streams():
    n = 4096
    a = torch.randn(n, n, device=DEV, dtype=torch.bfloat16)
    w = torch.randn(n, n, device=DEV, dtype=torch.bfloat16)
    out = torch.empty_like(a)
    small = torch.randn(1 << 16, device=DEV)
    host_in = [torch.randn(16 << 20, pin_memory=True) for _ in range(2)]  # 64 MiB each
    dev_in = [torch.empty(16 << 20, device=DEV) for _ in range(2)]
    host_out = torch.empty(4 << 20, pin_memory=True)
    s_mm, s_small, s_copy = torch.cuda.Stream(), torch.cuda.Stream(), torch.cuda.Stream()
    state = {"i": 0}

    def step():
        i = state["i"] = state["i"] + 1
        cur = torch.cuda.current_stream()
        for s in (s_mm, s_small, s_copy):
            s.wait_stream(cur)
        with torch.cuda.stream(s_copy):  # next input in, last result out
            dev_in[i % 2].copy_(host_in[i % 2], non_blocking=True)
            host_out.copy_(dev_in[(i + 1) % 2][: 4 << 20], non_blocking=True)
        with torch.cuda.stream(s_mm):
            for _ in range(4):
                torch.matmul(a, w, out=out)
        with torch.cuda.stream(s_small):
            x = small
            for _ in range(40):
                x = x * 1.0001 + 0.5
        for s in (s_mm, s_small, s_copy):
            cur.wait_stream(s)

    return step, 2


WORKLOADS = {
    "gpt_small": lambda: gpt_train(6, 768, 512, 16),
    "gpt_large": lambda: gpt_train(12, 1024, 1024, 8),
    "dec1_eager": lambda: decoder(1, False),
    "dec1_graph": lambda: decoder(1, True),
    "dec32_eager": lambda: decoder(32, False),
    "dec32_graph": lambda: decoder(32, True),
    "cnn": cnn,
    "streams": streams,
}


def measure(step, sync_every, seconds, warmup_s):
    """Iterations per second over whole iterations, from a synchronise to a synchronise."""
    t_end = time.monotonic() + warmup_s
    i = 0
    while i < 3 or time.monotonic() < t_end:
        step()
        i += 1
        if i % sync_every == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    t0 = time.monotonic()
    t_end = t0 + seconds
    iters = 0
    while True:
        step()
        iters += 1
        if iters % sync_every == 0:
            torch.cuda.synchronize()
            if time.monotonic() >= t_end:
                break
    wall = time.monotonic() - t0
    return iters, wall, t0


def union_us(intervals):
    total, end = 0.0, -math.inf
    for s, e in sorted(intervals):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


def profile(name, step, sync_every, iters=8):
    from torch.profiler import ProfilerActivity, profile as tprof
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with tprof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.monotonic()
        for i in range(iters):
            step()
            if (i + 1) % sync_every == 0:
                torch.cuda.synchronize()
        torch.cuda.synchronize()
        wall = time.monotonic() - t0
    kern = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    ivs = [(e.time_range.start, e.time_range.end) for e in kern]
    ksum = sum(e - s for s, e in ivs)
    print(f"wl={name} prof_iters={iters} kernels_per_iter={len(kern) / iters:.0f} "
          f"kernel_sum_us={ksum / iters:.0f} kernel_busy_us={union_us(ivs) / iters:.0f} "
          f"wall_us={wall * 1e6 / iters:.0f}", flush=True)


def serve(names):
    steps = {}
    for name in names:
        torch.manual_seed(0)
        steps[name] = WORKLOADS[name]()
    torch.cuda.synchronize()
    print("ready", flush=True)
    for line in sys.stdin:
        f = line.split()
        if not f or f[0] == "quit":
            break
        if f[0] != "go" or len(f) != 4 or f[1] not in steps:
            print(f"error=bad_command line={line.strip()!r}", flush=True)
            continue
        step, sync_every = steps[f[1]]
        iters, wall, t0 = measure(step, sync_every, float(f[2]), float(f[3]))
        print(f"wl={f[1]} rep=0 iters={iters} wall_s={wall:.4f} "
              f"iters_per_s={iters / wall:.3f} t0_ms={t0 * 1000:.0f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run", "profile", "serve"])
    ap.add_argument("workloads")
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--warmup-s", type=float, default=0.5)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    # Not autotuned: cuDNN's benchmark mode picks different algorithms in different processes
    # (ResNet-50 steps differed by 1.5x between native runs of one invocation on the H100).
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = True
    if a.mode == "serve":
        serve(a.workloads.split(","))
        return
    for name in a.workloads.split(","):
        torch.manual_seed(0)
        step, sync_every = WORKLOADS[name]()
        if a.mode == "profile":
            profile(name, step, sync_every)
        else:
            for rep in range(a.repeat):
                iters, wall, t0 = measure(step, sync_every, a.seconds,
                                          a.warmup_s if rep == 0 else 0)
                # t0_ms: the window's start on CLOCK_MONOTONIC, as libvgpu.so's log lines give it
                print(f"wl={name} rep={rep} iters={iters} wall_s={wall:.4f} "
                      f"iters_per_s={iters / wall:.3f} t0_ms={t0 * 1000:.0f}", flush=True)
        del step
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
