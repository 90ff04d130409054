"""Issue 17 on a real GPU: the compute limiter on realistic workloads (bench/gpu/workloads.py).

Each environment is one process running every workload in turn (a few seconds each):
native runs alternate with libvgpu.so at 10/30/50/70/90 % under GPU_CORE_UTILIZATION_POLICY=
force and at 50 % under the default policy alone on the card (which must not throttle). The
throughput of each workload is reported as a percentage of the native runs of the same
invocation: each limited run against the native runs next to it (the host-bound workloads'
native rate drifts within a call). `D` runs log libvgpu.so's contention switches
(LIBCUDA_LOG_LEVEL=3), and the table says when the policy saw contention in a workload's
window (then it was throttled).

Run from the repository root:  python3 bench/gpu/workload_suite.py [CASE ...]
Cases: sweep (the table above), turns (warm processes take turns on the card, one at a time:
two natives and one per configuration of TURN_ORDER, default N,10,N,30,N,50,N,D,N,70,N,90,
for TURN_ROUNDS rounds, default 3; TURN_GAP_S before each turn, default 2.5; each limited window
against the native windows next to it,
seconds apart: for the host-bound workloads whose pace drifts between processes; see
case_turns), flips (one libvgpu.so process per workload, its share changed between windows
through its limits file, each limited window against its own unlimited windows; see
case_flips), stats (each workload at 50 % with the limiter's counters,
HAMI_COMPUTE_STATS=1), profile (native: launches, kernel time and kernel-busy time per
iteration, torch.profiler), overhead (bench/gpu/compute_limits.py's no-limit launch
overhead), limits (compute_limits.py's kernel cases), noise (native only: NOISE_PROCS processes
per workload, each measuring NOISE_REPEAT windows in turn, alternately unpinned and pinned with
taskset to NOISE_CPUS: is the spread between processes or in time?). Default: sweep.
Environment: WL=comma list of workloads, SUITE_SECONDS (per workload, default 1.5),
SUITE_SECONDS is tripled at 10 % (pace mode's period is 200 ms there),
SUITE_ORDER (the environments in turn, default N,10,30,N,50,D,N,70,90,N,D; H = libvgpu.so
without a compute limit), SUITE_ALT_LIB (another libvgpu.so, for configurations named like
50@alt; 50@p0 = HAMI_COMPUTE_POWER=0), SUITE_VARIANTS ("s=VAR=value,...;t=...": 50@s sets
those variables),
SUITE_CPUS (default 2-5: every run pinned there with taskset, since unpinned host-bound runs
differed by up to 1.5x between processes on the H100 machine; "" = unpinned), STATS_CFGS
(default 50), STATS_WL, STATS_TOGETHER (1: the stats workloads in one process),
HAMI_COMPUTE_* settings pass through to the libvgpu.so runs; flips samples the card's SM
clock and power with nvidia-smi (CLOCKS_MS, default 20; 0 = off; CLOCKS_CPUS, default 0,1) and
prints them per configuration.
`python3 bench/gpu/workload_suite.py selftest` checks the pure-Python parts without a GPU;
`python3 bench/gpu/workload_suite.py summary FILE` prints the table of a saved (even partial) sweep.
"""
import json
import math
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compute_limits as cl  # noqa: E402

WL_SCRIPT = os.environ.get("SUITE_WL_SCRIPT") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "workloads.py")  # another: tests of the suite
ALL = ["gpt_small", "gpt_large", "dec1_eager", "dec1_graph", "dec32_eager", "dec32_graph",
       "cnn", "streams"]
# Native runs alternate with the limited ones (N = native, D = default policy at 50 %).
ORDER = ["N", 10, 30, "N", 50, "D", "N", 70, 90, "N", "D"]
ALT_LIB = os.environ.get("SUITE_ALT_LIB")  # another libvgpu.so build, configs "<cfg>@alt"


def parse_cfg(c):
    base = c.split("@")[0]
    return (base if base in ("N", "D", "H", "U") else int(base)) if "@" not in c else c


def parse_variants(text):
    """SUITE_VARIANTS="r=HAMI_COMPUTE_PACE_RESTART=0;x=A=1,B=2": configuration suffixes
    (30@r) that set libvgpu.so variables for an A/B in one call."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, assigns = part.partition("=")
        if not name or name in ("p0", "alt") or not assigns:
            raise ValueError(f"SUITE_VARIANTS: bad entry {part!r} (want name=VAR=value,...)")
        env = {}
        for a in assigns.split(","):
            k, eq, v = a.partition("=")
            if not eq or not k:
                raise ValueError(f"SUITE_VARIANTS: bad assignment {a!r} in {part!r}")
            env[k] = v
        out[name] = env
    return out


VARIANTS = parse_variants(os.environ.get("SUITE_VARIANTS", ""))


CPUS = os.environ.get("SUITE_CPUS", "2-5")


def pinned(argv):
    return (["taskset", "-c", CPUS] + argv) if CPUS else argv


if os.environ.get("SUITE_ORDER"):  # e.g. N,50,D,N for a quick look; 50@alt = ALT_LIB
    ORDER = [parse_cfg(c) for c in os.environ["SUITE_ORDER"].split(",")]
SECONDS = float(os.environ.get("SUITE_SECONDS", "1.5"))


def env_for(cfg):
    """N: native; H: libvgpu.so with no compute limit; D: policy default at 50 %; a number:
    policy force at that limit; <cfg>@p0 (no power probes), <cfg>@alt (SUITE_ALT_LIB),
    <cfg>@<name> (SUITE_VARIANTS)."""
    if isinstance(cfg, str) and "@" in cfg:
        base, var = cfg.split("@", 1)
        env = env_for(parse_cfg(base))
        if var == "p0":
            env["HAMI_COMPUTE_POWER"] = "0"
        elif var == "alt":
            env["LD_PRELOAD"] = ALT_LIB
        elif var in VARIANTS:
            env.update(VARIANTS[var])
        else:
            raise ValueError(f"configuration {cfg}: no variant {var!r} in SUITE_VARIANTS")
        return env
    if cfg == "N":
        return cl.native_env()
    board = tempfile.mkdtemp(prefix="hami-board-")  # no earlier run looks like a neighbour
    if cfg == "H":
        return cl.hooked_env(None, policy=None, board=board)
    if cfg == "D":
        return cl.hooked_env(50, policy="default", board=board)
    return cl.hooked_env(cfg, policy="force", board=board)


def seconds_for(cfg):
    """Below 30 %, pace mode's period (a 20 ms stretch, then 180 ms off at 10 %) is long: the
    window grows so that it holds a dozen periods."""
    lim = cfg if isinstance(cfg, int) else (int(cfg.split("@")[0]) if cfg[0].isdigit() else 100)
    return SECONDS * max(1.0, 30.0 / lim)


def run_all(cfg, wls, extra_env=None):
    """Rates per workload, the process's stderr, and each workload's result line."""
    env = env_for(cfg)
    env.update(extra_env or {})
    p = cl.sh(pinned([sys.executable, WL_SCRIPT, "run", ",".join(wls), "--seconds",
                      f"{seconds_for(cfg):.2f}"]),
              env=env, timeout=60 + 15 * len(wls), check=False)
    rates, kvs = {}, {}
    for line in p.stdout.splitlines():
        kv = cl.parse_kv(line)
        if "wl" in kv and "iters_per_s" in kv:
            rates[kv["wl"]] = float(kv["iters_per_s"])
            kvs[kv["wl"]] = kv
    if p.returncode != 0:
        cl.log(f"config {cfg}: rc={p.returncode}")
    return rates, p.stderr, kvs


def neighbour_native(results, i, wl):
    """The native rate of `wl` around run i: the geometric mean of the nearest native runs
    before and after it (one of them at the ends). The host-bound workloads' native rate
    drifts within a call (140-340 it/s for dec1_eager on a disturbed host): a limited run is
    compared with the natives measured next to it, not with the median of the whole call."""
    before = next((r[wl] for c, r in reversed(results[:i]) if c == "N" and wl in r), None)
    after = next((r[wl] for c, r in results[i + 1:] if c == "N" and wl in r), None)
    got = [x for x in (before, after) if x]
    return math.prod(got) ** (1.0 / len(got)) if got else None


def summarise(results, wls):
    """results: list of (cfg, {wl: rate}). Per workload: the median native rate, and per
    configuration the median over its runs of % of the neighbouring natives ("pct") and of
    % of the median native ("pct_all", the figure before session 10)."""
    out = {}
    for wl in wls:
        natives = [r[wl] for c, r in results if c == "N" and wl in r]
        if not natives:
            continue
        base = statistics.median(natives)
        pct, pct_all = {}, {}
        for i, (c, r) in enumerate(results):
            if c != "N" and wl in r:
                pct.setdefault(c, []).append(100.0 * r[wl] / neighbour_native(results, i, wl))
                pct_all.setdefault(c, []).append(100.0 * r[wl] / base)
        out[wl] = {"native": base, "native_spread": (min(natives), max(natives)),
                   "pct": {c: statistics.median(v) for c, v in pct.items()},
                   "pct_all": {c: statistics.median(v) for c, v in pct_all.items()}}
    return out


def save(results, summary=None, contended=None):
    with open(os.path.join(cl.OUT, "workload_suite.json"), "w") as f:
        json.dump({"order": ORDER, "results": results, "summary": summary,
                   "contended": contended or {}}, f, indent=1)


def is_default(cfg):
    return str(cfg).split("@")[0] == "D"


def contended_windows(err, kvs):
    """Per workload of one process: whether libvgpu.so's policy saw contention (its
    'contended=1' log line, LIBCUDA_LOG_LEVEL=3) at any time of the workload's measured window:
    a `D` figure is only "alone on the card" when it did not."""
    switches = sorted((int(m.group(2)), m.group(1) == "1") for m in
                      re.finditer(r"contended=(\d) at (\d+) ms", err))
    out = {}
    for wl, kv in kvs.items():
        try:
            t0, t1 = int(kv["t0_ms"]), int(kv["t0_ms"]) + float(kv["wall_s"]) * 1000
        except (KeyError, ValueError):
            continue
        before = [on for t, on in switches if t < t0]
        out[wl] = bool(before and before[-1]) or any(on for t, on in switches if t0 <= t <= t1)
    return out


def case_sweep(wls):
    results, contended = [], {}
    for cfg in ORDER:
        # Under the default policy the hook logs its contention switches: a D run that was
        # throttled (another process on the card, or a false alarm) says so in the table.
        extra = {"LIBCUDA_LOG_LEVEL": "3"} if is_default(cfg) else None
        rates, err, kvs = run_all(cfg, wls, extra)
        if extra:
            contended[str(len(results))] = contended_windows(err, kvs)
        results.append((cfg, rates))
        print(f"  {cfg}: " + " ".join(f"{k}={v:.1f}" for k, v in rates.items()), flush=True)
        save(results, contended=contended)  # a call cut short keeps what it measured
    save(results, report(results, wls, contended), contended)


TURN_ORDER = [parse_cfg(c) for c in
              os.environ.get("TURN_ORDER", "N,10,N,30,N,50,N,D,N,70,N,90").split(",")]


class Turner:
    """One warm `workloads.py serve` process of a configuration; its stdout read by a thread."""

    def __init__(self, cfg, wl, name, env=None):
        env = env or env_for(cfg)
        if cfg != "N":  # contention switches, timed: a window that was contended says so
            env["LIBCUDA_LOG_LEVEL"] = "3"
            # One power probe, at the start (50 ms into the first throttled launches, before
            # any window): the idle natives no longer keep probes off (NVML's per-process
            # utilisation), and a later one, 200 ms unthrottled and not charged, would land in
            # some window and lift it (a 3 s window at 10 % by about 7 points).
            env.setdefault("HAMI_COMPUTE_PROBE_EVERY_S", "3600")
            if os.environ.get("TURN_STATS") == "1":  # the limiter's counters, at the end
                env["HAMI_COMPUTE_STATS"] = "1"
        self.cfg, self.lines = cfg, queue.Queue()
        self.err = tempfile.TemporaryFile(mode="w+")
        argv = pinned([sys.executable, WL_SCRIPT, "serve", wl])
        cl.log(f"$ [{name}] {' '.join(argv)}")
        self.p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True)
        def read():
            for ln in self.p.stdout:
                self.lines.put(ln)
            self.lines.put(None)  # the process ended
        threading.Thread(target=read, daemon=True).start()

    def line(self, timeout):
        try:
            ln = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self.cfg}: no answer in {timeout:.0f} s") from None
        if ln is None:
            raise RuntimeError(f"{self.cfg}: the process ended: {self.stderr()[-300:]}")
        return ln

    def go(self, wl, seconds, warm):
        self.p.stdin.write(f"go {wl} {seconds:.2f} {warm:.2f}\n")
        self.p.stdin.flush()
        kv = cl.parse_kv(self.line(seconds + warm + 60))
        if "iters_per_s" not in kv:
            raise RuntimeError(f"{self.cfg}: {kv}")
        return kv

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
            self.p.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.p.kill()


def wait_ready(procs):
    for t in procs.values():
        if t.line(300).strip() != "ready":
            raise RuntimeError(f"{t.cfg}: did not start: {t.stderr()[-300:]}")


def close_all(procs, prefix):
    """Ends the processes, keeping each one's stderr as $OUT/<prefix>_<name>.err."""
    for name, t in procs.items():
        t.close()
        with open(os.path.join(cl.OUT, f"{prefix}_{name}.err"), "w") as f:
            f.write(t.stderr())


class GpuClocks:
    """The card's SM clock, memory clock and power draw, sampled by `nvidia-smi -lms` every
    CLOCKS_MS ms (default 20; 0 = off) in the background, pinned to CLOCKS_CPUS (default 0,1:
    away from the workloads' CPUs): per measured window the mean and lowest SM clock and the
    mean power. Tells whether a card runs its work at a lower clock in pace mode's rhythm than
    unlimited (dec1_eager's launches took 1.8x their usual GPU time at 50 % on one H100)."""

    def __init__(self, argv=None):
        self.samples = []  # (CLOCK_MONOTONIC s, sm MHz, mem MHz, W)
        self.p = None
        ms = int(os.environ.get("CLOCKS_MS", "20"))
        if argv is None:
            if ms <= 0 or not shutil.which("nvidia-smi"):
                return
            argv = ["nvidia-smi",
                    "--query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,utilization.gpu",
                    "--format=csv,noheader,nounits", f"-lms={ms}"]
            cpus = os.environ.get("CLOCKS_CPUS", "0,1")
            if cpus and shutil.which("taskset"):
                argv = ["taskset", "-c", cpus] + argv
        # nvidia-smi stamps each sample with the local wall clock; the windows are on
        # CLOCK_MONOTONIC: the offset between the two, taken now.
        self.offset = time.time() - time.monotonic()
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for ln in self.p.stdout:
            got = self.parse(ln, self.offset)
            if got:
                self.samples.append(got)

    @staticmethod
    def parse(line, offset):
        """'2026/12/07 12:00:00.123, 1980, 2619, 312.45, 57' -> (monotonic s, 1980, 2619, 312.45,
        57): the GPU's busy % over the driver's last sample period comes last (None when the
        line has only four fields); None for anything else ('[N/A]', a header)."""
        parts = [x.strip() for x in line.split(",")]
        if len(parts) not in (4, 5):
            return None
        try:
            stamp, frac = (parts[0].split(".") + ["0"])[:2]
            wall = time.mktime(time.strptime(stamp, "%Y/%m/%d %H:%M:%S")) + float("0." + frac)
            util = float(parts[4]) if len(parts) == 5 else None
            return (wall - offset, float(parts[1]), float(parts[2]), float(parts[3]), util)
        except ValueError:
            return None

    def window(self, kv):
        """{'sm_mhz', 'sm_min_mhz', 'watts', 'n'} of the samples inside the window of a result
        line (t0_ms, wall_s), or None without samples there."""
        if "t0_ms" not in kv or "wall_s" not in kv:
            return None
        t0 = float(kv["t0_ms"]) / 1000
        t1 = t0 + float(kv["wall_s"])
        got = [x for x in list(self.samples) if t0 <= x[0] <= t1]
        if not got:
            return None
        return {"sm_mhz": statistics.mean(x[1] for x in got),
                "sm_min_mhz": min(x[1] for x in got),
                "mem_mhz": statistics.mean(x[2] for x in got),
                "watts": statistics.mean(x[3] for x in got), "n": len(got),
                "busy_pct": (statistics.mean(x[4] for x in got)
                             if all(x[4] is not None for x in got) else None)}

    def close(self):
        if self.p:
            self.p.kill()
            self.p.wait()


def clock_rows(wl, windows):
    """One row of the SM clock per configuration: [(cfg, GpuClocks.window or None)]."""
    by = {}
    for c, w in windows:
        if w:
            by.setdefault(str(c), []).append(w)
    if not by:
        return
    def busy(ws):
        got = [w["busy_pct"] for w in ws if w.get("busy_pct") is not None]
        return f" / {statistics.median(got):.0f} %" if got else ""
    cl.row(f"{wl}: GPU clock in its windows, median MHz (lowest sample) / W / GPU busy",
           ", ".join(f"{c} {statistics.median(w['sm_mhz'] for w in ws):.0f} "
                     f"({min(w['sm_min_mhz'] for w in ws):.0f}) / "
                     f"{statistics.median(w['watts'] for w in ws):.0f}{busy(ws)}"
                     for c, ws in by.items()), None)


def take_turns(procs, order, rounds, wl, gap, warm, proc_of, before=None):
    """`rounds` rounds of `order`: each turn waits `gap` s, calls before(cfg), then runs a
    window of `wl` in its process (natives alternate between N0 and N1, any other cfg in
    proc_of(cfg)); yields (cfg, the window's result line) and prints each round's rates."""
    n = 0
    for _ in range(rounds):
        rates = []
        for cfg in order:
            if cfg == "N":
                t, n = procs[f"N{n % 2}"], n + 1
            else:
                t = proc_of(cfg)
            if before:
                before(cfg)
            time.sleep(gap)
            kv = t.go(wl, seconds_for(cfg), warm)
            rates.append(f"{cfg}={float(kv['iters_per_s']):.1f}")
            yield cfg, kv
        print(f"  {wl}: " + " ".join(rates), flush=True)


def case_turns(wls):
    """Warm processes take turns on the card, one at a time: per workload two native processes
    and one per configuration of TURN_ORDER, then TURN_ROUNDS rounds of that order, each turn
    TURN_WARM_S of warm-up (the limiter's banked burst, 30 ms, is spent in it) and a measured
    window. The natives alternate between the two processes, and every limited turn is
    compared with the native turns next to it: host drift slower than a few seconds cancels,
    and no process start or model set-up sits between a limited window and its natives. Every
    turn waits TURN_GAP_S (default 2.5 s) first: NVML's utilisation still shows the previous
    turn's work for a while, which the policy rightly takes for a neighbour (a D turn
    throttles, a force turn leaves pace mode for per-launch accounting); with 1 s before D
    turns and none before the others, every D turn on the H100 saw contention and ran at
    about 75 %. The natives wait as long, so that all start from the same idle card. The
    libvgpu.so processes log their contention switches (and with TURN_STATS=1 the limiter's
    counters at their end; every process's stderr is kept in $OUT), and a window that saw
    contention is counted in the table. The idle processes hold
    contexts on the card but compute nothing while another takes its turn, so a limited process
    makes its power probe (docs/compute-limiter.md, section 6) next to them; one, at its start
    (Turner sets HAMI_COMPUTE_PROBE_EVERY_S=3600 unless it is set)."""
    rounds = int(os.environ.get("TURN_ROUNDS", "3"))
    warm = float(os.environ.get("TURN_WARM_S", "0.5"))
    gap = float(os.environ.get("TURN_GAP_S", "2.5"))
    saved = {}
    for wl in wls:
        procs = {"N0": Turner("N", wl, "N0"), "N1": Turner("N", wl, "N1")}
        for cfg in TURN_ORDER:
            if cfg != "N" and str(cfg) not in procs:
                procs[str(cfg)] = Turner(cfg, wl, str(cfg))
        results, contended = [], {}
        try:
            wait_ready(procs)
            for cfg, kv in take_turns(procs, TURN_ORDER, rounds, wl, gap, warm,
                                      lambda c: procs[str(c)]):
                if cfg != "N":
                    contended[str(len(results))] = {"kv": kv, "proc": str(cfg)}
                results.append((cfg, {wl: float(kv["iters_per_s"])}))
        except Exception as e:  # noqa: BLE001
            cl.row(f"{wl}: turns", f"error: {e}"[:400], False)
        finally:
            close_all(procs, f"turns_{wl}")
        flags = {k: contended_windows(procs[v["proc"]].stderr(), {wl: v["kv"]})
                 for k, v in contended.items()}
        if results:
            nat = [r[wl] for c, r in results if c == "N"]
            n0, n1 = nat[0::2], nat[1::2]
            if n0 and n1:  # how far two processes of one configuration differ
                cl.row(f"{wl}: native processes N0 / N1 (median it/s)",
                       f"{statistics.median(n0):.1f} / {statistics.median(n1):.1f}", None)
            saved[wl] = {"results": results, "contended": flags,
                         "summary": report(results, [wl], flags)}
        with open(os.path.join(cl.OUT, "workload_turns.json"), "w") as f:
            json.dump({"order": TURN_ORDER, "rounds": rounds, "workloads": saved}, f, indent=1)


FLIP_ORDER = [parse_cfg(c) for c in
              os.environ.get("FLIP_ORDER", "N,U,10,U,30,U,50,N,U,70,U,90,U").split(",")]
# The limited process's policy: force (default), or default: alone on the card its limited
# windows must then run as fast as its unlimited ones (issue 17: within 2 %).
FLIP_POLICY = os.environ.get("FLIP_POLICY", "force")


def write_limits(path, limit):
    """The whole limits file, replaced at once (libvgpu.so reads it again when it changed)."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(f"CUDA_DEVICE_SM_LIMIT={limit}\n")
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def case_flips(wls):
    """One libvgpu.so process per workload whose compute share is changed between windows
    through its limits file (docs/limits-file.md, "Changing the compute share"): every limited
    window is compared with the unlimited windows (U: share lifted, limiter on) of the very same
    process seconds before and after it. No second process, so no difference in cuDNN's
    algorithms, memory placement or CPU between the windows compared (cnn's processes differ
    by up to 1.24x natively). Two native processes take turns too (N): U against N is what
    the library costs when it does not throttle. FLIP_ORDER (default
    N,U,10,U,30,U,50,N,U,70,U,90,U) for TURN_ROUNDS rounds; before every window TURN_GAP_S
    (default 0.6 s: the file is looked at every 0.5 s while the process launches, so the first
    launch after the pause reads it; under `force` NVML's utilisation plays no part, and with
    no other libvgpu.so process nothing else signals contention; 1.5 s in the fourteenth
    session's run) and TURN_WARM_S of warm-up. FLIP_POLICY=default starts the limited process
    under the default policy: alone on the card, its limited windows must run as fast as its
    unlimited ones (within 2 %). With
    TURN_STATS=1 the limited process prints pace mode's counters at every share change, and a
    row per share says what pace mode did there (pace_rows)."""
    rounds = int(os.environ.get("TURN_ROUNDS", "3"))
    warm = float(os.environ.get("TURN_WARM_S", "0.5"))
    gap = float(os.environ.get("TURN_GAP_S", "0.6"))
    saved = {}
    for wl in wls:
        limits = os.path.join(tempfile.mkdtemp(prefix="hami-flips-"), "vgpu.limits")
        write_limits(limits, 50)
        env = env_for(50)
        env.pop("CUDA_DEVICE_SM_LIMIT", None)
        env["GPU_CORE_UTILIZATION_POLICY"] = FLIP_POLICY
        env["HAMI_LIMITS_FILE"] = limits  # Turner adds the log level and TURN_STATS's counters
        procs = {"N0": Turner("N", wl, "N0"), "N1": Turner("N", wl, "N1"),
                 "F": Turner(50, wl, "F", env)}
        results = []  # (label, {wl: rate}); label N, U or a limit
        limited_kvs = []  # the limited windows' lines: was their policy contended?
        clocks, windows = GpuClocks(), []  # the card's clock in each window
        try:
            wait_ready(procs)
            def set_share(c):
                if c != "N":
                    write_limits(limits, 0 if c == "U" else c)
            for c, kv in take_turns(procs, FLIP_ORDER, rounds, wl, gap, warm, lambda _: procs["F"],
                                    set_share):
                results.append((c, {wl: float(kv["iters_per_s"])}))
                windows.append((c, clocks.window(kv)))
                if c in cl.LIMITS:
                    limited_kvs.append(kv)
        except Exception as e:  # noqa: BLE001
            cl.row(f"{wl}: flips", f"error: {e}"[:400], False)
        finally:
            close_all(procs, f"flips_{wl}")
            clocks.close()
        if not results:
            continue
        # Limited windows against the same process's unlimited windows next to them ...
        own = summarise([("N" if c == "U" else c, r) for c, r in results if c != "N"], [wl])
        # ... and the unlimited windows against the natives next to them.
        cost = summarise([("H" if c == "U" else c, r) for c, r in results if c in ("N", "U")],
                         [wl])
        f_err = procs["F"].stderr()
        seen = [contended_windows(f_err, {wl: kv}).get(wl, False) for kv in limited_kvs]
        if wl in own and FLIP_POLICY == "default":
            got = sorted((l, p) for l, p in own[wl]["pct"].items() if isinstance(l, int))
            cl.row(f"{wl}: % of its own unlimited windows, policy default alone on the card",
                   " / ".join(f"{p:.1f} at {l}" for l, p in got) +
                   f"  (unlimited {own[wl]['native']:.1f} it/s; target 100, within 2 %; "
                   f"contention seen in {sum(seen)} of {len(seen)} windows)",
                   bool(got) and all(abs(p - 100.0) <= 2.0 for _, p in got) and not any(seen))
        elif wl in own:
            pct = [own[wl]["pct"].get(l) for l in cl.LIMITS]
            got = [(l, p) for l, p in zip(cl.LIMITS, pct) if p is not None]
            worst = max((abs(p - l) for l, p in got), default=float("nan"))
            cl.row(f"{wl}: % of its own unlimited windows at 10/30/50/70/90 (force, one process)",
                   " / ".join("-" if p is None else f"{p:.1f}" for p in pct) +
                   f"  (unlimited {own[wl]['native']:.1f} it/s, worst {worst:.1f} pts; "
                   f"contention seen in {sum(seen)} of {len(seen)} windows)",
                   len(got) == len(cl.LIMITS) and worst <= cl.TOLERANCE)
        if wl in cost and "H" in cost[wl]["pct"]:
            cl.row(f"{wl}: its unlimited windows, % of native",
                   f"{cost[wl]['pct']['H']:.1f} (native {cost[wl]['native']:.1f} it/s)", None)
        pace_rows(wl, f_err)
        span_rows(wl, f_err)
        clock_rows(wl, windows)
        saved[wl] = {"results": results, "own": own.get(wl), "cost": cost.get(wl),
                     "contended": seen, "clocks": windows}
        with open(os.path.join(cl.OUT, "workload_flips.json"), "w") as f:
            json.dump({"order": FLIP_ORDER, "rounds": rounds, "workloads": saved}, f, indent=1)


def share_periods(err, first_key):
    """(share, {counter: value}) of each line libvgpu.so prints for a share when the limits
    file changes it (HAMI_COMPUTE_STATS=1: 'hami-compute-stats share=30% <first_key>=...'), in
    order. The first period is left out: it holds the process's start and warm-up at its
    starting share, not a window."""
    pat = r"hami-compute-stats share=(\d+)% (" + first_key + r"=.*)"
    for m in list(re.finditer(pat, err))[1:]:
        yield int(m.group(1)), {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", m.group(2))}


def pace_by_share(err):
    """libvgpu.so's pace-mode counters per share, summed over the periods at that share:
    {share: {counter: value}}."""
    out = {}
    for share, kv in share_periods(err, "pace_stretches"):
        acc = out.setdefault(share, {})
        for k, v in kv.items():
            acc[k] = acc.get(k, 0.0) + v
    return out


def pace_rows(wl, err):
    """One table row per share of what pace mode did there: the duty it charged (charged /
    (ran + drained + paused): the bucket's share of the wall time), the stretches' wall time
    against their charge and against their launches' estimated GPU time, and per stretch the
    restart credit, the drain and the queued work left uncharged."""
    for share, kv in sorted(pace_by_share(err).items()):
        n, ch, wait = kv.get("pace_stretches", 0), kv.get("pace_charged_ms", 0), kv.get(
            "pace_wait_ms", 0)
        if not n or not ch:
            continue
        ran, drain, samples = (kv.get("pace_ran_ms", 0), kv.get("pace_drain_ms", 0),
                               kv.get("pace_samples", 0))
        idle, early = "", kv.get("pace_early_samples", 0)
        if samples:
            idle = (f"; samples on an idle stream "
                    f"{100 * kv.get('pace_idle_samples', 0) / samples:.1f} % of {int(samples)}")
        if samples and early:
            idle += (f" (first 5 ms: {100 * kv.get('pace_early_idle_samples', 0) / early:.1f} % "
                     f"of {int(early)})")
        cl.row(f"{wl}: pace mode at {share} %",
               f"{int(n)} stretches, duty charged {100 * ch / (ran + drain + wait):.1f} %, "
               f"ran / charged {ran / ch:.3f}, est / ran "
               f"{kv.get('pace_est_ms', 0) / max(ran, 1e-9):.3f}, per stretch: credit "
               f"{kv.get('pace_restart_credit_ms', 0) / n:.2f} ms, drain {drain / n:.2f} ms, "
               f"tail uncharged {kv.get('pace_tail_uncharged_ms', 0) / n:.2f} ms, carried "
               f"{kv.get('pace_tail_carried_ms', 0) / n:.2f} ms{idle}", None)


def span_rows(wl, err):
    """One row: per share (U = 0 %, unlimited) the mean measured GPU span of the sampled
    launches, queued behind others / on an idle stream, from the lines libvgpu.so prints at each
    share change ('hami-compute-stats share=50% launches=... sampled_busy=... span_busy_us=...');
    the first period (the start) left out. Longer spans in a limited share than unlimited: the
    card (or the driver's submission) ran the loop's kernels slower in pace mode's rhythm."""
    by = {}
    for share, kv in share_periods(err, "launches"):
        acc = by.setdefault(share, [0.0, 0.0, 0.0, 0.0, 0])
        acc[0] += kv.get("sampled_busy", 0) * kv.get("span_busy_us", 0)
        acc[1] += kv.get("sampled_busy", 0)
        acc[2] += kv.get("sampled_start", 0) * kv.get("span_start_us", 0)
        acc[3] += kv.get("sampled_start", 0)
        acc[4] += int(kv["launches"])
    if not by:
        return
    def mean(total, n):
        return f"{total / n:.1f}" if n else "-"
    cl.row(f"{wl}: sampled launches' GPU span by share, us (queued / idle stream; launches)",
           ", ".join(f"{'U' if sh == 0 else sh} {mean(a[0], a[1])} / {mean(a[2], a[3])}"
                     f" ({a[4]})" for sh, a in sorted(by.items())), None)


def report(results, wls, contended=None):
    """Table rows (cl.row) of a sweep's results; returns the summary. contended: {index of a
    D run in results: {workload: whether the policy saw contention in its window}}."""
    summary = summarise(results, wls)
    contended = contended or {}
    for wl, s in summary.items():
        for c in sorted((c for c in s["pct"] if isinstance(c, str) and c != "D"), key=str):
            cl.row(f"{wl}: % of native at {c}", f"{s['pct'][c]:.1f}", None)
        limits = [s["pct"].get(l) for l in cl.LIMITS]
        got = [(l, p) for l, p in zip(cl.LIMITS, limits) if p is not None]
        worst = max((abs(p - l) for l, p in got), default=float("nan"))
        lo, hi = s["native_spread"]
        forced = [contended[k].get(wl) for k in contended
                  if results[int(k)][0] in cl.LIMITS and wl in contended[k]]
        f_seen = (f"; contention seen in {sum(forced)} of {len(forced)} windows"
                  if any(forced) else "")
        all_med = " / ".join("-" if s["pct_all"].get(l) is None else f"{s['pct_all'][l]:.1f}"
                             for l in cl.LIMITS)
        cl.row(f"{wl}: % of native at 10/30/50/70/90 (force)",
               " / ".join("-" if p is None else f"{p:.1f}" for p in limits) +
               f"  (native {s['native']:.1f} it/s [{lo:.1f}-{hi:.1f}], worst {worst:.1f} pts;"
               f" against the median native {all_med}{f_seen})",
               len(got) == len(cl.LIMITS) and worst <= cl.TOLERANCE)
        d = s["pct"].get("D")
        runs = [contended[k].get(wl) for k in contended
                if results[int(k)][0] == "D" and wl in contended[k]]
        seen = (f" (the policy saw contention in {sum(runs)} of {len(runs)} runs)"
                if any(runs) else "")
        cl.row(f"{wl}: % of native, default policy at 50 % alone",
               ("-" if d is None else f"{d:.1f}") + seen, d is not None and d >= 98.0)
    return summary


def summary_of(path):
    """The table of a saved (possibly partial) sweep: workload_suite.py summary FILE."""
    with open(path) as f:
        saved = json.load(f)
    results = [(parse_cfg(str(c)), r) for c, r in saved["results"]]
    wls = [w for w in ALL if any(w in r for _, r in results)]
    report(results, wls, saved.get("contended"))
    for c, r, s in cl.rows:
        print(f"{c}  [{s}] {r}")


def events_in_window(err, t0_ms, wall_s):
    """libvgpu.so's timed log lines (power probes, contention changes: '... at T ms
    (CLOCK_MONOTONIC)'), each as 'what@offset' in ms from the measured window's start."""
    out = []
    for line in err.splitlines():
        m = re.search(r"compute: (.*?) at (\d+) ms", line)
        if m:
            c = re.search(r"contended=\d", m.group(1))
            what = c.group(0) if c else re.sub(r"\s+", "_", m.group(1))[:40]
            off = int(m.group(2)) - t0_ms
            where = "in" if 0 <= off <= wall_s * 1000 else "out"
            out.append(f"{what}@{off:+.0f}ms({where})")
    return " ".join(out)


def case_stats(wls):
    """Each workload alone in a process, with the limiter's counters and its timed events
    (power probes, contention changes) placed against the measured window; STATS_TOGETHER=1:
    the workloads in one process, as in a sweep (counters for the whole process)."""
    import compute_tuning as ct
    chosen = os.environ.get("STATS_WL", ",".join(wls)).split(",")
    groups = [chosen] if os.environ.get("STATS_TOGETHER") == "1" else [[w] for w in chosen]
    for cfg in [parse_cfg(c) for c in os.environ.get("STATS_CFGS", "50").split(",")]:
        for group in groups:
            rates, err, kvs = run_all(cfg, group, {"HAMI_COMPUTE_STATS": "1",
                                                   "LIBCUDA_LOG_LEVEL": "3"})
            extra = " ".join(ln.split(" ", 1)[1] for ln in err.splitlines()
                             if ln.startswith(("hami-compute-stats unmeasured",
                                               "hami-compute-stats pace_")))
            cl.row(f"{'+'.join(group)} at {cfg}: limiter counters", ct.stats_of(err) + " " +
                   extra, None)
            for wl in group:
                kv = kvs.get(wl, {})
                timed = events_in_window(err, float(kv.get("t0_ms", 0)),
                                         float(kv.get("wall_s", 0)))
                cl.row(f"{wl} at {cfg}", f"{rates.get(wl, 0):.1f} it/s" +
                       (", events " + timed if timed else ""), None)


def case_noise(wls):
    procs = int(os.environ.get("NOISE_PROCS", "4"))
    repeat = int(os.environ.get("NOISE_REPEAT", "4"))
    cpus = os.environ.get("NOISE_CPUS", "2,3")
    got = {}  # (wl, pinned) -> list of per-process window rates
    for i in range(2 * procs):
        pinned = i % 2 == 1
        argv = [sys.executable, WL_SCRIPT, "run", ",".join(wls), "--seconds", str(SECONDS),
                "--repeat", str(repeat)]
        if pinned:
            argv = ["taskset", "-c", cpus] + argv
        p = cl.sh(argv, env=cl.native_env(), timeout=60 + 15 * repeat * len(wls), check=False)
        wins = {}
        for line in p.stdout.splitlines():
            kv = cl.parse_kv(line)
            if "wl" in kv and "iters_per_s" in kv:
                wins.setdefault(kv["wl"], []).append(float(kv["iters_per_s"]))
        for wl, v in wins.items():
            got.setdefault((wl, pinned), []).append(v)
    for (wl, pinned), runs in sorted(got.items()):
        meds = [statistics.median(v) for v in runs]
        within = max(max(v) / min(v) for v in runs)
        cl.row(f"{wl}: native, {'pinned to ' + cpus if pinned else 'unpinned'}",
               "process medians " + " ".join(f"{m:.1f}" for m in meds) +
               f" (spread {max(meds) / min(meds):.2f}x; widest in one process {within:.2f}x)",
               None)


def case_profile(wls):
    p = cl.sh([sys.executable, WL_SCRIPT, "profile", ",".join(wls)], env=cl.native_env(),
              timeout=60 + 20 * len(wls), check=False)
    for line in p.stdout.splitlines():
        kv = cl.parse_kv(line)
        if "prof_iters" in kv:
            cl.row(f"{kv['wl']}: per iteration (native, profiler)",
                   f"{kv['kernels_per_iter']} kernels, kernel sum {kv['kernel_sum_us']} us, "
                   f"kernel-busy {kv['kernel_busy_us']} us, wall {kv['wall_us']} us", None)


def selftest():
    res = [("N", {"a": 100.0}), (10, {"a": 11.0}), ("N", {"a": 90.0}), ("D", {"a": 99.0}),
           ("N", {"a": 110.0})]
    s = summarise(res, ["a", "b"])
    assert s["a"]["native"] == 100.0 and s["a"]["pct_all"][10] == 11.0 and "b" not in s, s
    assert abs(s["a"]["pct"][10] - 1100.0 / math.sqrt(9000.0)) < 1e-9, s
    assert abs(s["a"]["pct"]["D"] - 9900.0 / math.sqrt(9900.0)) < 1e-9, s
    assert s["a"]["native_spread"] == (90.0, 110.0)
    # A native rate that doubles during the call: each limited run against its neighbours.
    drift = [("N", {"a": 100.0}), (50, {"a": 50.0}), ("N", {"a": 100.0}), ("N", {"a": 300.0}),
             (50, {"a": 150.0}), ("N", {"a": 300.0}), (90, {"a": 270.0})]
    sd = summarise(drift, ["a"])
    assert sd["a"]["pct"] == {50: 50.0, 90: 90.0}, sd
    assert sd["a"]["pct_all"][90] == 135.0, sd  # against the median native (200)
    assert env_for("N").get("LD_PRELOAD") is None
    e = env_for("D")
    assert e["GPU_CORE_UTILIZATION_POLICY"] == "default" and e["CUDA_DEVICE_SM_LIMIT"] == "50"
    assert env_for(30)["GPU_CORE_UTILIZATION_POLICY"] == "force"
    assert parse_cfg("50") == 50 and parse_cfg("D") == "D" and parse_cfg("50@alt") == "50@alt"
    assert env_for("50@p0")["HAMI_COMPUTE_POWER"] == "0"
    assert seconds_for("N") == SECONDS and seconds_for(50) == SECONDS
    assert seconds_for(10) == 3 * SECONDS and seconds_for("10@p0") == 3 * SECONDS
    assert env_for("50@p0")["CUDA_DEVICE_SM_LIMIT"] == "50"
    h = env_for("H")
    assert "CUDA_DEVICE_SM_LIMIT" not in h and h["LD_PRELOAD"] and parse_cfg("H") == "H"
    v = parse_variants("s=HAMI_COMPUTE_PACE_MS=10; x=A=1,B=")
    assert v == {"s": {"HAMI_COMPUTE_PACE_MS": "10"}, "x": {"A": "1", "B": ""}}, v
    for bad in ("s", "p0=A=1", "s=A"):
        try:
            parse_variants(bad)
            raise AssertionError(f"accepted {bad!r}")
        except ValueError:
            pass
    VARIANTS.update(v)
    assert env_for("30@s")["HAMI_COMPUTE_PACE_MS"] == "10"
    assert env_for("30@s")["CUDA_DEVICE_SM_LIMIT"] == "30"
    err = ("[HAMI-vgpu pid 7] INFO: compute: power probe 1 at 10250 ms (CLOCK_MONOTONIC)\n"
           "[HAMI-vgpu pid 7] INFO: compute: power probe put off at 9000 ms: not alone\n"
           "[HAMI-vgpu pid 7] INFO: compute: GPU /x/GPU-1 contended=1 at 10900 ms (CLOCK_...)\n")
    assert events_in_window(err, 10000, 0.8) == ("power_probe_1@+250ms(in) "
                                                 "power_probe_put_off@-1000ms(out) "
                                                 "contended=1@+900ms(out)"), \
        events_in_window(err, 1e4, .8)
    err2 = err + "[HAMI-vgpu pid 7] INFO: compute: GPU /x/GPU-1 contended=0 at 12000 ms (C)\n"
    kvs = {"a": {"t0_ms": "10000", "wall_s": "1.0"}, "b": {"t0_ms": "11000", "wall_s": "0.5"},
           "c": {"t0_ms": "12500", "wall_s": "0.5"}, "d": {"wall_s": "1"}}
    assert contended_windows(err2, kvs) == {"a": True, "b": True, "c": False}, \
        contended_windows(err2, kvs)
    assert is_default("D") and is_default("D@alt") and not is_default("N")
    res2 = [("N", {"a": 100.0}), ("D", {"a": 90.0}), ("D", {"a": 99.0})]
    saved_rows, cl.rows = cl.rows, []
    report(res2, ["a"], {"1": {"a": True}, "2": {"a": False}})
    d_row = [r for c, r, _ in cl.rows if "default policy" in c][0]
    assert "contention in 1 of 2 runs" in d_row, d_row
    res3 = [("N", {"a": 100.0}), (30, {"a": 30.0}), (50, {"a": 50.0}), ("N", {"a": 100.0})]
    report(res3, ["a"], {"1": {"a": True}, "2": {"a": False}})
    f_row = [r for c, r, _ in cl.rows if "10/30/50/70/90" in c][-1]
    assert "contention seen in 1 of 2 windows" in f_row, f_row
    cl.rows = saved_rows
    turns_selftest()
    flips_selftest()
    pace_selftest()
    clocks_selftest()
    print("selftest ok")


FAKE_SERVE = r"""
import math, os, sys, time
lim, pol = os.environ.get("CUDA_DEVICE_SM_LIMIT"), os.environ.get("GPU_CORE_UTILIZATION_POLICY")
share = 1.0 if not lim or pol == "default" else int(lim) / 100
print("ready", flush=True)
for line in sys.stdin:
    f = line.split()
    if not f or f[0] == "quit":
        break
    if os.environ.get("HAMI_LIMITS_FILE"):  # flips: the share its limits file says now
        with open(os.environ["HAMI_LIMITS_FILE"]) as lf:
            v = int(lf.read().split("=")[1])
        share = v / 100 if v and pol != "default" else 1.0  # default: nothing else on the card
    t = time.monotonic()
    time.sleep(float(f[2]))
    rate = 100 * (2 + math.sin(t * 0.5)) * share  # the host's pace drifts 3x within seconds
    print(f"wl={f[1]} rep=0 iters=1 wall_s={f[2]} iters_per_s={rate:.4f} t0_ms={t * 1000:.0f}",
          flush=True)
"""


def against_stand_in(case, json_name):
    """Runs case(["dec1_eager"]) against FAKE_SERVE (two rounds, no pauses, no warm-up); returns
    what it saved for dec1_eager in json_name and the table rows it made."""
    global WL_SCRIPT, SECONDS, CPUS
    saved = (WL_SCRIPT, SECONDS, CPUS, cl.OUT, list(cl.rows), dict(os.environ))
    tmp = tempfile.mkdtemp(prefix="suite-selftest-")
    try:
        WL_SCRIPT, SECONDS, CPUS, cl.OUT = os.path.join(tmp, "serve.py"), 0.05, "", tmp
        with open(WL_SCRIPT, "w") as f:
            f.write(FAKE_SERVE)
        os.environ.update(TURN_ROUNDS="2", TURN_WARM_S="0", TURN_GAP_S="0")
        case(["dec1_eager"])
        with open(os.path.join(tmp, json_name)) as f:
            return json.load(f)["workloads"]["dec1_eager"], list(cl.rows)
    finally:
        WL_SCRIPT, SECONDS, CPUS, cl.OUT = saved[:4]
        cl.rows[:] = saved[4]
        os.environ.clear()
        os.environ.update(saved[5])


def flips_selftest():
    """case_flips against the drifting stand-in, which reads its share from its limits file."""
    got, rows = against_stand_in(case_flips, "workload_flips.json")
    assert len(got["results"]) == 2 * len(FLIP_ORDER), got["results"]
    for lim in (10, 30, 50, 70, 90):
        assert abs(got["own"]["pct"][str(lim)] - lim) < 0.03 * lim, got["own"]
    assert abs(got["cost"]["pct"]["H"] - 100) < 3, got["cost"]
    row = [r for c, r, _ in rows if "own unlimited windows" in c]
    assert row and "worst" in row[0], rows
    assert got["contended"] == [False] * 10 and "seen in 0 of 10" in row[0], (got, row)
    global FLIP_POLICY  # the default policy alone on the card: limited windows at 100 %
    try:
        FLIP_POLICY = "default"
        got, rows = against_stand_in(case_flips, "workload_flips.json")
    finally:
        FLIP_POLICY = "force"
    assert all(abs(got["own"]["pct"][str(lim)] - 100) < 3 for lim in (10, 30, 50, 70, 90)), got
    row = [(r, ok) for c, r, ok in rows if "policy default alone" in c]
    assert row and row[0][1] and "100." in row[0][0] and "at 90" in row[0][0], rows


def clocks_selftest():
    off = time.time() - time.monotonic()
    now = time.time()
    def stamp(t):
        return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"
    lines = [f"{stamp(now + 0.1 * i)}, {1980 - 100 * (i % 2)}, 2619, {300 + i}.5, {10 * i}\n"
             for i in range(10)] + ["[N/A], [N/A]\n"]
    got = [GpuClocks.parse(ln, off) for ln in lines]
    assert got[-1] is None and all(got[:-1]), got
    assert abs(got[3][0] - (now + 0.3 - off)) < 0.002 and got[3][1] == 1880 and got[3][3] == 303.5
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.writelines(lines)
    c = GpuClocks(["cat", f.name])
    c.p.wait()
    for _ in range(100):
        if len(c.samples) == 10:
            break
        time.sleep(0.01)
    os.unlink(f.name)
    t0 = now - off + 0.25  # the samples at +0.3 .. +0.6 s
    w = c.window({"t0_ms": f"{t0 * 1000:.0f}", "wall_s": "0.4"})
    assert w and w["n"] == 4 and w["sm_min_mhz"] == 1880 and abs(w["sm_mhz"] - 1930) < 1e-9, w
    assert w["busy_pct"] == 45, w  # 30, 40, 50, 60 %
    assert GpuClocks.parse(f"{stamp(now)}, 1980, 2619, 300.5\n", off)[4] is None
    assert c.window({"t0_ms": "1", "wall_s": "0.1"}) is None and c.window({}) is None
    n = len(cl.rows)
    clock_rows("w", [(50, w), ("U", None), (50, w)])
    assert len(cl.rows) == n + 1 and "50 1930 (1880) / 305 / 45 %" in cl.rows[-1][1], cl.rows[n:]
    clock_rows("w", [("U", None)])
    assert len(cl.rows) == n + 1
    del cl.rows[n:]
    c.close()


def pace_selftest():
    err = ("x\nhami-compute-stats share=50% pace_stretches=4 pace_charged_ms=80.0 "
           "pace_ran_ms=3874.8\n"  # the start's period: left out
           "hami-compute-stats share=30% pace_stretches=10 pace_charged_ms=200.0 "
           "pace_wait_ms=466.7 pace_ran_ms=190.0 pace_drain_ms=10.0 pace_est_ms=190.0 "
           "pace_restart_credit_ms=5.0 pace_tail_uncharged_ms=2.0 pace_samples=150 "
           "pace_idle_samples=30 pace_tail_carried_ms=4.0 pace_early_samples=20 "
           "pace_early_idle_samples=15\n"
           "hami-compute-stats share=0% pace_stretches=0\n"
           "hami-compute-stats share=30% pace_stretches=10 pace_charged_ms=200.0 "
           "pace_wait_ms=466.7 pace_ran_ms=190.0 pace_drain_ms=10.0 pace_est_ms=190.0\n"
           "hami-compute-stats pace_stretches=3 pace_charged_ms=60.0\n")
    got = pace_by_share(err)
    assert set(got) == {0, 30}, got  # not 50: the start's period
    assert got[30]["pace_stretches"] == 20 and abs(got[30]["pace_charged_ms"] - 400) < 1e-9, got
    n = len(cl.rows)
    pace_rows("w", err)
    assert len(cl.rows) == n + 1 and "duty charged 30.0 %" in cl.rows[-1][1], cl.rows[n:]
    assert "tail uncharged 0.10 ms, carried 0.20 ms" in cl.rows[-1][1], cl.rows[n:]
    assert "idle stream 20.0 % of 150 (first 5 ms: 75.0 % of 20)" in cl.rows[-1][1], cl.rows[n:]
    del cl.rows[n:]
    spans = ("hami-compute-stats share=50% launches=9 sampled_busy=1 span_busy_us=99.0 "
             "sampled_start=0 span_start_us=0.00\n"  # the start's period: left out
             "hami-compute-stats share=50% launches=900 sampled_busy=10 span_busy_us=10.00 "
             "sampled_start=30 span_start_us=18.00\n"
             "hami-compute-stats share=0% launches=1000 sampled_busy=20 span_busy_us=9.00 "
             "sampled_start=0 span_start_us=0.00\n"
             "hami-compute-stats share=50% launches=100 sampled_busy=10 span_busy_us=12.00 "
             "sampled_start=10 span_start_us=14.00\n")
    span_rows("w", spans)
    assert len(cl.rows) == n + 1, cl.rows[n:]
    assert cl.rows[-1][1] == "U 9.0 / - (1000), 50 11.0 / 17.0 (1000)", cl.rows[-1]
    del cl.rows[n:]


def turns_selftest():
    """case_turns against a stand-in for workloads.py serve whose rate drifts with time."""
    got, _ = against_stand_in(case_turns, "workload_turns.json")
    assert len(got["results"]) == 2 * len(TURN_ORDER), got["results"]
    pct = got["summary"]["dec1_eager"]["pct"]
    for lim in (10, 30, 50, 70, 90):
        assert abs(pct[str(lim)] - lim) < 0.03 * lim, pct
    assert abs(pct["D"] - 100) < 3, pct
    assert set(got["contended"]) and not any(v["dec1_eager"] for v in got["contended"].values())


def main():
    args = sys.argv[1:]
    if args == ["selftest"]:
        selftest()
        return
    if len(args) == 2 and args[0] == "summary":
        summary_of(args[1])
        return
    wls = [w for w in os.environ.get("WL", ",".join(ALL)).split(",") if w]
    bad = [w for w in wls if w not in ALL]
    cases = {"sweep": case_sweep, "stats": case_stats, "profile": case_profile,
             "noise": case_noise, "turns": case_turns, "flips": case_flips,
             "overhead": lambda _: cl.case_overhead(), "limits": lambda _: cl.case_limits()}
    unknown = [a for a in args if a not in cases]
    if bad or unknown:
        print(f"unknown workload(s) {bad} or case(s) {unknown}; workloads: {' '.join(ALL)}; "
              f"cases: {' '.join(cases)}", file=sys.stderr)
        sys.exit(2)
    os.makedirs(cl.OUT, exist_ok=True)
    cl.LOG = open(os.path.join(cl.OUT, "workload_suite.log"), "w")
    cl.BOARD_DIR = tempfile.mkdtemp(prefix="hami-board-")
    t0 = time.monotonic()
    cl.build()
    gpu = cl.sh("nvidia-smi --query-gpu=name,driver_version --format=csv,noheader",
                env=cl.native_env(), check=False).stdout.strip()
    cl.row("GPU", gpu or "unknown", None)
    for name in args or ["sweep"]:
        t = time.monotonic()
        try:
            cases[name](wls)
        except Exception as e:  # noqa: BLE001
            cl.row(name, f"error: {e}"[:400], False)
        cl.log(f"case {name}: {time.monotonic() - t:.1f} s")
    width = max(len(r[0]) for r in cl.rows)
    for c, r, s in cl.rows:
        print(f"{c:<{width}}  [{s}] {r}")
    print(f"total {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
