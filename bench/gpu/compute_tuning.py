"""Tuning experiments for the compute limiter (issue 3), run on the GPU host.

Compares limiter settings (HAMI_COMPUTE_TURN_US, HAMI_COMPUTE_SPIN_US) on the cases that
missed their targets in bench/gpu/compute_limits.py, with the limiter's own counters
(HAMI_COMPUTE_STATS=1) so the table shows where the time goes:
  - b:     20 us kernels with a sync each, limits 10/50/90;
  - multi: two unlimited native processes side by side (what time-slicing itself costs), then
           containers at 30/70 and 20/30/50 under each setting;
  - prio:  the priority case with longer runs (more requests, a steadier p99).

Run from the repository root:  python3 bench/gpu/compute_tuning.py CASE[@SETTINGS] ...
CASE: b, multi, prio, a, torch. SETTINGS: settings separated by '|', each a comma-separated list of
K=V meaning HAMI_COMPUTE_K=V, e.g.  b@|POWER=0,MAX_TURN_US=5000  (the empty one = defaults).
Logs under $OUT; the table goes to stdout.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compute_limits as cl  # noqa: E402


SETTINGS = [""]  # per case, from the command line: case@K=V,K=V|K=V ...


def settings():
    return SETTINGS


def with_knobs(env, setting):
    """setting: 'TURN_US=5000,TURNS=1' -> HAMI_COMPUTE_TURN_US=5000 HAMI_COMPUTE_TURNS=1."""
    env = dict(env)
    env["HAMI_COMPUTE_STATS"] = "1"
    for kv in filter(None, setting.split(",")):
        k, v = kv.split("=", 1)
        env["HAMI_COMPUTE_" + k] = v
    return env


def stats_of(stderr):
    """The limiter's exit counters, condensed: 'tight 12345x c=31.2 s=40.1 x=9.0 | waits ...'."""
    parts = []
    for line in stderr.splitlines():
        if line.startswith(("hami-compute-stats", "hami-compute-power")):
            kv = cl.parse_kv(line)
            if "mode" in kv:
                parts.append(f"{kv['mode']} {kv['launches']}x c={kv['charge_us']} "
                             f"s={kv['span_us']} x={kv['excl_us']}")
            elif "probes" in kv:
                parts.append(f"probes {kv['probes']} extra {kv['power_extra_ms']} ms")
            elif "ref_us" in kv:
                parts.append(f"power normal {kv['normal_us']} ref {kv['ref_us']} us "
                             f"n={kv['samples']}")
            elif "waits" in kv:
                parts.append(f"waits {kv['waits']} {kv['wait_ms']} ms, turns {kv.get('turns')} "
                             f"turn-waits {kv.get('turn_waits')} {kv.get('turn_wait_ms')} ms")
    return "; ".join(parts)


def run(argv, env):
    cl.log("$", " ".join(argv))
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=cl.RUN_TIMEOUT)
    cl.log(p.stdout[-2000:], p.stderr[-3000:])
    kv = cl.parse_kv(p.stdout)
    if p.returncode != 0 or "error" in kv:
        raise RuntimeError(f"rc={p.returncode}: {(p.stderr or p.stdout)[-300:]}")
    return kv, stats_of(p.stderr)


def parallel(jobs):
    procs = [subprocess.Popen(a, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a, e in jobs]
    res = []
    for p in procs:
        so, se = p.communicate(timeout=cl.RUN_TIMEOUT)
        cl.log(so[-1500:], se[-1500:])
        kv = cl.parse_kv(so)
        if p.returncode != 0 or "error" in kv:
            raise RuntimeError(f"parallel rc={p.returncode}: {se[-300:]}")
        res.append((kv, stats_of(se)))
    return res


def board():
    import tempfile
    return tempfile.mkdtemp(prefix="hami-board-")


def case_b():
    work = cl.calibrate(20)
    argv = [cl.LOAD, "loop", "--work", work, "--sync", "1", "--seconds", "3", "--warmup-ms", "500"]
    base = cl.fnum(run(argv, cl.native_env())[0], "iters_per_s")
    cl.row("b: native 20 us sync-1 loop", f"{base:.0f} it/s = {1e6 / base:.2f} us/iter", None)
    for setting in settings():
        got, st = [], []
        for limit in (10, 50, 90):
            kv, s = run(argv, with_knobs(cl.hooked_env(limit, board=board()), setting))
            got.append(100 * cl.fnum(kv, "iters_per_s") / base)
            st.append(f"[{limit}] {s}")
        worst = max(abs(g - l) for g, l in zip(got, (10, 50, 90)))
        cl.row(f"b [{setting}]: % at 10/50/90",
               " / ".join(f"{g:.1f}" for g in got) + f" (worst {worst:.1f}) " + " ".join(st),
               worst <= cl.TOLERANCE)


def case_a():
    work = cl.calibrate(1000)
    argv = [cl.LOAD, "loop", "--work", work, "--sync", "4", "--seconds", "3", "--warmup-ms", "500"]
    base = cl.fnum(run(argv, cl.native_env())[0], "iters_per_s")
    for setting in settings():
        got = []
        for limit in (10, 50):
            kv, _ = run(argv, with_knobs(cl.hooked_env(limit, board=board()), setting))
            got.append(100 * cl.fnum(kv, "iters_per_s") / base)
        worst = max(abs(g - l) for g, l in zip(got, (10, 50)))
        cl.row(f"a [{setting}]: % at 10/50", " / ".join(f"{g:.1f}" for g in got),
               worst <= cl.TOLERANCE)


def case_torch():
    """(c)/(d) of compute_limits: the PyTorch matmul loop and its graph at 30 and 70 %."""
    for mode in ("matmul", "graph"):
        argv = [sys.executable, cl.TORCH_LOAD, mode, "--seconds", "3"]
        base = cl.fnum(run(argv, cl.native_env())[0], "iters_per_s")
        for setting in settings():
            got, st = [], []
            for limit in (30, 70):
                kv, s = run(argv, with_knobs(cl.hooked_env(limit, board=board()), setting))
                got.append(100 * cl.fnum(kv, "iters_per_s") / base)
                st.append(f"[{limit}] {s}")
            worst = max(abs(g - l) for g, l in zip(got, (30, 70)))
            cl.row(f"torch {mode} [{setting}]: % at 30/70",
                   " / ".join(f"{g:.1f}" for g in got) + f" (worst {worst:.1f}) " + " ".join(st),
                   worst <= cl.TOLERANCE)


def case_multi():
    work = cl.calibrate(1000)
    for sync in ("4", "1"):
        argv = [cl.LOAD, "loop", "--work", work, "--sync", sync, "--seconds", "3"]
        solo = cl.fnum(run(argv + ["--warmup-ms", "500"], cl.native_env())[0], "iters_per_s")
        t = cl.start_at()
        res = parallel([(argv + ["--start-at", t], cl.native_env())] * 2)
        got = [100 * cl.fnum(kv, "iters_per_s") / solo for kv, _ in res]
        cl.row(f"multi: 2 native unlimited, sync {sync}",
               f"{got[0]:.1f} + {got[1]:.1f} = {sum(got):.1f} % of solo ({solo:.0f} it/s)", None)
    argv = [cl.LOAD, "loop", "--work", work, "--sync", "4", "--seconds", "3"]
    solo = cl.fnum(run(argv + ["--warmup-ms", "500"], cl.native_env())[0], "iters_per_s")
    for setting in settings():
        for shares in ((30, 70), (20, 30, 50)):
            t = cl.start_at()
            b = board()
            res = parallel([(argv + ["--start-at", t],
                             with_knobs(cl.hooked_env(s, board=b), setting)) for s in shares])
            got = [100 * cl.fnum(kv, "iters_per_s") / solo for kv, _ in res]
            worst = max(abs(g - s) for g, s in zip(got, shares))
            cl.row(f"multi {'/'.join(map(str, shares))} [{setting}]",
                   " / ".join(f"{g:.1f}" for g in got) + f" sum {sum(got):.1f} (worst {worst:.1f}) "
                   + " | ".join(s for _, s in res), worst <= cl.TOLERANCE)


def case_prio():
    w_hi = cl.calibrate(1000)
    w_lo = cl.calibrate(200)
    secs = "10"
    hi_argv = [cl.LOAD, "requests", "--work", w_hi, "--per-request", "5", "--gap-us", "15000",
               "--seconds", secs]
    lo_argv = [cl.LOAD, "loop", "--work", w_lo, "--sync", "8", "--seconds", secs]
    for setting in settings():
        b = board()
        hi_env = with_knobs(cl.hooked_env(None, policy="", priority=0, board=b), setting)
        lo_env = with_knobs(cl.hooked_env(None, policy="", priority=1, board=b), setting)
        solo_lo = run(lo_argv + ["--warmup-ms", "500"], lo_env)[0]
        time.sleep(1.2)
        solo_hi = run(hi_argv + ["--warmup-ms", "500"], hi_env)[0]
        t = cl.start_at()
        (both_hi, _), (both_lo, st) = parallel([(hi_argv + ["--start-at", t], hi_env),
                                                (lo_argv + ["--start-at", t], lo_env)])
        ps, pb = cl.fnum(solo_hi, "p99_us"), cl.fnum(both_hi, "p99_us")
        lo = cl.fnum(both_lo, "iters_per_s") / cl.fnum(solo_lo, "iters_per_s")
        cl.row(f"prio 10 s [{setting}]",
               f"p50 {cl.fnum(solo_hi, 'p50_us') / 1e3:.2f}->{cl.fnum(both_hi, 'p50_us') / 1e3:.2f} "
               f"p90 {cl.fnum(solo_hi, 'p90_us') / 1e3:.2f}->{cl.fnum(both_hi, 'p90_us') / 1e3:.2f} "
               f"p99 {ps / 1e3:.2f}->{pb / 1e3:.2f} ms ({100 * (pb / ps - 1):+.1f} %), "
               f"n={both_hi.get('requests')}, low keeps {100 * lo:.1f} %",
               pb <= 1.10 * ps and lo >= 0.5)


def main():
    cases = {"b": case_b, "multi": case_multi, "prio": case_prio, "a": case_a,
             "torch": case_torch}
    global SETTINGS
    args = sys.argv[1:] or ["b", "multi", "prio"]
    os.makedirs(cl.OUT, exist_ok=True)
    cl.LOG = open(os.path.join(cl.OUT, "compute_tuning.log"), "w")
    t0 = time.monotonic()
    cl.build()
    for a in args:
        name, _, sets = a.partition("@")
        SETTINGS = sets.split("|") if sets else [""]
        try:
            cases[name]()
        except Exception as e:  # noqa: BLE001
            cl.row(a, f"error: {e}"[:400], False)
    print(f"total {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
