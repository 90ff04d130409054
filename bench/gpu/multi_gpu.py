"""Issue 16 on a host with several GPUs: per-card limits, multi-card slices and NCCL under
libvgpu.so. Run from the repository root on the GPU host:

    python3 bench/gpu/multi_gpu.py            # needs 2+ GPUs; logs under $OUT (or ./out)
    python3 bench/gpu/multi_gpu.py --smoke    # on one GPU: runs each worker once on card 0
                                              # to check the script itself (no figures)

Checks (each a row of the table printed at the end):
  1. CUDA_DEVICE_MEMORY_LIMIT_0=2g, _1=6g: PyTorch sees 2048 / 6144 MiB, fills to OOM at each
     cap on both cards at once; nvidia-smi under the hook shows each card's own slice.
  2. The limits bound to UUIDs (CUDA_DEVICE_UUID_<i> in a limits file) follow the cards when
     CUDA_VISIBLE_DEVICES lists them in the other order.
  3. CUDA_DEVICE_SM_LIMIT_0=30, _1=70 (GPU_CORE_UTILIZATION_POLICY=force): each card's matmul
     throughput over native on that card, within 3 points.
  4. DDP with NCCL all-reduce over the two cards: completes under caps; all-reduce bandwidth
     and step time against native in the same invocation (alternating, medians); overhead
     within 2 % with no compute limit; with CUDA_DEVICE_SM_LIMIT=30 each card's step rate.
  5. Peer access and cudaMemcpyPeer between the cards under caps (the copy's destination is
     charged to the destination card only); CUDA IPC handles between two processes of one
     slice (the importer is not charged again); cuMemMap/VMM (expandable segments) on both.
The `hami run --gpus 2` and device-plugin halves need the host tools (.gpu-tools from
bench/gpu/pack_host_tools.sh): bench/gpu/node_and_host_checks.sh runs them on every card.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compute_limits as cl  # noqa: E402  (log, sh, row and the table rows)

ROOT = cl.ROOT
BUILD = cl.BUILD
LIB = cl.LIB
WORKER = os.path.join(ROOT, "bench", "gpu", "multi_gpu_worker.py")
os.makedirs(cl.OUT, exist_ok=True)
cl.LOG = open(os.path.join(cl.OUT, "multi_gpu.log"), "w")
log, sh, row, rows = cl.log, cl.sh, cl.row, cl.rows


def gpus():
    p = sh("nvidia-smi --query-gpu=index,uuid,name --format=csv,noheader", env=cl.native_env())
    return [tuple(x.strip() for x in line.split(",")) for line in p.stdout.strip().splitlines()]


def hooked(cache=None, **extra):
    env = dict(os.environ)
    env["LD_PRELOAD"] = LIB
    env["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = cache or tempfile.mktemp(prefix="vgpu-", suffix=".cache")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def native(**extra):
    env = cl.native_env()
    env.update({k: str(v) for k, v in extra.items()})
    return env


def worker(args, env, timeout=300):
    p = sh([sys.executable, WORKER] + args, env=env, timeout=timeout, check=False)
    lines = [l for l in p.stdout.strip().splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"rc={p.returncode}: {p.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def caps(cards):
    """1: per-card caps held at once; nvidia-smi's view of each card."""
    limits = {0: 2048, 1: 6144}
    env = hooked(CUDA_DEVICE_MEMORY_LIMIT_0="2g", CUDA_DEVICE_MEMORY_LIMIT_1="6g",
                 CUDA_VISIBLE_DEVICES=",".join(c[1] for c in cards))
    res = worker(["fill", ",".join(str(i) for i in range(len(cards)))], env)
    for i in range(len(cards)):
        got = res.get(str(i), {})
        ok = got.get("total_mib") == limits[i] and got.get("oom") is True and \
            got.get("filled_mib", 0) <= limits[i]
        row(f"card {i}: torch total / filled at OOM under {limits[i]} MiB",
            f"{got.get('total_mib')} / {got.get('filled_mib')} MiB "
            f"(driver {got.get('driver_mib')} MiB)" if got else res.get("error"), ok)
    smi = sh("nvidia-smi --query-gpu=uuid,memory.total --format=csv,noheader,nounits", env=env,
             check=False)
    totals = {l.split(",")[0].strip(): l.split(",")[1].strip() for l in smi.stdout.splitlines()
              if "," in l}
    for i, c in enumerate(cards):
        row(f"nvidia-smi under the hook, card {i}", f"{totals.get(c[1])} MiB",
            totals.get(c[1]) == str(limits[i]))


def reorder(cards):
    """2: UUID-bound limits follow reordered CUDA_VISIBLE_DEVICES."""
    d = tempfile.mkdtemp()
    path = os.path.join(d, "vgpu.limits")
    with open(path, "w") as f:
        f.write(f"CUDA_DEVICE_MEMORY_LIMIT_0=2g\nCUDA_DEVICE_UUID_0={cards[0][1]}\n"
                f"CUDA_DEVICE_MEMORY_LIMIT_1=6g\nCUDA_DEVICE_UUID_1={cards[1][1]}\n")
    os.chmod(path, 0o444)
    env = hooked(HAMI_LIMITS_FILE=path, CUDA_VISIBLE_DEVICES=f"{cards[1][1]},{cards[0][1]}")
    res = worker(["totals"], env)
    t = res.get("totals", [])
    row("reordered visible devices: ordinal 0 / 1 totals", f"{t} MiB", t == [6144, 2048])


def shares(cards):
    """3: per-card compute shares against native on the same card."""
    want = {0: 30, 1: 70}
    nat = [worker(["matmul", str(i), "6"], native()) for i in range(2)]
    env = hooked(CUDA_DEVICE_SM_LIMIT_0=30, CUDA_DEVICE_SM_LIMIT_1=70,
                 GPU_CORE_UTILIZATION_POLICY="force",
                 CUDA_VISIBLE_DEVICES=",".join(c[1] for c in cards))
    procs = [subprocess.Popen([sys.executable, WORKER, "matmul", str(i), "6"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=300)
        log(out, err)
        got = json.loads([l for l in out.splitlines() if l.startswith("{")][-1]) if p.returncode == 0 else {}
        pct = 100.0 * got.get("tflops", 0) / max(nat[i].get("tflops", 1e-9), 1e-9)
        row(f"card {i} at SM limit {want[i]} (both cards busy)", f"{pct:.1f} %",
            abs(pct - want[i]) <= 3)


def ddp(cards, rounds=3):
    """4: NCCL all-reduce and DDP steps, native vs hooked, alternating."""
    world = len(cards)
    runs = {"native": [], "hooked": [], "hooked30": []}
    for _ in range(rounds):
        runs["native"].append(worker(["ddp", str(world)], native()))
        runs["hooked"].append(worker(["ddp", str(world)], hooked(CUDA_DEVICE_MEMORY_LIMIT="6g")))
        runs["hooked30"].append(worker(["ddp", str(world)], hooked(
            CUDA_DEVICE_MEMORY_LIMIT="6g", CUDA_DEVICE_SM_LIMIT=30,
            GPU_CORE_UTILIZATION_POLICY="force")))

    def med(name, key):
        vals = [r[key] for r in runs[name] if key in r]
        return statistics.median(vals) if vals else float("nan")

    for key, label in [("allreduce_gbps", "all-reduce 256 MiB bus bandwidth (GB/s)"),
                       ("steps_per_s", "DDP steps/s")]:
        n, h = med("native", key), med("hooked", key)
        row(f"{label}: hooked/native, no compute limit", f"{h:.2f}/{n:.2f} = {h / n:.3f}",
            h / n >= 0.98)
    n, h = med("native", "steps_per_s"), med("hooked30", "steps_per_s")
    row("DDP steps/s at SM limit 30 over native", f"{100 * h / n:.1f} %", abs(100 * h / n - 30) <= 3)
    peak = [r.get("peak_mib", []) for r in runs["hooked"]]
    row("DDP under 6 GiB caps: each rank's driver memory at most the cap", f"{peak}",
        all(0 < m <= 6144 for p in peak for m in p))


def peer_ipc_vmm(cards):
    """5: peer copies, IPC between two processes of one slice, VMM on both cards."""
    cache = tempfile.mktemp(prefix="vgpu-", suffix=".cache")
    env = hooked(cache, CUDA_DEVICE_MEMORY_LIMIT_0="2g", CUDA_DEVICE_MEMORY_LIMIT_1="2g",
                 CUDA_VISIBLE_DEVICES=",".join(c[1] for c in cards))
    res = worker(["peer"], env)
    row("peer access + cudaMemcpyPeer 512 MiB under 2 GiB caps",
        json.dumps(res)[:120], res.get("copied") is True and res.get("card1_charged_mib", 0) >= 512)
    res = worker(["ipc"], env)
    row("CUDA IPC: importer of a 1 GiB buffer is not charged again",
        json.dumps(res)[:120], res.get("imported") is True and res.get("exporter_mib", 0) >= 1024
        and res.get("importer_extra_mib", 1 << 30) < 256)
    vmm = hooked(CUDA_DEVICE_MEMORY_LIMIT_0="2g", CUDA_DEVICE_MEMORY_LIMIT_1="6g",
                 PYTORCH_CUDA_ALLOC_CONF="expandable_segments:True",
                 CUDA_VISIBLE_DEVICES=",".join(c[1] for c in cards))
    res = worker(["fill", "0,1"], vmm)
    ok = all(res.get(str(i), {}).get("oom") and res[str(i)]["filled_mib"] <= lim
             for i, lim in [(0, 2048), (1, 6144)])
    row("VMM (expandable segments) on both cards stops at each cap", json.dumps(res)[:120], ok)


def main():
    smoke = "--smoke" in sys.argv
    sh(f"cmake -S {ROOT} -B {BUILD} -DHAMI_HOOK_ONLY=ON -DCMAKE_BUILD_TYPE=Release > /dev/null && "
       f"cmake --build {BUILD} -j8 --target vgpu > /dev/null")
    cards = gpus()
    log("cards:", cards)
    if len(cards) < 2 and not smoke:
        print(f"multi_gpu.py needs 2 or more GPUs, this host has {len(cards)} (use --smoke to "
              "check the script on one)")
        return 2
    if smoke:  # every worker once on card 0: the script's own check, no figures
        env = hooked(CUDA_DEVICE_MEMORY_LIMIT="2g")
        for args in (["fill", "0"], ["totals"], ["matmul", "0", "1"], ["ddp", "1"], ["ipc"]):
            res = worker(args, env)
            row("smoke " + " ".join(args), json.dumps(res)[:100], "error" not in res)
    else:
        cards = cards[:2]
        for step in (caps, reorder, shares, ddp, peer_ipc_vmm):
            try:
                step(cards)
            except Exception as e:  # noqa: BLE001  one broken step must not hide the others
                row(step.__name__, f"crashed: {e}"[:160], False)
    width = max(len(r[0]) for r in rows)
    for check, result, verdict in rows:
        print(f"{check:<{width}}  {verdict}  {result}")
    return 0 if all(r[2] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
